"""Deep Compression: prune, then quantize with k-means, then Huffman-code, each stage measured.

Han, Mao, Dally 2016 ("Deep Compression", figure 1, table 1): LeNet-300-100 on MNIST goes from
1070 KB to 27 KB (40x) at 1.58% error (1.64% dense). The two training stages are engine runs of
one experiment (``kdviz.methods.deep_compression``): a pruning run from the baseline, then a
k-means run from its weights, queued by the lab's job manager, listed on Compare runs, stopped with
the session. A fragment redraws their progress, their accuracy and the size waterfall
(``kdviz.present.deep_compression``) every second, so the page never waits for them.
"""
from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from kdviz.app import session
from kdviz.app.charts import csv_button, show_chart
from kdviz.app.components import (
    copy_link, guarded, page_state, pick_layer, read_runs, run_controls, status_row, url_choice, url_number, url_settings,
)
from kdviz.app.dc_live import show_collapse_warning, show_stage_live
from kdviz.app.errors import user_errors
from kdviz.app.export import export_menu
from kdviz.app.pruning_view import ready_baseline, speed_section
from kdviz.app.sidebar import current_settings
from kdviz.figures.quantization import codebook_histogram, size_waterfall
from kdviz.figures.quantization_explorer import legend_below
from kdviz.figures.training import accuracy_comparison
from kdviz.methods.deep_compression import TITLE, deep_compression_experiment, preset
from kdviz.present.deep_compression import (
    DeepCompressionView, codebook_data, layer_rows, stage_rows, waterfall_stages,
)

K = {"model": "dc_model", "hidden": "dc_hidden", "output": "dc_output", "bits": "dc_bits", "init": "dc_init",
     "rounds": "dc_rounds", "round_epochs": "dc_round_epochs", "retrain": "dc_retrain", "finetune": "dc_finetune",
     "view": "dc_view", "layer": "dc_layer", "pace": "dc_pace"}
PACE_S = 15.0  # "pace to watch": each training stage lasts at least this long (both: ~3 s on digits otherwise)
REFRESH_S = float(os.environ.get("KDVIZ_REFRESH_S", "1.0"))
HAN = "Han et al. 2016, LeNet-300-100 on MNIST: 1070 KB → 27 KB (40x), error 1.64% → 1.58%"
NUMBERS = {c: st.column_config.NumberColumn(format="%.2f") for c in
           ("size (KB)", "ratio (x)", "test error (%)", "error change (points)", "seconds")}
state = st.session_state


def current_view() -> DeepCompressionView | None:
    """This session's latest Deep Compression experiment (``session`` keeps it, polls it and hands
    its stage jobs to the watchdog), seen through a view kept between reruns so each refresh reads
    only what is new."""
    exp = session.current_experiment(TITLE, settings.dataset)  # none started on another data set
    if exp is None:
        return None
    kept = state.get(K["view"])
    if kept is None or kept.experiment is not exp:
        kept = state[K["view"]] = DeepCompressionView(exp)
    return kept


# ---- the page -----------------------------------------------------------------------------------
st.title("Deep Compression")
st.markdown(
    "Three stages, each on top of the last (Han, Mao & Dally 2016): **prune** the small weights and retrain "
    "(Han et al. 2015), **quantize** what is left to $2^b$ shared values with k-means and fine-tune them, then "
    "**Huffman-code** the indices and the gaps between kept weights. The two training stages are runs of their "
    "own (see them on Compare runs). Every size below is the length of real encoded bytes, and the last model "
    f"is decoded from those bytes before it is tested. ({HAN}.)"
)
session.touch()
settings = current_settings()
defaults = preset(settings.dataset)
page_state({K["hidden"]: defaults.hidden_sparsity, K["output"]: defaults.output_sparsity, K["bits"]: defaults.bits,
            K["init"]: defaults.init, K["rounds"]: defaults.prune_rounds, K["round_epochs"]: defaults.round_epochs,
            K["retrain"]: defaults.retrain_epochs, K["finetune"]: defaults.finetune_epochs, K["pace"]: True})
