"""Attention transfer: where does the teacher look, and does the student learn to look there?

Zagoruyko & Komodakis, "Paying More Attention to Attention" (ICLR 2017), section 3.1: a layer's
spatial attention map is F(A) = sum_c |A_c|^2, and the student adds beta/2 * sum_j of the distance
between its normalised maps and the teacher's (eq. 2) to cross-entropy. Start trains an AT student
beside a scratch student (one experiment, configs and defaults from ``kdviz.present.attention_story``)
against the FSP page's ResNet-20 teacher; a fragment redraws the maps of a few fixed test images, the distance
per layer pair and the test accuracy of both every second.
"""
from __future__ import annotations

import os

import streamlit as st

from kdviz.app import session
from kdviz.app.charts import show_chart
from kdviz.app.components import (
    copy_link, dataset_and_run, live_experiment, page_state, pick_layer, read_runs, run_controls, show_run_status,
    status_row, url_choice, url_number, url_settings,
)
from kdviz.app.errors import plain_message, user_errors
from kdviz.app.export import export_menu
from kdviz.app.replay import show_live_or_replay
from kdviz.app.fsp_view import teacher_job
from kdviz.app.live import job_view
from kdviz.app.sidebar import current_settings
from kdviz.figures.attention import attention_distance_curve, attention_maps, distance_series
from kdviz.figures.theme import wrap_figure_title
from kdviz.figures.training import accuracy_comparison
from kdviz.methods.attention import ATTENTION
from kdviz.methods.scratch import SCRATCH, TEACHER
from kdviz.present.attention_story import (
    ATTENTION_DEFAULTS as AD, STUDENT_CHANNELS, TEACHER_BLOCKS, TEACHER_CHANNELS, TRAIN_SIZES, accuracy_caption,
    attention_student_configs, maps_caption, race_of,
)

K = {"channels": "at_channels", "beta": "at_beta", "epochs": "at_epochs", "lr": "at_lr", "seed": "at_seed",
     "train": "at_train", "pair": "at_pair", "image": "at_image", "error": "at_start_error"}
DEFAULTS = {K["channels"]: AD.channels, K["beta"]: AD.beta, K["epochs"]: AD.epochs, K["lr"]: AD.lr, K["seed"]: AD.seed,
            K["train"]: AD.train_size}
MAX_EPOCHS = 100  # 100 labelled images take 2 steps an epoch; all of digits, 22
EXPERIMENT = "AT beside scratch"  # this page's experiments in the session
REFRESH_S = float(os.environ.get("KDVIZ_REFRESH_S", "1.0"))
state = page_state(DEFAULTS)
# The settings a link carries (``?at_beta=10&at_epochs=3...``), each checked as its control would.
IN_URL = {K["channels"]: url_choice(STUDENT_CHANNELS), K["train"]: url_choice(TRAIN_SIZES),
          K["beta"]: url_number(0.0, 1000.0), K["epochs"]: url_number(1, MAX_EPOCHS, int),
          K["lr"]: url_number(1e-5, 1.0), K["seed"]: url_number(0, 2**31 - 1, int)}
url_settings(IN_URL)

AT_LOSS = (r"\mathcal{L}_{AT} = \mathcal{L}_{CE} + \frac{\beta}{2}\sum_j \left\lVert \frac{Q_S^j}{\lVert Q_S^j\rVert_2}"
           r" - \frac{Q_T^j}{\lVert Q_T^j\rVert_2} \right\rVert_2")  # eq. 2
INTRO = r"""
Zagoruyko & Komodakis (2017) sum a layer's squared activations over its channels into a **spatial
attention map**, a picture of *where* the network looks (section 3.1):

$$F(A) = \sum_{c=1}^{C} |A_c|^2, \qquad Q = \mathrm{vec}(F(A))$$

The student learns from the labels **and** pulls its normalised maps towards the teacher's at every layer
pair *j* of the same resolution (eq. 2). The channels are summed away, so a thin student can copy a wide
teacher's attention:

"""
st.title("Attention transfer: learn where the teacher looks")
st.markdown(INTRO + f"$${AT_LOSS}$$")
st.caption("This page trains its own ResNet-8 students against a ResNet-20 teacher (the FSP page's) on the sidebar's "
           "dataset; the sidebar's teacher and student sizes belong to the soft-target pages. By default each student "
           f"sees only {TRAIN_SIZES[AD.train_size]} labelled images, where the teacher's maps help most; the "
           "teacher saw them all.")
session.touch()
settings = current_settings()
bundle, teacher = dataset_and_run(settings, lambda: teacher_job(settings, TEACHER_BLOCKS, TEACHER_CHANNELS))
ready = teacher is not None and show_run_status(
    teacher, f"teacher ResNet-20 ({settings.dataset})",
    lambda: teacher_job(settings, TEACHER_BLOCKS, TEACHER_CHANNELS, retry=True), "at-teacher")

exp = session.current_experiment(EXPERIMENT, settings.dataset)  # none started on another data set
runs = read_runs(exp)  # read once: the buttons and the live refresh of this rerun all agree
c1, c2, c3, c4, c5 = st.columns(5, vertical_alignment="bottom")
c1.selectbox("Student channels per stage (ResNet-8)", list(STUDENT_CHANNELS), key=K["channels"])
c2.selectbox("Labelled training images", list(TRAIN_SIZES), key=K["train"],
             help="Both students see the same class-balanced labelled images; the teacher saw them all. "
                  "The teacher's maps matter most when labels are few.")
