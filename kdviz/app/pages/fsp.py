"""FSP: distil the flow between layers (Yim, Joo, Bae, Kim, "A Gift from Knowledge Distillation", CVPR 2017).

The FSP matrix of two layers is G_ij = sum_{s,t} F1_i(s,t) F2_j(s,t) / (h w) (eq. 1). Stage 1 trains
a shallow ResNet to match a deep teacher's FSP matrices (eq. 2, no labels); stage 2 trains it on the
labels from there; a scratch student trains beside it. Any stage-1 method the registry declares
(``two_stage.stage1_methods()``: FSP, FitNets hints) can be chosen. Start runs all of it as one
experiment in the lab's job manager, and a fragment polls it (starting stage 2 when stage 1 has
finished) and redraws the heatmaps, the loss and the fast-optimisation chart every second; once stage
1 has ended the heatmaps replay its snapshots (play button, scrubber). The ResNet teacher starts by
itself only when it is short (digits); a long one (MNIST) waits for its Start button beside its
estimate, can be cancelled, and continues from its checkpoint (``teacher.shared_run_job``). The
settings travel in the page's URL (``url_settings``, "Copy link").
"""
from __future__ import annotations

import os

import streamlit as st

from kdviz.app import session
from kdviz.app.charts import show_chart
from kdviz.app.components import (
    copy_link, icon, live_experiment, page_state, read_runs, show_run_status, status_row, url_choice, url_number,
    url_settings,
)
from kdviz.app.errors import user_errors
from kdviz.app.fsp_view import (
    CHANNELS, DEPTHS, SAME, FSPChoice, check_fsp_pairs, check_hint_layers, difference_story, experiment_views,
    feature_shapes, pair_options, stage1_steps_from_url, start_experiment, teacher_job, teacher_name,
)
from kdviz.app.replay import show_live_or_replay
from kdviz.app.sidebar import current_settings, load_bundle
from kdviz.figures.fsp_live import fast_optimisation_from_records, heatmaps_from_pairs, loss_curve_from_records
from kdviz.methods import get_method
from kdviz.methods.two_stage import (
    PAIRS, SCRATCH, STAGE1, STAGE2, Stage1Choice, TwoStageFSP, latest_reading, probe_loss_key, stage1_method_of,
    stage1_methods,
)
from kdviz.present import describe
from kdviz.present.fsp_story import loss_fall_caption, race_caption

STAGE1_METHODS = stage1_methods()
K = {"teacher": "fsp_teacher", "student": "fsp_student", "channels": "fsp_channels", "s_channels": "fsp_student_channels",
     "method": "fsp_method", "pairs": "fsp_pairs", "guided": "fsp_guided", "hint": "fsp_hint", "s1": "fsp_stage1_steps",
     "epochs": "fsp_epochs", "lr": "fsp_lr", "seed": "fsp_seed", "pair": "fsp_pair", "count": "fsp_count_stage1",
     **{f"s1lr_{m.name}": f"fsp_stage1_lr_{m.name}" for m in STAGE1_METHODS}}
DEFAULTS = {K["teacher"]: "ResNet-20 (3 blocks per stage)", K["student"]: "ResNet-8 (1 block per stage)",
            K["channels"]: "8-16-32", K["s_channels"]: SAME, K["method"]: STAGE1_METHODS[0].name, K["s1"]: 150,
            K["epochs"]: 6, K["lr"]: 0.05, K["seed"]: 0, K["count"]: True, K["guided"]: "stage2_out",
            K["hint"]: "stage2_out", **{K[f"s1lr_{m.name}"]: m.stage1.default_lr for m in STAGE1_METHODS}}
REFRESH_S = float(os.environ.get("KDVIZ_REFRESH_S", "1.0"))
state = page_state(DEFAULTS)
# The settings a link carries (``?fsp_epochs=3&fsp_method=hints...``), each checked as its control would.
IN_URL = {K["teacher"]: url_choice(DEPTHS), K["student"]: url_choice(DEPTHS), K["channels"]: url_choice(CHANNELS),
          K["s_channels"]: url_choice([SAME, *CHANNELS]), K["method"]: url_choice(m.name for m in STAGE1_METHODS),
          K["s1"]: stage1_steps_from_url, K["epochs"]: url_number(1, 30, int), K["lr"]: url_number(1e-5, 1.0),
          K["seed"]: url_number(0, 2**31 - 1, int),
          **{K[f"s1lr_{m.name}"]: url_number(1e-7, 1.0) for m in STAGE1_METHODS}}