# The settings a link carries (``?dc_hidden=0.9&dc_bits=4...``), each checked as its control would.
IN_URL = {K["hidden"]: url_number(0.5, 0.98), K["output"]: url_number(0.0, 0.95), K["bits"]: url_number(2, 8, int),
          K["init"]: url_choice(["linear", "density", "random"]), K["rounds"]: url_number(1, 10, int)}
url_settings(IN_URL)
bundle, job, ready_job = ready_baseline(settings, K["model"], "dc")
ready = ready_job is not None

c1, c2, c3, c4 = st.columns(4, vertical_alignment="bottom")
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
    st.toggle(f"Pace to watch (each stage at least {PACE_S:.0f} s)", key=K["pace"],
              help="Spread each training stage over at least this long so its charts can be watched live. Off: as "
                   "fast as it can; a finished experiment replays with ▶ either way.")


def start_pipeline() -> None:
    """Start the experiment from the finished baseline with the controls' options."""
    options = preset(settings.dataset, hidden_sparsity=float(state[K["hidden"]]), output_sparsity=float(state[K["output"]]),
                     bits=int(state[K["bits"]]), init=state[K["init"]], prune_rounds=int(state[K["rounds"]]),
                     round_epochs=float(state[K["round_epochs"]]), retrain_epochs=float(state[K["retrain"]]),
                     finetune_epochs=float(state[K["finetune"]]), extra={"pace_s": PACE_S} if state[K["pace"]] else {})
    session.add_experiment(deep_compression_experiment(job.path, options, session.lab_manager(),
                                                       runs_root=session.runs_root()))


def runs_to_export(view: DeepCompressionView | None) -> list:
    """The baseline and this session's stage runs (their configs)."""
    stages = [(view.label(name), view.experiment.job(name).config) for name in view.names
              if view.experiment.job(name) is not None] if view is not None else []
    return ([("baseline", job.config)] if job is not None else []) + stages


def charts_to_export(view: DeepCompressionView | None):
    """The report's charts, built only when it is downloaded: the stages' accuracy and the size waterfall."""
    def build() -> list:
        if view is None:
            return []
        runs = [{"label": v.label, "colour": v.colour, "records": v.evals} for v in view.views.values() if v.evals]
        report = view.report()
        shown = [("Test accuracy while each stage trains", accuracy_comparison(runs))] if runs else []
        return shown + ([("Size after each stage", size_waterfall(waterfall_stages(report)))] if report else [])

    return build


view = current_view()
runs = read_runs(view.experiment if view is not None else None)  # once: the buttons and the refresh agree
link, export, _ = st.columns([2, 2, 5])  # wide enough for "Copy link" and "Export" whole
with link:
    copy_link(IN_URL)
with export, user_errors("Export"):
    export_menu("Deep Compression", {name: state[key] for name, key in K.items() if name != "view" and key in state},
                runs_to_export(view),
                charts=charts_to_export(view), key="deep-compression")
if ready:
    run_controls(runs, "dc", on_start=guarded("Start", start_pipeline), start_label="Compress")
else:
    st.caption("**Compress** appears once the baseline has finished training.")


def stage_status(view: DeepCompressionView) -> None:
    """Overall progress, then one line per stage (a started stage's job, or why it waits)."""
    st.progress(view.progress, text=f"**{view.state}** · {view.progress:.0%} of the two training stages")
    for name in view.names:
        stage_job = view.experiment.job(name)
        if stage_job is not None:
            status_row(stage_job, view.label(name))
        else:
            st.caption(view.stage_status(name).line)


