"""Train a student: a KD student and a scratch student side by side, live (Hinton et al. 2015).

Start runs two engine jobs with the same seed, data and student size (one experiment, built by
``kdviz.present.distill_configs``): one learns from the teacher's soft targets
(alpha * T^2 * KL + (1 - alpha) * CE, section 2), one from the labels only. A fragment refreshes
the charts from the jobs' stores; worker threads never call st.*. Jobs are kept by
``kdviz.app.session``; each run's label and colour come from its method's spec.
"""
from __future__ import annotations

import os
from types import SimpleNamespace

import streamlit as st

from kdviz.app import session
from kdviz.app.charts import show_chart
from kdviz.app.components import (
    KEPT_KEY, copy_link, dataset_and_run, live_experiment, page_state, read_runs, run_controls, status_row, url_choice,
    url_number, url_settings,
)
from kdviz.app.diagnose_view import show_diagnosis
from kdviz.app.errors import parse_temperature, plain_message, user_errors
from kdviz.app.export import export_menu
from kdviz.app.live import folder_view, job_view
from kdviz.app.replay import show_live_or_replay
from kdviz.app.sidebar import current_settings
from kdviz.app.teacher import show_teacher_status, teacher_job
from kdviz.app.training_view import accuracy_chart, accuracy_story, cached_figure, loss_chart, probe_chart, probe_story
from kdviz.engine import list_runs
from kdviz.engine.run_folder import read_config
from kdviz.methods import method_of
from kdviz.present.distill_configs import KD_JOB, SCRATCH_JOB, distill_defaults, run_name, student_pair_configs

K = {"T": "tr_T", "alpha": "tr_alpha", "epochs": "tr_epochs", "lr": "tr_lr", "seed": "tr_seed",
     "transfer": "tr_transfer", "pace": "tr_pace", "overlay": "tr_overlay", "probe": "tr_probe",
     "probe_T": "tr_probe_T", "start_error": "tr_start_error"}
LAST_DATASET = "tr_defaults_dataset"
TRANSFER_SIZES = (50, 100, 200, 500, 1000, 2000, 5000, 0)  # labelled images; 0: the whole training set
PACE_S = 30.0  # "pace to watch": a run lasts at least this long


def dataset_defaults(dataset: str) -> dict:
    """The settings the KD-beats-scratch defaults were measured with on ``dataset`` (README, "the
    default story"): a small labelled transfer set, many epochs, paced so a class can watch."""
    d = distill_defaults(dataset)
    return {K["T"]: d.T, K["alpha"]: d.alpha, K["epochs"]: d.epochs, K["lr"]: d.lr, K["seed"]: 0,
            K["transfer"]: d.transfer_size or 0, K["pace"]: d.pace_s is not None}


def follow_dataset(dataset: str) -> None:
    """On a dataset switch, each setting still at the old dataset's default moves to the new one's
    (a setting the user changed is kept). Runs before the controls are drawn."""
    last = st.session_state.get(LAST_DATASET, dataset)
    if last != dataset:
        old, new = dataset_defaults(last), dataset_defaults(dataset)
        kept = st.session_state.setdefault(KEPT_KEY, {})
        for key, value in new.items():
            if kept.get(key, old[key]) == old[key]:
                kept[key] = value
                st.session_state[key] = value
    st.session_state[LAST_DATASET] = dataset


DEFAULTS = dataset_defaults(current_settings().dataset)
EXPERIMENT = "KD beside scratch"  # this page's experiments in the session
REFRESH_S = float(os.environ.get("KDVIZ_REFRESH_S", "1.5"))
REBUILD_S = 3.0 * REFRESH_S  # while a run is live, the slower charts are rebuilt at most this often
state = page_state(DEFAULTS)
follow_dataset(current_settings().dataset)
# The settings a link carries (``?tr_T=8&tr_alpha=0.5...``), each checked as its control would.
IN_URL = {K["T"]: url_number(1e-3, 1e4), K["alpha"]: url_number(0.0, 1.0), K["epochs"]: url_number(1, 1000, int),
          K["lr"]: url_number(1e-4, 1.0), K["seed"]: url_number(0, 2**31 - 1, int),
          K["transfer"]: url_choice(TRANSFER_SIZES), K["pace"]: url_choice((True, False))}
url_settings(IN_URL)

st.title("Train a student")
st.markdown(
    "Two copies of the same small student start from the same weights and see the same batches. "
    "The **KD student** learns from the teacher's soft targets at temperature *T* as well as the labels "
    r"($\alpha T^2\,\mathrm{KL}(p_T \| q_T) + (1-\alpha)\,\mathrm{CE}$, Hinton et al. 2015); "
    "the **scratch student** learns from the labels alone. The captions say who leads, and why."
)
session.touch()
settings = current_settings()
bundle, teacher = dataset_and_run(settings, lambda: teacher_job(settings))
ready = teacher is not None and show_teacher_status(teacher, settings, key="tr-teacher")