c3.number_input("β (weight of the attention term)", min_value=0.0, max_value=1000.0, step=0.5, key=K["beta"],
                format="%g", help="β/2 multiplies the sum of the pairs' distances; 0 turns attention transfer off.")
c4.slider("Epochs", 1, MAX_EPOCHS, key=K["epochs"], help="Passes over the labelled training images.")
with c5.popover("More settings", icon=":material/tune:", width="stretch"):
    st.number_input("Learning rate (SGD, momentum 0.9)", min_value=1e-5, max_value=1.0, key=K["lr"], format="%g")
    st.number_input("Seed (both students)", min_value=0, step=1, key=K["seed"])


def student_configs() -> dict:
    """The AT and scratch students' configs these settings give (raises ``ValueError`` for a bad one)."""
    return attention_student_configs(
        teacher=str(teacher.path), dataset=settings.dataset, data_root=settings.data_root,
        channels=state[K["channels"]], beta=float(state[K["beta"]]), epochs=int(state[K["epochs"]]),
        lr=float(state[K["lr"]]), train_size=state[K["train"]], seed=int(state[K["seed"]]),
        runs_root=session.runs_root())


def start_students() -> None:
    """The Start button: an AT student and a scratch student as one experiment (a bad setting is shown)."""
    state[K["error"]] = None
    try:
        session.start_experiment(EXPERIMENT, student_configs())
    except (ValueError, TypeError, OSError) as exc:
        state[K["error"]] = plain_message(exc)


def charts_to_export():
    """The report's charts, built only when it is downloaded: both students' test accuracy."""
    views = [job_view(job, label) for label, job in exp.jobs.items()] if exp is not None else []

    def build() -> list:
        runs = [{"label": v.label, "colour": v.colour, "records": v.evals} for v in views if v.evals]
        return [("Test accuracy of both students", accuracy_comparison(runs))] if runs else []

    return build


run_controls(runs, "at", on_start=start_students, start_label="Start AT and scratch students",
             running_label="Running…", start_disabled=not ready)
link, export, _ = st.columns([2, 2, 5])  # wide enough for "Copy link" and "Export" whole
with link:
    copy_link(IN_URL)
with export, user_errors("Export"):
    shown = {name: state[key] for name, key in K.items() if key in DEFAULTS}
    export_menu("Attention transfer", shown, list(student_configs().items()) if ready else [],
                charts=charts_to_export(), key="attention-transfer")
if state.get(K["error"]):
    st.error(f"**Start:** {state[K['error']]}", icon=":material/warning:")
st.divider()


def maps(student, distances: dict) -> None:
    """The latest snapshot's teacher and student attention maps for the chosen pair and probe image."""
    if not student.snapshots:
        st.caption("Waiting for the first snapshot of attention maps…")
        return
    snap = student.read(ATTENTION)
    pair = pick_layer(K["pair"], snap.labels, "Layer pair (same resolution in teacher and student)")
    shown = list(range(len(snap.images)))
    if state.get(K["image"]) not in shown:
        state[K["image"]] = 0
    st.segmented_control("Probe image", shown, key=K["image"], format_func=lambda i: f"test image #{i}")
    image = int(state.get(K["image"]) or 0)
    def draw(raw):
        chosen = student.read(ATTENTION, raw).pair(pair)
        return attention_maps(snap.images[image], chosen.teacher[image], chosen.student[image], pair,
                              teacher_label=TEACHER.label, student_label=student.label, teacher_colour=TEACHER.colour,
                              student_colour=student.colour)

    show_live_or_replay(student, "at-maps", draw, variant=(pair, image),
                        caption=maps_caption(student.snapshots[-1].step, race_of(student.config, distances)))


def idle() -> None:
    st.info("Press **Start** to train both students. The maps and charts fill in live; you need not click "
            "anything.", icon=":material/info:")


def panel(exp) -> None:
    """Status, attention maps, distance per pair and accuracy of this session's latest experiment."""
    student, scratch = job_view(exp.job(ATTENTION.label), ATTENTION.label), job_view(exp.job(SCRATCH.label), SCRATCH.label)
    for view in (student, scratch):
        status_row(view.job, view.label)
    steps, distances = distance_series(student.evals, ATTENTION.metric_key(student.config, "probe_loss"))
    maps(student, distances)
    a, b = st.columns(2)
    with a:
        if steps:
            show_chart(attention_distance_curve(steps, distances), "at-distance", caption="Per layer pair, the mean "
                       "distance ‖q_S − q_T‖₂ over 64 fixed test images (eq. 2 without β/2).")
    with b:
        if student.evals or scratch.evals:
            t_acc = teacher.status().test_acc if teacher is not None else None
            runs = [{"label": v.label, "colour": v.colour, "records": v.evals} for v in (student, scratch)]
            fig = wrap_figure_title(accuracy_comparison(runs, teacher_accuracy=t_acc), width=46)  # a half-width column
            show_chart(fig, "at-accuracy",
                       caption=accuracy_story(student, scratch, distances, t_acc))


def accuracy_story(student, scratch, distances: dict, teacher_acc: float | None) -> str:
    """The accuracy chart's caption from both students' last evaluations (who leads, by how much, and why)."""
    last = [v.evals[-1].get("test_acc") if v.evals else None for v in (student, scratch)]
    return accuracy_caption(*last, race_of(student.config, distances), finished=student.done and scratch.done,
                            teacher_acc=teacher_acc, at_label=student.label, scratch_label=scratch.label)


if bundle is not None:
    live_experiment(EXPERIMENT, panel, idle, REFRESH_S, runs=runs, dataset=settings.dataset)
