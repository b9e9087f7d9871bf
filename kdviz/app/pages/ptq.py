"""Post-training quantization: range setting, the layer that breaks accuracy, mixed precision.

Works on any finished run: a lab baseline (trained once in the background, as on the Quantization
page) or a finished run folder from the runs root on the sidebar's data set. The study
(``kdviz.present.ptq.ptq_study``: min-max / percentile / MSE ranges at 8, 4, 3 bits; AIMET-style
per-layer noise; HAWQ-V3-style mixed precision against uniform bits at equal size) runs in a worker
thread; when it takes more than a second the page says so and polls until it is done.
"""
from __future__ import annotations

import concurrent.futures
import os

import streamlit as st

from kdviz.app import session
from kdviz.app.charts import show_chart
from kdviz.app.components import guarded, page_state
from kdviz.app.errors import user_errors
from kdviz.app.pruning_view import ready_baseline
from kdviz.app.sidebar import LabSettings, current_settings, load_bundle
from kdviz.engine import load_trained_model
from kdviz.engine.run_reader import list_runs
from kdviz.present.ptq import BackgroundStudies, PTQSettings, RANGE_LABELS, RANGE_METHODS, ptq_evaluator, ptq_study

K = {"source": "ptq_source", "model": "ptq_model", "run": "ptq_run", "method": "ptq_method", "bits": "ptq_bits",
     "uniform": "ptq_uniform_bits", "per_channel": "ptq_per_channel", "act_bits": "ptq_act_bits"}
SOURCES = ("a lab baseline", "a finished run")
ACT_BITS = ("float", 8, 6, 4)
WAIT_S = float(os.environ.get("KDVIZ_PTQ_WAIT_S", "1.0"))  # draw at once when the study is quicker; else poll
POLL_S = float(os.environ.get("KDVIZ_REFRESH_S", "0.5"))
DEFAULT = PTQSettings()
state = page_state({K["source"]: SOURCES[0], K["method"]: DEFAULT.method, K["bits"]: DEFAULT.bits,
                    K["uniform"]: DEFAULT.uniform_bits, K["per_channel"]: DEFAULT.per_channel, K["act_bits"]: 8})

st.title("Post-training quantization")
st.markdown(
    "No retraining: choose each tensor's **range** (min-max, a percentile, or the clipping value of least squared "
    "error, Banner et al. 2019), calibrate the activations on 256 training images, and find **which layer breaks "
    "accuracy** by quantizing one layer at a time (AIMET's per-layer analysis). Then give each layer its own bit "
    "width under a size budget from that sweep (**mixed precision**, HAWQ-V3's integer program) and compare with "
    "uniform bits at the same size."
)
session.touch()
settings = current_settings()


@st.cache_resource(show_spinner="Calibrating the model...", max_entries=4)
def _evaluator(run_path: str, dataset: str, root: str | None, download: bool):
    bundle = load_bundle(LabSettings(dataset=dataset, data_root=root, download=download))
    return ptq_evaluator(load_trained_model(run_path).eval(), bundle), BackgroundStudies()


def finished_runs() -> dict[str, str]:
    """{label: run folder} of the finished runs on the sidebar's data set, newest first."""
    rows = [r for r in list_runs(session.runs_root()) if r["state"] == "finished" and r["dataset"] == settings.dataset]
    return {f"{r['name']} · {r['model']}" + (f" · {r['test_acc']:.1%}" if r.get("test_acc") is not None else ""): r["path"]
            for r in rows}


def pick_run() -> str | None:
    """The run folder to quantize, or None while none is ready (the reason is on the page)."""
    st.radio("Quantize", SOURCES, key=K["source"], horizontal=True)
    if state[K["source"]] == SOURCES[0]:
        _, _, path = ready_baseline(settings, K["model"], "ptq", lambda job, _: str(job.path))
        return path
    runs = finished_runs()
    if not runs:
        st.info(f"No finished run on {settings.dataset} in the runs folder yet: train one, or quantize a lab baseline.",
                icon=":material/info:")
        return None
    if state.get(K["run"]) not in runs:
        state[K["run"]] = next(iter(runs))
    st.selectbox("Finished run", list(runs), key=K["run"])
    return runs[state[K["run"]]]


def controls() -> PTQSettings:
    c1, c2, c3 = st.columns([3, 2, 2], vertical_alignment="bottom")
    c1.segmented_control("Range setting", RANGE_METHODS, key=K["method"], required=True,
                         format_func=lambda m: RANGE_LABELS[m])
    c2.selectbox("Activation bits", ACT_BITS, key=K["act_bits"], format_func=lambda b: "float" if b == "float" else f"{b} bits")
    c3.toggle("Scale per output channel", key=K["per_channel"])
    c1, c2 = st.columns(2)
    c1.slider("Bits of the layer-by-layer view", 2, 8, key=K["bits"])
    c2.slider("Uniform bits to match in size", 2, 6, key=K["uniform"])
    act = state[K["act_bits"]]
    return PTQSettings(state[K["method"]], int(state[K["bits"]]), int(state[K["uniform"]]), bool(state[K["per_channel"]]),
                       None if act == "float" else int(act))


def draw(study) -> None:
    charts = study.charts()
    st.subheader("Which layer breaks accuracy?")
    st.markdown(study.worst_sentence())
    show_chart(charts["layer-noise"], "layer-noise",
               caption="Each layer's weight and input quantized alone; SQNR of its output on the calibration images "
                       "(10 log₁₀ signal/noise) and the test accuracy lost.")
    st.subheader("Mixed precision against uniform bits")
    st.markdown(study.mixed_sentence())
    left, right = st.columns(2)
    with left:
        show_chart(charts["chosen-bits"], "chosen-bits",
                   caption="Bits chosen per layer under the uniform model's size (exact knapsack over the sweep).")
    with right:
        show_chart(charts["accuracy-vs-size"], "accuracy-vs-size",
                   caption="One mixed choice per budget (2 to 8 bits per weight on average) beside uniform widths.")
    st.subheader("Range setting")
    st.markdown(study.ranges_sentence())
    show_chart(charts["ranges"], "ranges", caption="Every layer's weights at the bits shown, activations at the chosen "
                                                   "activation bits, both ranges set by each method.")


def results(run_path: str, chosen: PTQSettings) -> None:
    """The study for ``chosen``: drawn at once when ready within a second, else polled from its worker."""
    ev, studies = _evaluator(run_path, settings.dataset, settings.data_root, settings.download)
    future = studies.submit(chosen, lambda: ptq_study(ev, chosen))
    try:
        study = future.result(timeout=WAIT_S)
    except concurrent.futures.TimeoutError:
        st.info("Quantizing every layer at every bit width and testing each, in the background…",
                icon=":material/hourglass_top:")
        st.fragment(run_every=POLL_S)(guarded("Post-training quantization", wait_for))(future)
        return
    draw(study)


def wait_for(future) -> None:
    if future.done():
        future.result()  # a failure shows as a message
        st.rerun(scope="app")
    st.caption("Still computing…")


with user_errors("Post-training quantization"):
    run_path = pick_run()
    if run_path is not None:
        chosen = controls()
        chosen.spec()
        st.caption(f"Float32 test accuracy of this run: "
                   f"**{_evaluator(run_path, settings.dataset, settings.data_root, settings.download)[0].float_accuracy:.2%}**")
        results(run_path, chosen)
