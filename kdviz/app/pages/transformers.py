"""Transformers: distil a tiny vision transformer and watch its attention; prune and quantize it.

Tab "Distil" (TinyBERT, Jiao et al. 2020, eqs. 7-11): the ViT teacher preset is trained once in the
background (``kdviz.present.vit_configs``); Start trains a ViT student distilled from it (prediction,
hidden-state, attention-matrix and embedding losses, each weighted, 0 = off) beside the same student
trained alone, and a fragment redraws every second, without a click: the class token's attention over
the probe digit's patches per layer and head (teacher and student), the attention rollout of both
(Abnar & Zuidema 2020), the four losses and the test accuracy of both students. Configs, readings and
captions come from ``kdviz.present.vit_story``.

Tab "Prune and quantize": ``kdviz.app.vit_compression_view.render_vit_compression`` (head pruning by
importance, Michel et al. 2019; N:M, int8 and k-means forms); the preset teacher's Start button is
drawn on the first tab only (two would share their widget keys).
"""
from __future__ import annotations

import os

import streamlit as st

from kdviz.app import session
from kdviz.app.charts import show_chart
from kdviz.app.components import (
    copy_link, dataset_and_run, live_experiment, page_state, read_runs, run_controls, show_run_status, status_row,
    url_choice, url_number, url_settings,
)
from kdviz.app.errors import plain_message, user_errors
from kdviz.app.live import job_view
from kdviz.app.replay import show_live_or_replay
from kdviz.app.sidebar import current_settings
from kdviz.app.teacher import shared_run_job, teacher_epochs
from kdviz.app.vit_compression_view import render_vit_compression
from kdviz.distill.transformer import LAYER_MAPPINGS
from kdviz.figures.vit_attention import accuracy_race, distill_loss_curve, head_maps, rollout_maps, token_matrices
from kdviz.methods.scratch import SCRATCH, TEACHER
from kdviz.methods.vit_distill import VIT_DISTILL
from kdviz.present.runs import teacher_accuracy
from kdviz.present.vit_configs import teacher_config, teacher_run_options
from kdviz.present.vit_story import (
    VIT_DEFAULTS as D, accuracy_series, distill_experiment, first_reading, loss_series, map_scale, maps_caption,
    matched_matrices, race_caption,
)

K = {"w_pred": "vit_w_pred", "w_hidden": "vit_w_hidden", "w_att": "vit_w_att", "w_emb": "vit_w_emb",
     "T": "vit_T", "mapping": "vit_mapping", "epochs": "vit_epochs", "kind": "vit_kind", "subset": "vit_subset",
     "seed": "vit_seed", "error": "vit_start_error", "pair": "vit_pair", "head": "vit_head"}
TRAIN_SIZES = {"300 (30 per class)": 300, "100 (10 per class)": 100, "1000 (100 per class)": 1000, "all": None}
DEFAULTS = {K["w_pred"]: D.prediction_weight, K["w_hidden"]: D.hidden_weight, K["w_att"]: D.attention_weight,
            K["w_emb"]: D.embedding_weight, K["T"]: D.T, K["mapping"]: D.layer_mapping, K["epochs"]: D.epochs,
            K["kind"]: D.attention_kind, K["subset"]: next(k for k, v in TRAIN_SIZES.items() if v == D.train_subset),
            K["seed"]: D.seed, K["pair"]: 0, K["head"]: 0}
MAX_EPOCHS = 100
EXPERIMENT = "ViT distillation"
REFRESH_S = float(os.environ.get("KDVIZ_REFRESH_S", "1.0"))
PACE_S = float(os.environ.get("KDVIZ_VIT_DISTILL_PACE_S", str(D.pace_s or 0))) or None  # tests: 0 = unpaced
state = page_state(DEFAULTS)
WEIGHT = url_number(0.0, 100.0)
IN_URL = {K["w_pred"]: WEIGHT, K["w_hidden"]: WEIGHT, K["w_att"]: WEIGHT, K["w_emb"]: WEIGHT,
          K["T"]: url_number(0.1, 50.0), K["mapping"]: url_choice(LAYER_MAPPINGS),
          K["epochs"]: url_number(1, MAX_EPOCHS, int), K["kind"]: url_choice(("probs", "scores")),
          K["subset"]: url_choice(TRAIN_SIZES), K["seed"]: url_number(0, 2**31 - 1, int)}
url_settings(IN_URL)

