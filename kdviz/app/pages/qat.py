"""Quantization-aware training: fine-tune a float baseline with fake-quantized weights and activations.

QAT (Jacob et al. 2018, eq. 1-2: ranges from min/max, rounding passed straight through) or LSQ
(Esser et al., ICLR 2020: a learned step per tensor, gradient scaled by 1/sqrt(N Q_P)). Start fine-tunes
the baseline in the background (configs from ``kdviz.present.qat_story``); a fragment redraws each
layer's step size, a layer's weights with the quantization grid moving on them, and accuracy against
bits: post-training quantization (computed once per baseline) beside every QAT and LSQ run of this
session. The page only reads the runs' records and snapshots.
"""
from __future__ import annotations

import os

import streamlit as st

from kdviz.app import session
from kdviz.app.charts import show_chart
from kdviz.app.components import live_experiment, page_state, pick_layer, read_runs, run_controls, status_row
from kdviz.app.errors import plain_message, user_errors
from kdviz.app.live import job_view
from kdviz.app.pruning_view import ready_baseline
from kdviz.app.replay import show_live_or_replay
from kdviz.app.sidebar import LabSettings, current_settings, load_bundle
from kdviz.engine import load_trained_model
from kdviz.figures.qat import accuracy_against_bits, step_size_curve, weight_grid_histogram
from kdviz.methods.qat import step_size_series
from kdviz.present.qat_story import (
    BITS_CHOICES, KINDS, QAT_DEFAULTS as QD, accuracy_curves, approach, bits_caption, float_accuracy, grid_caption,
    grid_series, ptq_accuracies, qat_fine_tune_config,
)

K = {"model": "qat_model", "kind": "qat_kind", "bits": "qat_bits", "epochs": "qat_epochs", "lr": "qat_lr",
     "pace": "qat_pace", "layer": "qat_layer", "error": "qat_start_error"}
DEFAULTS = {K["kind"]: QD.kind, K["bits"]: QD.bits, K["epochs"]: QD.epochs, K["lr"]: QD.lr, K["pace"]: True}
EXPERIMENT = "QAT fine-tune"
PACE_S = float(os.environ.get("KDVIZ_QAT_PACE_S", "15"))  # a digits fine-tune takes ~2 s otherwise
REFRESH_S = float(os.environ.get("KDVIZ_REFRESH_S", "1.0"))
state = page_state(DEFAULTS)

LSQ_EQ = (r"\hat v = \left\lfloor \mathrm{clip}\!\left(\tfrac{v}{s}, -Q_N, Q_P\right) \right\rceil s, \qquad "
          r"g = \frac{1}{\sqrt{N\,Q_P}}")
st.title("Quantization-aware training: learn with the rounding in the loop")
st.markdown(
    "Post-training quantization rounds a trained network's weights and activations to $b$ bits and hopes. "
    "**Quantization-aware training** fine-tunes with the rounding in the forward pass and passes the gradient "
    "straight through it (Jacob et al. 2018), so the weights settle where the grid is. **LSQ** also *learns* "
    "each layer's step size $s$ (Esser et al. 2020), with its gradient scaled by $g$:")
st.latex(LSQ_EQ)
st.caption("The first and last layers keep 8 bits, as in both papers; the others use the bits you choose, for "
           "weights and layer inputs alike.")
session.touch()
settings = current_settings()


@st.cache_resource(show_spinner="Quantizing the baseline after training at every bit width…", max_entries=4)
def _ptq(run_path: str, dataset: str, root: str | None, download: bool) -> tuple[float, dict[int, float]]:
    bundle = load_bundle(LabSettings(dataset=dataset, data_root=root, download=download))
    model = load_trained_model(run_path).eval()
    return float_accuracy(model, bundle), ptq_accuracies(model, bundle, BITS_CHOICES)


bundle, baseline, ptq = ready_baseline(
    settings, K["model"], "qat-baseline",
    lambda job, s: _ptq(str(job.path), s.dataset, s.data_root, s.download))