def live_accuracy(view: DeepCompressionView) -> None:
    """Both stages on one epoch axis: pruning with retraining, then k-means fine-tuning from where it
    ended (each stage's records counted on from the stages before it), a dotted line where each begins."""
    runs, offset, starts = [], 0.0, []
    for name in view.names:
        v, stage_job = view.views.get(name), view.experiment.job(name)
        if v is not None and v.evals:
            runs.append({"label": v.label, "colour": v.colour,
                         "records": [{**r, "epoch": r["epoch"] + offset} if isinstance(r.get("epoch"), (int, float)) else r
                                     for r in v.evals]})
            if offset:
                starts.append((offset, v.label))
        offset += float(stage_job.config.epochs) if stage_job is not None else 0.0
    if runs:
        fig = accuracy_comparison(runs, title="Test accuracy through the two training stages")
        for x, label in starts:
            fig.add_vline(x=x, line={"dash": "dot", "color": "#888", "width": 1}, annotation_text=f"{label} starts",
                          annotation_position="top left", annotation_font_size=11)
        show_chart(fig, "dc-accuracy",
                   caption="The epochs run on through both stages. Pruning costs accuracy at each AGP step and "
                   "retraining wins it back; after the dotted line, k-means may cost a little more (the second "
                   "stage's first point), and fine-tuning the shared values can win part of that back (a flat "
                   "line: nothing left to win).")


def sizes_panel(view: DeepCompressionView) -> bool:
    """The waterfall and the stage table; True when all four stages are in."""
    report = view.report()
    if report is None:
        st.caption("The size chart appears when pruning has finished.")
        return False
    table = pd.DataFrame(stage_rows(report))
    show_chart(size_waterfall(waterfall_stages(report)), "size-waterfall",
               caption="Each bar is what one stage saves. Pruning removes most weights but keeps 32-bit values plus "
               "5-bit gaps; k-means turns each value into a few-bit index; Huffman then squeezes the skewed indices "
               "and gaps.", data=table)
    st.dataframe(table, hide_index=True, width="stretch", column_config=NUMBERS)
    st.caption("Sizes count the weights only, as Han et al.'s table does; biases stay float32. " + HAN + ".")
    return report.complete


def inside_panel(view: DeepCompressionView) -> None:
    """A layer's codebook on its kept weights, and the bits of every layer's coded streams."""
    report = view.report()
    st.subheader("Inside the compressed model")
    layer = pick_layer(K["layer"], list(report.shared))
    left, right = st.columns(2)
    with left:
        fig = legend_below(codebook_histogram(**codebook_data(report, layer)))
        fig.update_traces(selector={"mode": "lines"}, line_width=0.8, opacity=0.7)
        show_chart(fig, "pruned-codebook", caption="The kept weights of the pruned layer form two humps (the "
                   "small ones are gone). Linear initialisation also put values in the empty middle: their clusters "
                   "are empty and dropped, so fewer than 2^bits values remain. Fine-tuning nudges the rest.")
    with right:
        frame = pd.DataFrame(layer_rows(report))
        st.dataframe(frame, hide_index=True, width="stretch",
                     column_config={"kept %": st.column_config.NumberColumn(format="%.1f"),
                                    "ratio (x)": st.column_config.NumberColumn(format="%.1f")})
        st.caption("Bits of each layer's Huffman-coded streams: indices into the codebook, relative gaps between "
                   "kept weights (filler zeros bridge long gaps), the float32 codebook and the code tables.")
        csv_button(frame, "deep-compression-layers")


def experiment_panel(live: bool) -> None:
    """This session's experiment: its stages, their live accuracy, the sizes measured so far."""
    session.touch()
    view = current_view()
    if view is None:
        st.info("Press **Compress** to run the stages in the background. On the digits data they take "
                "seconds; the chart fills in as each stage ends.", icon=":material/info:")
        return
    view.refresh()
    if live and view.done:
        st.rerun(scope="app")
    stage_status(view)
    show_stage_live(view)
    live_accuracy(view)
    show_collapse_warning(view)
    if sizes_panel(view):
        inside_panel(view)


st.header("Prune → quantize → Huffman", divider="gray")
live = runs.live
st.fragment(run_every=REFRESH_S if live else None)(guarded("Deep Compression", experiment_panel))(live)

st.header("Speed on this CPU", divider="gray")
st.caption("Han et al. count bytes; a CPU counts time. The chosen model as trained (dense), with half its neurons "
           "removed (shrunk), with its zeros stored as torch sparse CSR (sparse) and with int8 weights (torch.ao "
           "dynamic quantization), each timed here at batch 1 and 256.")
speed_view = current_view()
speed_section({"baseline": job, **({speed_view.label(n): speed_view.experiment.job(n) for n in speed_view.names}
                                   if speed_view is not None else {})}, "dc-speed")