exp = session.current_experiment(EXPERIMENT, settings.dataset)  # none started on another data set
runs = read_runs(exp)  # read once: the buttons and the live refresh of this rerun all agree
c1, c2, c3, c4 = st.columns([1, 1, 1, 1], vertical_alignment="bottom")
c1.number_input("Temperature T", key=K["T"], step=1.0, format="%g", help="Any positive number; 2 to 20 is typical.")
c2.slider("alpha: weight of the soft targets", 0.0, 1.0, step=0.05, key=K["alpha"])
c3.slider("Epochs", 1, 1000, key=K["epochs"], help="Passes over the labelled transfer set.")
with c4.popover("More settings", icon=":material/tune:", width="stretch"):
    st.selectbox("Labelled images (transfer set)", TRANSFER_SIZES, key=K["transfer"],
                 format_func=lambda n: "all of the training set" if n == 0 else f"{n} ({n // 10} per class)",
                 help="Both students train on the same class-balanced subset. Soft targets matter most when "
                      "labelled data is scarce (Hinton et al. 2015, section 3).")
    st.number_input("Learning rate (SGD, momentum 0.9)", min_value=0.0001, max_value=1.0, key=K["lr"], format="%g")
    st.number_input("Seed (both students)", min_value=0, step=1, key=K["seed"])
    st.toggle(f"Pace to watch (at least {PACE_S:.0f} s)", key=K["pace"],
              help="The default run computes in a few seconds; pacing spreads it out so the race can be followed. "
                   "Off: as fast as the machine allows.")
T_value = None
with user_errors("Temperature"):
    T_value = parse_temperature(state[K["T"]])


def pair_configs() -> dict:
    """The KD and scratch students' configs these settings give (raises ``ValueError`` for a bad one)."""
    choice, train_size = settings.student_model, len(bundle.train_labels)
    transfer = int(state[K["transfer"]])
    return student_pair_configs(
        teacher=str(teacher.path), T=T_value, alpha=float(state[K["alpha"]]), dataset=settings.dataset,
        data_root=settings.data_root, model=choice.model, model_options=choice.options,
        epochs=int(state[K["epochs"]]), lr=float(state[K["lr"]]), seed=int(state[K["seed"]]),
        train_size=train_size, runs_root=session.runs_root(), batch_size=distill_defaults(settings.dataset).batch_size,
        transfer_size=transfer if 0 < transfer < train_size else None, pace_s=PACE_S if state[K["pace"]] else None)


def start_students() -> None:
    """The Start button: both students as one experiment of this session (a bad setting is shown)."""
    state[K["start_error"]] = None
    try:
        session.start_experiment(EXPERIMENT, pair_configs())
    except (ValueError, TypeError, OSError) as exc:
        state[K["start_error"]] = plain_message(exc)


# Pause and Stop live outside the refreshing fragment, so they stay clickable while it redraws.
def continue_students() -> None:
    """Continue: the stopped students resume from their checkpoints (a failure is shown, never raised)."""
    state[K["start_error"]] = None
    try:
        session.resume_experiment(exp)
    except (ValueError, TypeError, OSError) as exc:
        state[K["start_error"]] = plain_message(exc)


run_controls(runs, "tr", on_start=start_students, start_label="Start KD and scratch students",
             running_label="Running…", start_disabled=not ready or T_value is None, on_continue=continue_students)
def charts_to_export():
    """The report's charts, built only when it is downloaded: both students' test accuracy."""
    views = [job_view(exp.job(name), name) for name in (KD_JOB, SCRATCH_JOB)] if exp is not None else []
    t_acc = teacher.status().test_acc if teacher is not None else None
    return lambda: [("Test accuracy: KD beside scratch", accuracy_chart(views, [], t_acc))] if views else []


link, export, _ = st.columns([2, 2, 5])  # wide enough for "Copy link" and "Export" whole
with link:
    copy_link(IN_URL)
with export, user_errors("Export"):
    shown = {name: state[key] for name, key in K.items() if key in DEFAULTS}
    shown.update(dataset=settings.dataset, student=settings.student_model.model)
    export_menu("Train a student", shown, list(pair_configs().items()) if ready and T_value is not None else [],
                charts=charts_to_export(), key="train-a-student")
if state.get(K["start_error"]):
    st.error(f"**Start:** {state[K['start_error']]}", icon=":material/warning:")

st.divider()
earlier = []
with user_errors("Earlier runs"):
    current = {str(job.path) for e in session.experiments() for job in e.jobs.values()}
    earlier = [r for r in list_runs(session.runs_root())  # the sidebar's data set only: no digits run on MNIST
               if r["path"] not in current and r["dataset"] == settings.dataset]
    for row in earlier:
        row["kind"] = method_of(read_config(row["path"])).label


def describe_run(path: str) -> str:
    """An earlier run in the overlay picker: folder, method, state and last test accuracy."""
    row = next((r for r in earlier if r["path"] == path), None)
    if row is None:
        return path
    acc = f" · {row['test_acc']:.1%}" if row.get("test_acc") else ""
    return f"{row['name']} · {row['kind']} · {row['dataset']} · {row['state']}{acc}"