url_settings(IN_URL)

st.title("FSP: distil the flow between layers")
st.markdown(
    "Yim et al. (2017) teach a student *how a deep teacher gets from one layer to the next*. The **FSP matrix** "
    "of a section's first and last feature maps holds the inner products between their channels (eq. 1):"
)
st.latex(r"G_{ij} = \frac{1}{h\,w}\sum_{s=1}^{h}\sum_{t=1}^{w} F^{\mathrm{in}}_i(s,t)\,F^{\mathrm{out}}_j(s,t)")
st.markdown(
    "**Stage 1** trains the student to match the teacher's matrices (no labels); **stage 2** trains it on the "
    "labels from there. A student trained **from scratch** beside it tests the paper's claim: FSP reaches the "
    "same accuracy in far fewer iterations."
)
st.caption("This page uses its own ResNet teacher and student (below), trained on the sidebar's dataset; the "
           "sidebar's teacher and student sizes belong to the soft-target pages.")
session.touch()
settings = current_settings()
bundle = None
with user_errors("Dataset"):
    bundle = load_bundle(settings)

c1, c2, c3, c4 = st.columns(4)
c1.selectbox("Teacher (deep)", list(DEPTHS), key=K["teacher"])
c2.selectbox("Student (shallow)", list(DEPTHS), key=K["student"])
c3.selectbox("Channels per stage (teacher)", list(CHANNELS), key=K["channels"],
             help="Yim et al. give teacher and student the same channels per stage, so their FSP matrices match.")
c4.selectbox("Student channels", [SAME, *CHANNELS], key=K["s_channels"],
             help="Other channel counts make the FSP matrices differ in shape: try it to see the message.")
t_blocks, s_blocks = DEPTHS[state[K["teacher"]]], DEPTHS[state[K["student"]]]
channels = CHANNELS[state[K["channels"]]]
s_channels = channels if state[K["s_channels"]] == SAME else CHANNELS[state[K["s_channels"]]]
if sum(s_blocks) >= sum(t_blocks):
    st.warning("The student is as deep as the teacher or deeper: FSP distils a deep teacher into a shallower "
               "student. Pick a shallower student to see the point.", icon=":material/info:")

teacher = None
with user_errors("Teacher"):
    if bundle is not None:
        teacher = teacher_job(settings, t_blocks, channels)
if teacher is not None:
    show_run_status(teacher, teacher_name(teacher), lambda: teacher_job(settings, t_blocks, channels, retry=True),
                    "fsp-teacher")


def stage1_inputs(method, s_feats: dict, t_feats: dict) -> dict:
    """The chosen method's inputs (section pairs, or guided and hint layers), checked."""
    if method.stage1.inputs == PAIRS:
        options = pair_options(s_feats, t_feats)
        state[K["pairs"]] = [p for p in state.get(K["pairs"], options) if p in options]
        st.multiselect("Section pairs (first and last map of each stage, figure 3 of the paper)", options,
                       key=K["pairs"], placeholder="Choose one or more section pairs")
        return {"pairs": tuple(tuple(p) for p in check_fsp_pairs(list(state[K["pairs"]]), s_feats, t_feats))}
    h1, h2 = st.columns(2)
    h1.selectbox("Guided layer (student)", [n for n in s_feats if n.endswith("_out")], key=K["guided"])
    h2.selectbox("Hint layer (teacher)", [n for n in t_feats if n.endswith("_out")], key=K["hint"])
    check_hint_layers(state[K["guided"]], state[K["hint"]], s_feats, t_feats)
    return {"layers": (state[K["guided"]], state[K["hint"]])}


st.radio("Stage 1 distils", [m.name for m in STAGE1_METHODS], key=K["method"], horizontal=True,
         format_func=lambda name: get_method(name).stage1.title)
