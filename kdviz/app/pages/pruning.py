"""Pruning: remove the smallest weights, see what it costs, and win the accuracy back by retraining.

Han, Pool, Tran, Dally 2015 ("Learning both Weights and Connections"): magnitude pruning, then
retraining with the pruned weights held at zero; Zhu & Gupta 2017: the cubic (AGP) schedule
s_t = s_f + (s_i - s_f)(1 - (t - t_0)/(n dt))^3; Li et al. 2017: whole filters ranked by L1 norm.
The slider re-evaluates the trained baseline at once (``MaskedEvaluator``); the live section runs an
engine job with the ``prune`` hook and a fragment redraws its snapshots every second.
"""
from __future__ import annotations

import os
from bisect import bisect_right

import streamlit as st

from kdviz.app import session
from kdviz.app.charts import csv_button, show_chart
from kdviz.app.errors import plain_message, user_errors
from kdviz.app.live import job_view
from kdviz.app.pruning_view import (
    BASELINES, baseline_job, baseline_name, dense_unit_norms, evaluate_slider, load_baseline, one_shot_curve, remove_units,
    run_sensitivity,
)
from kdviz.app.sidebar import current_settings, load_bundle
from kdviz.app.components import show_run_status
from kdviz.app.training_view import status_row
from kdviz.engine import TrainConfig, start
from kdviz.figures.pruning import (
    accuracy_vs_sparsity, filter_norm_bars, mask_heatmap_from_snapshot, sensitivity_lines, sparsity_bars, weight_histogram,
)
from kdviz.figures.pruning_live import accuracy_over_training, wrap_title
from kdviz.prune import check_sparsity
from kdviz.prune.explore import overall_sparsity

K = {"model": "pr_model", "s": "pr_sparsity", "slider": "pr_s_slider", "exact": "pr_s_exact", "err": "pr_s_error",
     "scope": "pr_scope", "layer": "pr_layer", "target": "pr_live_target", "epochs": "pr_live_epochs",
     "live_scope": "pr_live_scope", "job": "pr_job", "follow": "pr_follow", "scrub": "pr_scrub",
     "live_layer": "pr_live_layer", "steps": "pr_job_steps", "unit_layer": "pr_unit_layer", "norm": "pr_norm", "amount": "pr_amount"}
SCOPES = {"layer": "each layer alike", "global": "one global cut"}
FINE_TUNE_LR = 0.02  # recovers the dense accuracy of LeNet-300-100 on digits at 90% in 8 epochs (measured)
SPARSITY_CAPTIONS = {
    "layer": "Every layer loses the same share. Try one global cut: the big first layer then loses far more "
             "than the small last one, whose few weights each matter more.",
    "global": "One magnitude cut over all weights: the big first layer loses far more than the small last one, "
              "whose few weights each matter more.",
}
REFRESH_S = float(os.environ.get("KDVIZ_REFRESH_S", "1.0"))
state = st.session_state
for key, value in {K["s"]: 0.8, K["slider"]: 0.8, K["exact"]: 0.8, K["scope"]: "layer", K["target"]: 0.9,
                   K["epochs"]: 8, K["live_scope"]: "layer", K["follow"]: True, K["amount"]: 0.5, K["norm"]: "l1"}.items():
    state.setdefault(key, value)

st.title("Pruning")
st.markdown(
    "Most weights of a trained network can go. **Magnitude pruning** removes the weights of smallest |w|; "
    "**retraining** with the removed ones held at zero wins the accuracy back (Han et al. 2015: LeNet-300-100 "
    "keeps 8% of its weights at the same error). Pruning gradually on Zhu & Gupta's cubic schedule (2017) "
    "lets the network adapt as it goes."
)
session.touch()
settings = current_settings()
st.selectbox("Baseline model", list(BASELINES), key=K["model"],
             format_func=lambda c: f"{c} · {BASELINES[c].note}")
bundle = job = b = None
with user_errors("Dataset"):
    bundle = load_bundle(settings)
with user_errors("Baseline"):
    if bundle is not None:
        job = baseline_job(settings, state[K["model"]])
if job is not None and show_run_status(job, baseline_name(job, state[K["model"]]),
                                       lambda: baseline_job(settings, state[K["model"]], retry=True), "pr", "baseline"):
    with user_errors("Baseline"):
        b = load_baseline(job, settings)


