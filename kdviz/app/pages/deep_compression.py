"""Deep Compression: prune, then quantize with k-means, then Huffman-code, each stage measured.

Han, Mao, Dally 2016 ("Deep Compression", figure 1, table 1): LeNet-300-100 on MNIST goes from
1070 KB to 27 KB (40x) at 1.58% error (1.64% dense). The pipeline (``kdviz.quant.pipeline``) runs
in a background thread (``DeepCompressionJob``); a fragment redraws its progress and the size
waterfall every second, so the page never waits for it.
"""
from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from kdviz.app import session
from kdviz.app.charts import csv_button, show_chart
from kdviz.app.errors import user_errors
from kdviz.app.quantization_view import BASELINES, baseline_job, baseline_name
from kdviz.app.sidebar import current_settings, load_bundle
from kdviz.app.components import show_run_status
from kdviz.engine import load_trained_model
from kdviz.figures.quantization import codebook_histogram, size_waterfall
from kdviz.figures.quantization_explorer import legend_below
from kdviz.quant.pipeline import preset
from kdviz.quant.pipeline_job import DeepCompressionJob

K = {"model": "dc_model", "hidden": "dc_hidden", "output": "dc_output", "bits": "dc_bits", "init": "dc_init",
     "rounds": "dc_rounds", "round_epochs": "dc_round_epochs", "retrain": "dc_retrain", "finetune": "dc_finetune",
     "job": "dc_job", "layer": "dc_layer"}
REFRESH_S = float(os.environ.get("KDVIZ_REFRESH_S", "1.0"))
HAN = "Han et al. 2016, LeNet-300-100 on MNIST: 1070 KB → 27 KB (40x), error 1.64% → 1.58%"
state = st.session_state

st.title("Deep Compression")
st.markdown(
    "Three stages, each on top of the last (Han, Mao & Dally 2016): **prune** the small weights and retrain "
    "(Han et al. 2015), **quantize** what is left to $2^b$ shared values with k-means and fine-tune them, then "
    "**Huffman-code** the indices and the gaps between kept weights. Every size below is the length of real "
    f"encoded bytes, and the last model is decoded from those bytes before it is tested. ({HAN}.)"
)
session.touch()
settings = current_settings()
defaults = preset(settings.dataset)
for key, value in {K["hidden"]: defaults.hidden_sparsity, K["output"]: defaults.output_sparsity, K["bits"]: defaults.bits,
                   K["init"]: defaults.init, K["rounds"]: defaults.prune_rounds, K["round_epochs"]: defaults.round_epochs,
                   K["retrain"]: defaults.retrain_epochs, K["finetune"]: defaults.finetune_epochs}.items():
    state.setdefault(key, value)
st.selectbox("Baseline model", list(BASELINES), key=K["model"], format_func=lambda c: f"{c} · {BASELINES[c].note}")
bundle = job = None
ready = False
with user_errors("Dataset"):
    bundle = load_bundle(settings)
with user_errors("Baseline"):
    if bundle is not None:
        job = baseline_job(settings, state[K["model"]])
if job is not None and show_run_status(job, baseline_name(job, state[K["model"]]),
                                       lambda: baseline_job(settings, state[K["model"]], retry=True), "dc", "baseline"):
    ready = True

running = state.get(K["job"]) is not None and not state[K["job"]].done
c1, c2, c3, c4, c5 = st.columns([2, 2, 2, 2, 2], vertical_alignment="bottom")
c1.slider("Sparsity of the hidden layers", 0.5, 0.98, step=0.01, key=K["hidden"],
          help="Han et al. 2015 prune 92% of fc1 and 91% of fc2 in LeNet-300-100.")
c2.slider("Sparsity of the output layer", 0.0, 0.95, step=0.01, key=K["output"],
          help="The small last layer is more sensitive: Han et al. prune 74% of it.")
c3.slider("Bits per shared value", 2, 8, key=K["bits"], help="Han et al. use 6 bits for LeNet-300-100.")
with c4.popover("More settings", icon=":material/tune:", width="stretch"):
    st.selectbox("k-means initialisation", ["linear", "density", "random"], key=K["init"])
    st.number_input("Pruning rounds (AGP schedule)", 1, 10, key=K["rounds"])
    st.number_input("Retraining epochs per round", 0.0, 50.0, key=K["round_epochs"], step=1.0)
    st.number_input("Retraining epochs after the last round", 0.0, 100.0, key=K["retrain"], step=1.0)
    st.number_input("Centroid fine-tuning epochs", 0.0, 50.0, key=K["finetune"], step=1.0)