method = get_method(state[K["method"]])
choice = None
with user_errors("Setup"):
    if bundle is not None:
        shape, classes = tuple(bundle.train_images.shape[1:]), len(bundle.class_names)
        s_feats = feature_shapes(shape, classes, s_blocks, s_channels)
        t_feats = feature_shapes(shape, classes, t_blocks, channels)
        inputs = stage1_inputs(method, s_feats, t_feats)
        if method.stage1.note:
            st.caption(method.stage1.note)
        stage1 = Stage1Choice(int(state[K["s1"]]), float(state[K[f"s1lr_{method.name}"]]), **inputs)
        choice = FSPChoice(student_blocks=s_blocks, channels=s_channels, method=method.name, stage1=stage1,
                           epochs=int(state[K["epochs"]]), lr=float(state[K["lr"]]), seed=int(state[K["seed"]]))

exp = session.current_experiment(TwoStageFSP.TITLE, settings.dataset)  # polled: stage 2 starts once stage 1 has finished
runs = read_runs(exp)  # read once: the buttons and the live refresh of this rerun all agree
running = runs.live
c1, c2, c3, c4 = st.columns([2, 2, 1, 2], vertical_alignment="bottom")
c1.slider("Stage-1 iterations", 10, 1000, step=10, key=K["s1"], help="Optimizer steps on the stage-1 loss alone.")
c2.slider("Main-task epochs (stage 2 and scratch)", 1, 30, key=K["epochs"])
with c3.popover("More", icon=":material/tune:", width="stretch"):
    st.number_input("Stage-1 learning rate (SGD)", min_value=1e-7, max_value=1.0, key=K[f"s1lr_{method.name}"],
                    format="%g", help="The stage-1 loss is large (1e4 and more at the start): 1e-2 diverged on "
                    "digits, 1e-4 fell steadily. If stage 1 diverges, lower it 10x.")
    st.number_input("Main-task learning rate (SGD, momentum 0.9)", min_value=1e-5, max_value=1.0, key=K["lr"], format="%g")
    st.number_input("Seed (both students)", min_value=0, step=1, key=K["seed"])
ready = choice is not None and teacher is not None and teacher.status().state == "finished"
if c4.button("Start stage 1, stage 2 and scratch" if not running else "Running… stop it to start again", type="primary",
             icon=":material/play_arrow:", disabled=not ready or running, width="stretch"):
    with user_errors("Start"):
        session.add_experiment(start_experiment(choice, settings, bundle, str(teacher.path)))
        st.rerun()
copy_link(IN_URL)
st.divider()


def heatmaps(view, stage1_method) -> None:
    """The teacher, student and difference matrices of the chosen pair: the latest stage-1 snapshot's
    while stage 1 runs, a replay of all of them (play button, scrubber) once it has ended."""
    latest = latest_reading(view.snapshots, stage1_method, view.config)
    if latest is None:
        st.caption("Waiting for the first FSP snapshot…")
        return
    snap, reading = latest
    if state.get(K["pair"]) not in reading.labels:
        state[K["pair"]] = reading.labels[0]
    st.segmented_control("Section pair", reading.labels, key=K["pair"])
    pair = state.get(K["pair"]) or reading.labels[0]
    first = latest_reading(view.snapshots[:1], stage1_method, view.config)

    def draw(snapshot):
        try:
            return heatmaps_from_pairs(stage1_method.read_snapshot(snapshot.arrays, view.config).pairs, pair)
        except ValueError:  # a snapshot without this method's arrays, or without this pair
            return None

    when = "Stage-1 FSP matrices, " if view.done else f"Stage-1 step {snap.step}, "
    story = difference_story(first, latest, pair) if first is not None else ""
    show_live_or_replay(view, "fsp-heatmaps", draw, variant=pair, caption=(
        f"{when}averaged over 64 fixed test images. Rows are channels of the section's first map, columns of its "
        f"last. Watch the middle panel take the teacher's pattern. {story}").strip())