LOSS = (r"\begin{aligned}\mathcal{L} = {} & \mathcal{L}_{CE} + \lambda_{pred}\,T^2\,\mathrm{KL}(p_T \Vert p_S)"
        r" + \lambda_{embd}\,\mathrm{MSE}(E^S W_e, E^T) \\ & + \sum_m \Big["
        r"\lambda_{hidn}\,\mathrm{MSE}(H^S_m W_h, H^T_{g(m)}) + \lambda_{attn}\,\frac{1}{h}\sum_{i=1}^{h}"
        r"\mathrm{MSE}(A^S_{m,i}, A^T_{g(m),i})\Big]\end{aligned}")  # two lines: one overflowed the page
INTRO = """
A vision transformer cuts the digit into patches; every layer's heads decide which patches each token
looks at (**attention**, one row of softmax(QKᵀ/√d) per token). TinyBERT (Jiao et al. 2020) distils a
transformer layer by layer: the student's attention matrices and hidden states are pulled towards the
teacher's at mapped layers g(m) (eqs. 7-9), and its predictions towards the teacher's soft targets
(eq. 10). The student has half the teacher's layers and heads; each student head learns the mean of a
group of teacher heads.
"""


def distil_tab() -> None:
    settings = current_settings()
    preset_epochs = {settings.dataset: teacher_config(settings.dataset).epochs}
    options = teacher_run_options(settings.dataset, settings.data_root, session.runs_root(),
                                  epochs=teacher_epochs(settings.dataset, preset_epochs))
    bundle, teacher = dataset_and_run(settings, lambda: shared_run_job(options), "ViT teacher")
    model = teacher_config(settings.dataset).model_options
    ready = teacher is not None and show_run_status(
        teacher, f"ViT teacher ({model['depth']} layers x {model['heads']} heads, {settings.dataset})",
        lambda: shared_run_job(options, retry=True), "vit-teacher")
    exp = session.current_experiment(EXPERIMENT, settings.dataset)
    runs = read_runs(exp)
    controls()
    run_controls(runs, "vit", on_start=lambda: start_students(settings, teacher), start_disabled=not ready,
                 start_label="Start distilled and alone students", running_label="Running…")
    copy_link(IN_URL)
    if state.get(K["error"]):
        st.error(f"**Start:** {state[K['error']]}", icon=":material/warning:")
    st.divider()
    if bundle is not None:
        live_experiment(EXPERIMENT, lambda e: panel(e, teacher), idle, REFRESH_S, runs=runs, dataset=settings.dataset)


def controls() -> None:
    c1, c2, c3, c4 = st.columns(4)
    help_off = "0 switches this loss off."
    c1.number_input("λ attention (eq. 7)", min_value=0.0, max_value=100.0, step=0.5, key=K["w_att"], format="%g",
                    help=help_off)
    c2.number_input("λ hidden states (eq. 8)", min_value=0.0, max_value=100.0, step=0.5, key=K["w_hidden"], format="%g",
                    help=help_off)
    c3.number_input("λ prediction (eq. 10)", min_value=0.0, max_value=100.0, step=0.5, key=K["w_pred"], format="%g",
                    help=help_off)
    c4.number_input("λ embedding (eq. 9)", min_value=0.0, max_value=100.0, step=0.5, key=K["w_emb"], format="%g",
                    help=help_off)
    d1, d2, d3, d4 = st.columns(4, vertical_alignment="bottom")
    d1.selectbox("Layer mapping g(m)", LAYER_MAPPINGS, key=K["mapping"],
                 help="uniform: g(m) = m·N/M; top: the teacher's last layers; bottom: its first; last: only the last pair")
    d2.slider("Epochs", 1, MAX_EPOCHS, key=K["epochs"])
    d3.number_input("T (prediction loss)", min_value=0.1, max_value=50.0, step=0.5, key=K["T"], format="%g")
    with d4.popover("More settings", icon=":material/tune:", width="stretch"):
        st.selectbox("Attention compared as", ("probs", "scores"), key=K["kind"],
                     help="probs: the softmax rows drawn below; scores: QKᵀ/√d before the softmax (TinyBERT's eq. 7)")
        st.selectbox("Labelled training images", list(TRAIN_SIZES), key=K["subset"])
        st.number_input("Seed (both students)", min_value=0, step=1, key=K["seed"])


def start_students(settings, teacher) -> None:
    """Start: the distilled student beside the student alone, one experiment (a bad setting is shown)."""
    state[K["error"]] = None
    try:
        configs = distill_experiment(
            str(teacher.path), settings.dataset, runs_root=session.runs_root(), data_root=settings.data_root,
            prediction_weight=float(state[K["w_pred"]]), hidden_weight=float(state[K["w_hidden"]]),
            attention_weight=float(state[K["w_att"]]), embedding_weight=float(state[K["w_emb"]]),
            T=float(state[K["T"]]), layer_mapping=state[K["mapping"]], attention_kind=state[K["kind"]],
            epochs=int(state[K["epochs"]]), train_subset=TRAIN_SIZES[state[K["subset"]]], seed=int(state[K["seed"]]),
            pace_s=PACE_S)
        session.start_experiment(EXPERIMENT, configs)
    except (ValueError, TypeError, OSError) as exc:
        state[K["error"]] = plain_message(exc)