exp = session.current_experiment(EXPERIMENT, settings.dataset)
runs = read_runs(exp)
c1, c2, c3, c4 = st.columns(4, vertical_alignment="bottom")
c1.segmented_control("Approach", list(KINDS), key=K["kind"], format_func=lambda k: KINDS[k].label)
c2.selectbox("Bits", list(BITS_CHOICES), key=K["bits"], help="Weights and inputs of the middle layers.")
c3.slider("Epochs", 1, 20, key=K["epochs"])
with c4.popover("More settings", icon=":material/tune:", width="stretch"):
    st.number_input("Learning rate (SGD, cosine)", min_value=1e-5, max_value=1.0, key=K["lr"], format="%g")
    st.toggle(f"Pace to watch (at least {PACE_S:.0f} s)", key=K["pace"])


def start_fine_tune() -> None:
    """The Start button: one QAT or LSQ fine-tune of the baseline (a bad setting is shown, not raised)."""
    state[K["error"]] = None
    try:
        spec = approach(state.get(K["kind"]) or QD.kind)
        config = qat_fine_tune_config(baseline, spec.name, int(state[K["bits"]]), epochs=int(state[K["epochs"]]),
                                      lr=float(state[K["lr"]]), runs_root=session.runs_root(),
                                      pace_s=PACE_S if state[K["pace"]] else None)
        session.start_experiment(EXPERIMENT, {spec.label: config})
    except (ValueError, TypeError, OSError) as exc:
        state[K["error"]] = plain_message(exc)


run_controls(runs, "qat-fine-tune", on_start=start_fine_tune, start_label="Start fine-tuning", running_label="Running…",
             start_disabled=ptq is None)
if state.get(K["error"]):
    st.error(f"**Start:** {state[K['error']]}", icon=":material/warning:")
st.divider()


def bits_chart() -> None:
    """Accuracy against bits: PTQ of the baseline beside this session's finished QAT and LSQ runs."""
    if ptq is None:
        return
    float_acc, ptq_curve = ptq
    views = [job_view(job, name) for e in session.experiments(EXPERIMENT, settings.dataset) for name, job in e.jobs.items()]
    curves, colours = accuracy_curves(ptq_curve, views)
    show_chart(accuracy_against_bits(curves, colours, float_acc), "qat-bits", caption=bits_caption(curves, float_acc))


def grid_drawer(view, layer: str):
    def draw(raw):
        snap = view.read(view.method, raw)
        if layer not in snap.layers:
            return None
        counts, edges, grid = grid_series(snap, layer)
        return weight_grid_histogram(counts, edges, grid, layer, snap.bits[layer], raw.step, grid_colour=view.colour)

    return draw


def panel(exp) -> None:
    """Status, step sizes, the moving grid and accuracy against bits for this session's latest fine-tune."""
    name, job = next(iter(exp.jobs.items()))
    view = job_view(job, name)
    status_row(job, view.label)
    left, right = st.columns(2)
    with left:
        series = step_size_series(view.evals, view.method, view.config) if view.evals else {}
        if series:
            show_chart(step_size_curve(series), "qat-steps", caption="LSQ learns each step; QAT's follows the "
                       "weights' own range (the mean over output channels).")
    with right:
        if view.snapshots:
            snap = view.read(view.method)
            layer = pick_layer(K["layer"], snap.layers)
            show_live_or_replay(view, "qat-grid", grid_drawer(view, layer), variant=layer,
                                caption=grid_caption(snap, layer))
        else:
            st.caption("Waiting for the first snapshot…")
    bits_chart()


def idle() -> None:
    st.info("Press **Start fine-tuning**: the step sizes and the grid move live; you need not click anything. "
            "Each finished run adds a point to the accuracy-against-bits chart.", icon=":material/info:")
    with user_errors("Post-training quantization"):
        bits_chart()


if bundle is not None and ptq is not None:
    live_experiment(EXPERIMENT, panel, idle, REFRESH_S, runs=runs, dataset=settings.dataset)