def charts(exp, overlays: list) -> None:
    """Status rows and live charts of the experiment's two students."""
    kd, scratch = job_view(exp.job(KD_JOB), KD_JOB), job_view(exp.job(SCRATCH_JOB), SCRATCH_JOB)
    for view in (kd, scratch):
        status_row(view.job, view.label)
    t_acc = teacher.status().test_acc if teacher is not None else None
    a, b = st.columns([3, 2])
    with a:
        version = (kd.metric_version, scratch.metric_version, tuple(v.metric_version for v in overlays), t_acc)
        fig = cached_figure(f"acc-{kd.path}", version, lambda: accuracy_chart([kd, scratch], overlays, t_acc),
                            0.0 if exp.done else REFRESH_S)
        show_chart(fig, "test-accuracy", caption=accuracy_story(kd, scratch, exp.done, t_acc, len(bundle.train_labels),
                                                                 len(bundle.class_names)))
    with b:
        probe(kd, scratch, exp.done)
    a, b = st.columns(2)
    for col, view in ((a, kd), (b, scratch)):
        with col:
            fig = cached_figure(f"loss-{view.path}", (view.metric_version,), lambda: loss_chart(view),
                                0.0 if exp.done else REBUILD_S)
            if fig is not None:
                show_chart(fig, f"loss-{run_name(view.label)}",
                           caption="Per training step. For KD the total is the soft part (scaled by T²) plus the "
                           "hard part." if view is kd else "Per training step: cross-entropy on the labels only, "
                           "so the total is the hard part.")
    if exp.done:  # the KD student has ended: why did it help, or not?
        show_diagnosis(job_view(exp.job(KD_JOB), KD_JOB), job_view(exp.job(SCRATCH_JOB), SCRATCH_JOB))


def probe(kd, scratch, done: bool) -> None:
    """Pick a probe image and temperature; draw its soft targets: teacher, KD and scratch students."""
    ref = kd.reference()
    if "probe/temperatures" not in ref:
        return
    temps = [float(t) for t in ref["probe/temperatures"]]
    labels = ref["probe/labels"]
    p1, p2 = st.columns(2)
    p1.selectbox("Probe image", range(len(labels)), key=K["probe"],
                 format_func=lambda i: f"#{i}: a {bundle.class_names[int(labels[i])]}")
    p2.segmented_control("T", temps, key=K["probe_T"], default=temps[-1], format_func=lambda t: f"T = {t:g}")
    t_index = temps.index(state.get(K["probe_T"]) or temps[-1])
    sample = int(state.get(K["probe"]) or 0)
    if done:  # finished: the soft targets replay over the run's snapshots in the browser
        show_live_or_replay(kd, "probe-soft-targets", probe_at_snapshot(kd, scratch, sample, t_index),
                            caption=probe_story(kd, scratch, t_index, done), variant=(sample, t_index))
        return
    fig = cached_figure(f"probe-{kd.path}-{sample}-{t_index}", (kd.snapshot_version, scratch.snapshot_version),
                        lambda: probe_chart(kd, scratch, bundle.class_names, sample, t_index), 0.0 if done else REBUILD_S)
    if fig is not None:
        show_chart(fig, "probe-soft-targets", caption=probe_story(kd, scratch, t_index, done))


def probe_at_snapshot(kd, scratch, sample: int, t_index: int):
    """The probe chart drawn from one of the KD student's snapshots (the scratch student's at the
    same step or before): the replay's drawing function."""
    def draw(raw):
        earlier = [snap for snap in scratch.snapshots if snap.step <= raw.step][-1:]
        return probe_chart(SimpleNamespace(reference=kd.reference, snapshots=[raw], label=kd.label, colour=kd.colour),
                           SimpleNamespace(snapshots=earlier, label=scratch.label, colour=scratch.colour),
                           bundle.class_names, sample, t_index)

    return draw


def overlays() -> list:
    """The earlier runs picked for the dotted overlay, reopened from their folders."""
    views = []
    for path in state.get(K["overlay"], []):
        with user_errors(f"Run folder {path}"):
            views.append(folder_view(path))
    return views


def idle() -> None:
    st.info("Press **Start** to train both students. The charts fill in live; you need not click anything.",
            icon=":material/info:")
    earlier_views = overlays()
    if earlier_views:
        show_chart(accuracy_chart([], earlier_views), "test-accuracy", caption="Earlier runs, reopened from their folders.")


if bundle is not None:
    st.multiselect("Overlay earlier runs (dotted)", [r["path"] for r in earlier], key=K["overlay"],
                   format_func=describe_run, placeholder="Pick earlier runs from the runs folder to compare")
    live_experiment(EXPERIMENT, lambda exp: charts(exp, overlays()), idle, REFRESH_S, runs=runs, dataset=settings.dataset)