def stage1_row(job, label: str) -> None:
    """``status_row`` for stage 1, without its test accuracy: stage 1 matches features only and trains
    no classifier, so the accuracy of its untouched output layer means nothing."""
    limit = job.manager.max_concurrent if job.manager else None
    text = describe(job.status(), label, epochs=job.config.epochs, max_concurrent=limit)
    st.markdown(f"{icon(text.icon)} **{label}** ({job.config.dataset}) · {text.state} · stage 1 trains no "
                f"classifier: accuracy comes in stage 2 · {text.detail}")
    st.progress(text.progress)


def statuses(exp, short: str) -> None:
    """One status row per run, with Pause/Resume and Stop for the whole experiment."""
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    with left:
        stage1_row(exp.stage1, f"{short} stage 1 ({exp.stage1.config.max_steps} iterations, no labels)")
        if exp.stage2 is not None:
            status_row(exp.stage2, f"{short} stage 2 (labels, from the stage-1 weights)")
        elif STAGE2 in exp.blocked:
            st.markdown(f":material/block: **{short} stage 2** will not start: {exp.blocked[STAGE2]}.")
        else:
            st.markdown(f":material/hourglass_top: **{short} stage 2** starts when stage 1 has finished.")
        status_row(exp.job(SCRATCH), "Scratch student (labels, random start)")
    with right:
        paused = any(j.status().state == "paused" for j in exp.jobs.values())
        st.button("Resume" if paused else "Pause", icon=":material/play_arrow:" if paused else ":material/pause:",
                  disabled=exp.done, width="stretch", key="fsp-pause", on_click=exp.resume if paused else exp.pause)
        st.button("Stop", icon=":material/stop:", disabled=exp.done, width="stretch", key="fsp-stop", on_click=exp.stop)


def charts(exp, views: dict, stage1_method) -> None:
    """The stage-1 loss and the fast-optimisation chart, side by side."""
    info, stage1 = stage1_method.stage1, views[STAGE1]
    a, b = st.columns(2)
    with a:
        fig = loss_curve_from_records(stage1.evals, probe_loss_key(stage1_method, stage1.config), info.short,
                                      info.loss_caption, info.loss_axis)
        if fig is None:
            st.caption("Waiting for the first stage-1 evaluation…")
        else:
            show_chart(fig, "fsp-loss", caption="Stage-1 loss on the same 64 test images at every evaluation, "
                       "total and per pair (log scale). " + loss_fall_caption(list(fig.data[0].y)))
    with b:
        page_state({K["count"]: True})  # the toggle lives in this fragment: keep its value across fragment reruns
        st.toggle("Count stage-1 iterations on the x axis", key=K["count"],
                  help="Off: both curves start at 0, comparing main-task iterations only, as in the paper.")
        stage2 = views[STAGE2].evals if STAGE2 in views else []
        fig = fast_optimisation_from_records(views[SCRATCH].evals, stage2, stage1.evals, exp.stage1.config.max_steps,
                                             info.short, count_stage1=bool(state[K["count"]]))
        if fig is None:
            st.info("The fast-optimisation chart appears with stage 2's first evaluation. Meanwhile stage 1 "
                    "learns the teacher's flow without labels, so its accuracy stays near chance.", icon=":material/schedule:")
        else:
            show_chart(fig, "fast-optimisation", caption="Test accuracy against optimizer steps: the pink curve is "
                       "stage 2, after stage 1 (dotted line); green is scratch. " + race_caption(stage2, views[SCRATCH].evals))


def idle() -> None:
    st.info("Press **Start** to run stage 1, then stage 2, and a scratch student beside them. The charts fill "
            "in live; you need not click anything.", icon=":material/info:")


def panel(exp: TwoStageFSP) -> None:
    """Status, controls and live charts of this session's latest experiment (polled on each refresh:
    stage 2 starts there once stage 1 has finished)."""
    views = experiment_views(exp)
    stage1_method = stage1_method_of(exp.stage1.config)
    statuses(exp, stage1_method.stage1.short)
    if stage1_method.reader is not None:
        heatmaps(views[STAGE1], stage1_method)
    charts(exp, views, stage1_method)


if bundle is not None:
    live_experiment(TwoStageFSP.TITLE, panel, idle, REFRESH_S, runs=runs, dataset=settings.dataset)