def start_pipeline() -> None:
    config = preset(settings.dataset, hidden_sparsity=float(state[K["hidden"]]), output_sparsity=float(state[K["output"]]),
                    bits=int(state[K["bits"]]), init=state[K["init"]], prune_rounds=int(state[K["rounds"]]),
                    round_epochs=float(state[K["round_epochs"]]), retrain_epochs=float(state[K["retrain"]]),
                    finetune_epochs=float(state[K["finetune"]]))
    dc = DeepCompressionJob(load_trained_model(job.path).eval(), bundle, config).start()
    session.watchdog().add_job(session.session_id(), dc)
    state[K["job"]] = dc


if c5.button("Compress" if not running else "Running…", type="primary", icon=":material/compress:",
             disabled=not ready or running, width="stretch"):
    with user_errors("Start"):
        start_pipeline()
        st.rerun()


def stage_table(dc: DeepCompressionJob) -> pd.DataFrame:
    stages = dc.stages()
    dense = stages[0]
    return pd.DataFrame([{"stage": s.name, "size (KB)": s.nbytes / 1e3, "ratio (x)": dense.nbytes / s.nbytes,
                          "test error (%)": 100 * s.error, "error change (points)": 100 * (s.error - dense.error),
                          "seconds": s.seconds, "what is stored": s.note} for s in stages])


def layer_table(dc: DeepCompressionJob) -> pd.DataFrame:
    return pd.DataFrame([{"layer": s.name, "weights": s.n_weights, "kept %": 100 * s.n_kept / s.n_weights,
                          "index bits": s.value_bits, "gap bits": s.sparse_index_bits,
                          "codebook + table bits": s.codebook_bits + s.table_bits, "ratio (x)": s.rate}
                         for s in dc.result.layer_sizes])


def pipeline_panel(live: bool) -> None:
    """Progress, the waterfall and the per-stage table of this session's pipeline."""
    session.touch()
    dc = state.get(K["job"])
    if live and dc is not None and dc.done:
        st.rerun(scope="app")
    if dc is None:
        st.info("Press **Compress** to run the three stages in the background. On the digits data they take "
                "seconds; the chart fills in as each stage ends.", icon=":material/info:")
        return
    s = dc.status()
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    left.progress(s.fraction, text=f"**{s.state}** · {s.message} · {s.elapsed_s:.0f} s")
    right.button("Stop", icon=":material/stop:", disabled=s.done, width="stretch", key="dc-stop", on_click=dc.stop)
    if s.state == "failed":
        st.error(f"**Deep Compression:** {s.message}", icon=":material/error:")
    if len(dc.stages()) < 2:
        st.caption("Pruning and retraining… the chart appears when the first stage ends.")
        return
    table = stage_table(dc)
    show_chart(size_waterfall(dc.result.sizes()), "size-waterfall",
               caption="Each bar is what one stage saves. Pruning removes most weights but keeps 32-bit values plus "
               "5-bit gaps; k-means turns each value into a few-bit index; Huffman then squeezes the skewed indices "
               "and gaps.", data=table)
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.2f") for c in
                                ("size (KB)", "ratio (x)", "test error (%)", "error change (points)", "seconds")})
    st.caption("Sizes count the weights only, as Han et al.'s table does; biases stay float32. " + HAN + ".")
    if s.state != "finished":
        return
    st.subheader("Inside the compressed model")
    layers = list(dc.result.shared)
    layer = st.segmented_control("Layer", layers, key=K["layer"], default=layers[0], required=True)
    layer = layer if layer in layers else layers[0]
    left, right = st.columns(2)
    with left:
        counts, edges = dc.result.histograms[layer]
        fig = legend_below(codebook_histogram(counts, edges, dc.result.centroids_initial[layer],
                                              dc.result.shared[layer].centroids.numpy(), layer))
        fig.update_traces(selector={"mode": "lines"}, line_width=0.8, opacity=0.7)
        show_chart(fig, "pruned-codebook", caption="The kept weights of the pruned layer form two humps (the "
                   "small ones are gone). Linear initialisation also put values in the empty middle: their clusters "
                   "are empty and dropped, so fewer than 2^bits values remain. Fine-tuning nudges the rest.")
    with right:
        frame = layer_table(dc)
        st.dataframe(frame, hide_index=True, width="stretch",
                     column_config={"kept %": st.column_config.NumberColumn(format="%.1f"),
                                    "ratio (x)": st.column_config.NumberColumn(format="%.1f")})
        st.caption("Bits of each layer's Huffman-coded streams: indices into the codebook, relative gaps between "
                   "kept weights (filler zeros bridge long gaps), the float32 codebook and the code tables.")
        csv_button(frame, "deep-compression-layers")


st.header("Prune → quantize → Huffman", divider="gray")
live = state.get(K["job"]) is not None and not state[K["job"]].done


def guarded_panel(live: bool) -> None:
    with user_errors("Deep Compression"):
        pipeline_panel(live)


st.fragment(run_every=REFRESH_S if live else None)(guarded_panel)(live)