def on_slider() -> None:
    state[K["s"]] = state[K["exact"]] = float(state[K["slider"]])
    state[K["err"]] = None


def on_exact() -> None:
    try:
        s = check_sparsity(state[K["exact"]])
    except (TypeError, ValueError) as exc:
        state[K["err"]] = plain_message(exc)
        return
    state[K["s"]], state[K["err"]] = s, None
    state[K["slider"]] = min(round(s, 2), 0.99)


def guarded(action: str, body):
    """``body`` with bad input shown as a message: inside the fragment, so fragment reruns are covered."""
    def run(*args) -> None:
        with user_errors(action):
            body(*args)

    run.__name__ = run.__qualname__ = body.__name__
    return run


def pick_layer(key: str, layers: list[str]) -> str:
    if state.get(key) not in layers:
        state[key] = layers[0]
    st.segmented_control("Layer", layers, key=key)
    return state.get(key) or layers[0]


def explorer() -> None:
    """The sparsity slider: accuracy, bars, histogram, mask, curve and storage, re-evaluated per move."""
    c1, c2, c3 = st.columns([3, 2, 2], vertical_alignment="bottom")
    c1.slider("Sparsity: fraction of weights removed", 0.0, 0.99, step=0.01, key=K["slider"], on_change=on_slider)
    c2.number_input("…or type an exact sparsity", key=K["exact"], step=0.01, format="%.4g", on_change=on_exact,
                    help="A number in [0, 1): 0.9 removes 90% of the weights.")
    c3.radio("Scope", list(SCOPES), format_func=SCOPES.get, key=K["scope"], horizontal=True,
             help="Each layer to the same sparsity, or one magnitude cut over all layers (big layers lose more).")
    if state.get(K["err"]):
        st.error(f"**Sparsity:** {state[K['err']]}", icon=":material/warning:")
    r = evaluate_slider(b, float(state[K["s"]]), state[K["scope"]])
    total = r.table.iloc[-1]
    m = st.columns(4)
    m[0].metric("Test accuracy", f"{r.accuracy:.2%}", f"{100 * (r.accuracy - b.dense_accuracy):+.2f} points vs dense")
    m[1].metric("Weights kept", f"{int(total['kept']):,}", f"{total['kept %']:.1f}% of {int(total['weights']):,}",
                delta_color="off", delta_arrow="off")
    m[2].metric("Compression (weights)", f"{total['weights'] / max(total['kept'], 1):.1f}x")
    m[3].metric("FLOPs per image", f"{r.flops['nonzero_flops']:,}", f"of {r.flops['flops']:,} dense", delta_color="off",
                delta_arrow="off")
    a = r.arrays
    left, right = st.columns(2)
    with left:
        fig = sparsity_bars(list(a["prune/layers"]), a["prune/sparsity"], sizes=a["prune/weights"])
        show_chart(fig, "sparsity-per-layer", caption=SPARSITY_CAPTIONS[r.scope])
    with right:
        xs, ys = one_shot_curve(b, r.scope)
        fig = accuracy_vs_sparsity({"pruned, no retraining": (xs, ys)}, baseline=b.dense_accuracy,
                                   current=(overall_sparsity(a), r.accuracy))
        show_chart(fig, "accuracy-vs-sparsity", caption="Accuracy holds almost flat, then falls off a knee. "
                   "Retraining (the live section below) moves the knee to the right.")
    layer = pick_layer(K["layer"], list(a["prune/layers"]))
    i = list(a["prune/layers"]).index(layer)
    left, right = st.columns(2)
    with left:
        fig = weight_histogram(a[f"prune/hist/{layer}"], a[f"prune/edges/{layer}"], layer,
                               thresholds=float(a["prune/threshold"][i]) or None, pruned=int(round(a["prune/sparsity"][i] * a["prune/weights"][i])))
        show_chart(wrap_title(fig), "weight-histogram", caption="Trained weights pile up near zero. The cut removes that "
                   "pile and leaves a gap between the dashed lines (Han et al. 2015, figure 4).")
    with right:
        show_chart(mask_heatmap_from_snapshot(a, layer), "mask", caption="Rows are output units, columns inputs (conv filters "
                   "flattened). In LeNet-300-100's fc1 the columns that go dark are pixels that never vary (the border).")
    st.markdown("**Storage of the pruned weights**: dense float32, CSR (int32 indices) and Han's relative index "
                "(5-bit gaps for FC, 8-bit for conv, filler zeros for long gaps; Deep Compression, section 2).")
    st.dataframe(r.table, hide_index=True, width="stretch",
                 column_config={"kept %": st.column_config.NumberColumn(format="%.1f")})
    st.caption("CSR spends 32 bits of index per kept weight, so it only pays off beyond 50% sparsity; "
               "the relative index spends 5 bits and wins much earlier. Biases stay dense in every format.")
    csv_button(r.table, "pruning-storage")