def idle() -> None:
    st.info("Press **Start** to train both students. The attention maps, losses and accuracy update live; you need "
            "not click anything.", icon=":material/info:")


def panel(exp, teacher) -> None:
    """Status, live attention maps, rollout, losses and accuracy of this session's latest experiment."""
    student = job_view(exp.job(VIT_DISTILL.label), VIT_DISTILL.label)
    alone = job_view(exp.job(SCRATCH.label), SCRATCH.label)
    for view in (student, alone):
        status_row(view.job, view.label)
    maps(student)
    a, b = st.columns(2)
    with a:
        steps, losses = loss_series(student.steps, student.config)
        if steps and losses:
            show_chart(distill_loss_curve(steps, losses), "vit-losses",
                       caption="Each loss as trained (weighted), every step; eq. 7's and eq. 8's sum over the layer pairs.")
    with b:
        series = {v.label: accuracy_series(v.evals) for v in (student, alone) if v.evals}
        if series:
            t_acc = teacher_accuracy([student])
            last = [series[v.label][1][-1] if v.label in series else None for v in (student, alone)]
            show_chart(accuracy_race(series, {v.label: v.colour for v in (student, alone)}, t_acc), "vit-accuracy",
                       caption=race_caption(*last, teacher=t_acc, finished=student.done and alone.done))


def maps(student) -> None:
    """The probe digit's attention per layer and head, teacher beside student, and both rollouts."""
    if not student.snapshots:
        st.caption("Waiting for the first snapshot of attention maps…")
        return
    page_state(DEFAULTS)  # drawn inside the live fragment: its widgets' settings are kept from here too
    first = first_reading(student)
    latest = student.read(VIT_DISTILL)
    st.caption(maps_caption(student.snapshots[-1].step, first, latest))
    left, right = st.columns(2)
    with left:
        show_live_or_replay(student, "vit-teacher-maps", lambda raw: head_maps(
            student.read(VIT_DISTILL, raw).teacher, latest.grid, TEACHER.label, TEACHER.colour,
            zmax=map_scale(student.read(VIT_DISTILL, raw))))
    with right:
        show_live_or_replay(student, "vit-student-maps", lambda raw: head_maps(
            student.read(VIT_DISTILL, raw).student, latest.grid, student.label, student.colour,
            zmax=map_scale(student.read(VIT_DISTILL, raw))))
    show_live_or_replay(student, "vit-rollout", lambda raw: rollout_of(student, raw))
    with st.expander("One head's whole attention matrix (what eq. 7 compares)"):
        c1, c2 = st.columns(2)
        pairs = latest.pairs
        if state.get(K["pair"]) not in range(len(pairs)):
            state[K["pair"]] = 0
        chosen = c1.selectbox("Layer pair", range(len(pairs)), key=K["pair"],
                              format_func=lambda i: f"student layer {pairs[i][0]} ← teacher layer {pairs[i][1]}")
        heads = latest.student[pairs[chosen or 0][0] - 1].shape[0]
        if state.get(K["head"]) not in range(heads):
            state[K["head"]] = 0
        head = c2.selectbox("Student head", range(heads), key=K["head"], format_func=lambda h: f"head {h + 1}")
        teacher_m, student_m, title = matched_matrices(latest, pairs[chosen or 0], int(head or 0))
        show_chart(token_matrices(teacher_m, student_m, title, TEACHER.label, student.label), "vit-matrix")


def rollout_of(student, raw):
    reading = student.read(VIT_DISTILL, raw)
    return rollout_maps(reading.image, reading.teacher_rollout, reading.student_rollout, reading.grid,
                        TEACHER.label, student.label)


st.title("Transformers: distil a ViT and watch its attention")
session.touch()
distil, compress = st.tabs(["Distil", "Prune and quantize"])
with distil:
    st.markdown(INTRO)
    st.latex(LOSS)
    st.caption("This page trains its own vision transformers (the teacher and student presets); the sidebar's teacher "
               "and student sizes belong to the soft-target pages.")
    with user_errors("Transformers"):
        distil_tab()
with compress:
    render_vit_compression(teacher_drawn_elsewhere=True)  # the Distil tab offers the teacher's Start
