"""Train a student: a KD student and a scratch student side by side, live (Hinton et al. 2015).

Start runs two engine jobs with the same seed, data and student size: one learns from the
teacher's soft targets (alpha * T^2 * KL + (1 - alpha) * CE, section 2), one from the labels only.
A fragment refreshes the charts every second from the jobs' stores; worker threads never call st.*.
"""
from __future__ import annotations

import os

import streamlit as st

from kdviz.app import session
from kdviz.app.charts import show_chart
from kdviz.app.errors import parse_temperature, user_errors
from kdviz.app.live import folder_view, job_view
from kdviz.app.sidebar import current_settings, load_bundle
from kdviz.app.teacher import show_teacher_status, teacher_job
from kdviz.app.training_view import accuracy_chart, cached_figure, loss_chart, probe_chart, status_row
from kdviz.engine import TrainConfig, list_runs, start

K = {"T": "tr_T", "alpha": "tr_alpha", "epochs": "tr_epochs", "lr": "tr_lr", "seed": "tr_seed",
     "overlay": "tr_overlay", "probe": "tr_probe", "probe_T": "tr_probe_T", "paused": "tr_paused"}
# Defaults chosen so the KD student visibly beats scratch on digits within a few seconds (README).
DEFAULTS = {K["T"]: 4.0, K["alpha"]: 0.9, K["epochs"]: 8, K["lr"]: 0.02, K["seed"]: 0}
REFRESH_S = float(os.environ.get("KDVIZ_REFRESH_S", "1.5"))
REBUILD_S = 3.0 * REFRESH_S  # while a run is live, the slower charts are rebuilt at most this often
state = st.session_state
for key, value in DEFAULTS.items():
    state.setdefault(key, value)

st.title("Train a student")
st.markdown(
    "Two copies of the same small student start from the same weights and see the same batches. "
    "The **KD student** learns from the teacher's soft targets at temperature *T* as well as the labels "
    r"($\alpha T^2\,\mathrm{KL}(p_T \| q_T) + (1-\alpha)\,\mathrm{CE}$, Hinton et al. 2015); "
    "the **scratch student** learns from the labels alone. Watch the gap open."
)
session.touch()
settings = current_settings()
bundle = teacher = None
with user_errors("Dataset"):
    bundle = load_bundle(settings)
with user_errors("Teacher"):
    if bundle is not None:
        teacher = teacher_job(settings)
ready = teacher is not None and show_teacher_status(teacher, settings, key="tr-teacher")

exp = session.current_experiment()
running = exp is not None and not exp.done
c1, c2, c3, c4 = st.columns([1, 1, 1, 1], vertical_alignment="bottom")
c1.number_input("Temperature T", key=K["T"], step=1.0, format="%g", help="Any positive number; 2 to 20 is typical.")
c2.slider("alpha: weight of the soft targets", 0.0, 1.0, step=0.05, key=K["alpha"])
c3.slider("Epochs", 1, 100, key=K["epochs"])
with c4.popover("More settings", icon=":material/tune:", width="stretch"):
    st.number_input("Learning rate (SGD, momentum 0.9)", min_value=0.0001, max_value=1.0, key=K["lr"], format="%g")
    st.number_input("Seed (both students)", min_value=0, step=1, key=K["seed"])
T_value = None
with user_errors("Temperature"):
    T_value = parse_temperature(state[K["T"]])