def start_live() -> None:
    steps = -(-len(bundle.train_labels) // 64) * int(state[K["epochs"]])
    choice = BASELINES[state[K["model"]]]
    config = TrainConfig(
        dataset=settings.dataset, data_root=settings.data_root, model=choice.model, model_options=dict(choice.options),
        init_from=str(job.path), epochs=int(state[K["epochs"]]), lr=FINE_TUNE_LR, batch_size=64, seed=0,
        eval_every=max(1, steps // 20), snapshot_every=max(1, steps // 40), runs_root=session.runs_root(),
        name=f"pruned-{choice.model}-{settings.dataset}",
        hooks=[{"name": "prune", "sparsity": float(state[K["target"]]), "scope": state[K["live_scope"]], "schedule": "agp"}],
    )
    live_job = start(config, session.lab_manager())
    session.watchdog().add_job(session.session_id(), live_job)
    state[K["job"]], state[K["steps"]], state[K["follow"]] = live_job, steps, True


def live_panel(live: bool) -> None:
    """Status, scrubber and the four live charts of this session's prune-and-fine-tune job."""
    session.touch()
    live_job = state.get(K["job"])
    if live and live_job is not None and live_job.done:
        st.rerun(scope="app")
    if live_job is None:
        st.info("Press **Start** to prune the baseline gradually while fine-tuning it. The charts fill in live; "
                "you need not click anything.", icon=":material/info:")
        return
    view = job_view(live_job, "pruned + fine-tuned")
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    with left:
        status_row(live_job, "Prune and fine-tune")
    right.button("Stop", icon=":material/stop:", disabled=live_job.done, width="stretch", key="pr-stop",
                 on_click=live_job.stop)
    snaps = [s for s in view.snapshots if "prune/layers" in s.arrays]
    if not snaps:
        st.caption("Waiting for the first snapshot…")
        return
    steps = [s.step for s in snaps]
    total = max(int(state.get(K["steps"]) or 0), steps[-1], 1)
    following = bool(state[K["follow"]])
    if following or state.get(K["scrub"]) is None or state[K["scrub"]] > total:
        state[K["scrub"]] = steps[-1]  # no on_change here: a timed rerun must never count as a user's drag
    c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
    c1.slider("Training step: scrub back through the snapshots", 0, total, key=K["scrub"], disabled=following,
              help="Turn off 'Follow the latest' to scrub.")
    c2.toggle("Follow the latest", key=K["follow"], help="Off: the scrubber stays where you put it.")
    index = max(0, bisect_right(steps, int(state[K["scrub"]])) - 1)
    snap = snaps[index]
    a = snap.arrays
    st.caption(f"Snapshot {index + 1} of {len(snaps)}: step {snap.step} (epoch {snap.epoch:.2f}), "
               f"{100 * overall_sparsity(a):.1f}% of weights pruned.")
    layer = pick_layer(K["live_layer"], list(a["prune/layers"]))
    i = list(a["prune/layers"]).index(layer)
    left, right = st.columns(2)
    with left:
        show_chart(mask_heatmap_from_snapshot(a, layer, step=snap.step), "live-mask",
                   caption="Scrub back to watch the mask form: the AGP schedule prunes fast at first, then ever more gently.")
        fig = weight_histogram(a[f"prune/hist/{layer}"], a[f"prune/edges/{layer}"], layer,
                               thresholds=float(a["prune/threshold"][i]) or None)
        show_chart(wrap_title(fig), "live-histogram", caption="Between pruning steps, retraining lets surviving weights drift "
                   "back into the gap; the next step cuts at a higher threshold.")
    with right:
        fig = sparsity_bars(list(a["prune/layers"]), a["prune/sparsity"], targets=a["prune/target"], sizes=a["prune/weights"])
        show_chart(fig, "live-sparsity", caption="Bars: pruned now. Black ticks: the schedule's target at this step.")
        fig = accuracy_over_training(view.evals, b.dense_accuracy if b else None, epoch=snap.epoch)
        show_chart(fig, "live-accuracy", caption="Accuracy dips each time the schedule prunes and recovers while "
                   "fine-tuning; the dashed line is the scrubbed snapshot.")


if b is not None:
    st.header("1. Prune with a slider", divider="gray")
    st.caption("One-shot magnitude pruning of the trained baseline, evaluated on the whole test set at every move. "
               "No retraining yet.")
    st.fragment(guarded("Pruning", explorer))()

st.header("2. Prune and fine-tune, live", divider="gray")
st.caption("Starts from the baseline's weights and raises sparsity on Zhu & Gupta's cubic schedule over the first "
           "75% of the run; masks are re-applied after every optimizer step, so pruned weights stay zero.")
running = state.get(K["job"]) is not None and not state[K["job"]].done
c1, c2, c3, c4 = st.columns([2, 2, 2, 2], vertical_alignment="bottom")
c1.slider("Target sparsity", 0.5, 0.98, step=0.01, key=K["target"])
c2.slider("Epochs", 1, 30, key=K["epochs"])
c3.radio("Scope", list(SCOPES), format_func=SCOPES.get, key=K["live_scope"])
if c4.button("Start pruning" if not running else "Running…", type="primary", icon=":material/content_cut:",
             disabled=b is None or running, width="stretch"):
    with user_errors("Start"):
        start_live()
        st.rerun()
live = state.get(K["job"]) is not None and not state[K["job"]].done
st.fragment(run_every=REFRESH_S if live else None)(guarded("Live pruning", live_panel))(live)

if b is not None:
    st.header("3. Which layers are sensitive?", divider="gray")
    st.caption("Prune one layer at a time at rising sparsity, the others dense, no retraining (Han et al. 2015, "
               "figure 6; Distiller's sensitivity analysis). Layers that stay flat can be pruned hard.")
    if b.sensitivity is None and st.button("Run the sensitivity analysis", icon=":material/query_stats:", key="pr-sens"):
        with st.spinner("Pruning each layer at 20 sparsities…"), user_errors("Sensitivity"):
            run_sensitivity(b)
    if b.sensitivity is not None:
        show_chart(sensitivity_lines(b.sensitivity, baseline=b.dense_accuracy), "sensitivity",
                   caption="The small last layer usually drops first: each of its weights matters more. "
                   "Give it a lower target (Han et al. keep 26% of fc3 against 8% of fc1).")

    def units() -> None:
        """Rank whole neurons or filters by norm and physically remove the weakest (Li et al. 2017)."""
        norms_by_layer = dense_unit_norms(b, state[K["norm"]])
        c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
        c1.slider("Fraction of units to remove", 0.0, 0.95, step=0.05, key=K["amount"])
        c2.radio("Rank by", ["l1", "l2"], format_func=lambda n: f"{n.upper()} norm", key=K["norm"], horizontal=True)
        layer = pick_layer(K["unit_layer"], list(norms_by_layer))
        r = remove_units(b, layer, float(state[K["amount"]]), state[K["norm"]])
        left, right = st.columns([3, 1])
        with left:
            show_chart(filter_norm_bars(norms_by_layer[layer], layer, kept=r.kept, norm=state[K["norm"]]), "unit-norms",
                       caption="Units sorted by norm. The weakest carry little signal; removing them shrinks the model "
                       "itself, with no masks and no sparse formats.")
        with right:
            st.metric("Parameters", f"{r.parameters[1]:,}", f"{r.parameters[1] - r.parameters[0]:,}", delta_color="inverse")
            st.metric("FLOPs per image", f"{r.flops[1]:,}", f"{r.flops[1] - r.flops[0]:,}", delta_color="inverse")
            st.metric("Test accuracy", f"{r.accuracy:.2%}", f"{100 * (r.accuracy - b.dense_accuracy):+.2f} points",
                      help="The smaller model tested as it is, without retraining.")

    st.header("4. Remove whole neurons or filters", divider="gray")
    st.fragment(guarded("Structured pruning", units))()