def student_configs() -> tuple[TrainConfig, TrainConfig]:
    """The KD and scratch configs: identical except for the method (and the teacher)."""
    choice = settings.student_model
    steps_per_epoch = -(-len(bundle.train_labels) // 64)
    every = max(1, steps_per_epoch // 4)  # about four evaluations and snapshots per epoch
    common = dict(dataset=settings.dataset, data_root=settings.data_root, model=choice.model,
                  model_options=dict(choice.options), epochs=int(state[K["epochs"]]), lr=float(state[K["lr"]]),
                  seed=int(state[K["seed"]]), batch_size=64, eval_every=every, snapshot_every=every,
                  probe_count=10, probe_temperatures=sorted({1.0, T_value}), runs_root=session.runs_root())
    kd = TrainConfig(method="kd", teacher=str(teacher.path), T=T_value, alpha=float(state[K["alpha"]]),
                     name="kd-student", **common).validate()
    return kd, TrainConfig(method="ce", name="scratch-student", **common).validate()


def toggle_pause(exp: session.Experiment) -> None:
    paused = not state.get(K["paused"], False)
    for job in exp.jobs:
        job.pause() if paused else job.resume()
    state[K["paused"]] = paused


def stop(exp: session.Experiment) -> None:
    for job in exp.jobs:
        job.stop()
    state[K["paused"]] = False


b1, b2, b3, _ = st.columns([2.2, 1, 1, 2.5], vertical_alignment="center")
label = "Start KD and scratch students" if not running else "Running…"
if b1.button(label, type="primary", icon=":material/play_arrow:", disabled=not ready or running or T_value is None,
             width="stretch"):
    with user_errors("Start"):
        kd_cfg, scratch_cfg = student_configs()
        manager = session.lab_manager()
        session.add_experiment(session.Experiment(start(kd_cfg, manager), start(scratch_cfg, manager), str(teacher.path)))
        state[K["paused"]] = False
        st.rerun()
# Pause and Stop live outside the refreshing fragment, so they stay clickable while it redraws.
paused = running and state.get(K["paused"], False)
b2.button("Resume" if paused else "Pause", icon=":material/play_arrow:" if paused else ":material/pause:",
          disabled=not running, width="stretch", key="tr-pause", on_click=toggle_pause, args=(exp,))
b3.button("Stop", icon=":material/stop:", disabled=not running, width="stretch", key="tr-stop", on_click=stop, args=(exp,))

st.divider()
earlier = []
with user_errors("Earlier runs"):
    current = {str(j.path) for e in session.experiments() for j in e.jobs}
    earlier = [r for r in list_runs(session.runs_root()) if r["path"] not in current and r["method"] in ("kd", "ce")
               and not os.path.basename(r["path"]).split("-", 2)[-1].startswith("teacher")]


def panel(live: bool) -> None:
    """Status, controls and live charts of this session's latest experiment."""
    session.touch()
    exp = session.current_experiment()
    if live and exp is not None and exp.done:
        st.rerun(scope="app")  # redraw once without the timer, and enable Start again
    overlays = []
    for path in state.get(K["overlay"], []):
        with user_errors(f"Run folder {path}"):
            overlays.append(folder_view(path))
    if exp is None:
        st.info("Press **Start** to train both students. The charts fill in live; you need not click anything.",
                icon=":material/info:")
        if overlays:
            show_chart(accuracy_chart([], overlays), "test-accuracy", caption="Earlier runs, reopened from their folders.")
        return
    kd, scratch = job_view(exp.kd, "KD student"), job_view(exp.scratch, "scratch student")
    status_row(exp.kd, "KD student")
    status_row(exp.scratch, "Scratch student")
    t_acc = teacher.status().test_acc if teacher is not None else None
    a, b = st.columns([3, 2])
    with a:
        version = (kd.metric_version, scratch.metric_version, tuple(v.metric_version for v in overlays), t_acc)
        fig = cached_figure(f"acc-{kd.path}", version, lambda: accuracy_chart(
            [(kd, "kd student"), (scratch, "scratch student")], overlays, t_acc), 0.0 if exp.done else REFRESH_S)
        show_chart(fig, "test-accuracy", caption="Evaluated on the held-out test set about four times per epoch. "
                   "The KD student (orange) should climb faster and stay above the scratch student (green).")
    with b:
        ref = kd.reference()
        if "probe/temperatures" in ref:
            temps = [float(t) for t in ref["probe/temperatures"]]
            labels = ref["probe/labels"]
            p1, p2 = st.columns(2)
            p1.selectbox("Probe image", range(len(labels)), key=K["probe"],
                         format_func=lambda i: f"#{i}: a {bundle.class_names[int(labels[i])]}")
            p2.segmented_control("T", temps, key=K["probe_T"], default=temps[-1], format_func=lambda t: f"T = {t:g}")
            t_index = temps.index(state.get(K["probe_T"]) or temps[-1])
            sample = int(state.get(K["probe"]) or 0)
            fig = cached_figure(f"probe-{kd.path}-{sample}-{t_index}", (kd.snapshot_version, scratch.snapshot_version),
                                lambda: probe_chart(kd, scratch, bundle.class_names, sample, t_index),
                                0.0 if exp.done else REBUILD_S)
            if fig is not None:
                show_chart(fig, "probe-soft-targets", caption="Blue: the teacher. As training goes on the KD student's "
                           "bars take the teacher's shape, small ones included; the scratch student's do not.")
    a, b = st.columns(2)
    for col, view, who in ((a, kd, "KD student"), (b, scratch, "Scratch student")):
        with col:
            fig = cached_figure(f"loss-{view.path}", (view.metric_version,), lambda: loss_chart(view, who),
                                0.0 if exp.done else REBUILD_S)
            if fig is not None:
                show_chart(fig, "loss-kd-student" if view is kd else "loss-scratch-student", caption="Per training step. For KD the total is the soft part "
                           "(scaled by T²) plus the hard part." if view is kd else "Per training step: cross-entropy "
                           "on the labels only, so the total is the hard part.")


if bundle is not None:
    st.multiselect("Overlay earlier runs (dotted)", [r["path"] for r in earlier], key=K["overlay"],
                   format_func=lambda p: next((f"{r['name']} · {r['state']}" + (f" · {r['test_acc']:.1%}" if r.get("test_acc") else "")
                                               for r in earlier if r["path"] == p), p),
                   placeholder="Pick earlier KD or scratch runs from the runs folder to compare")
    live = exp is not None and not exp.done
    st.fragment(run_every=REFRESH_S if live else None)(panel)(live)
