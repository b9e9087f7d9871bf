"""Quantization: fewer bits per weight, and what each way of choosing the values costs.

Han, Mao, Dally 2016 ("Deep Compression", sec. 3): k-means weight sharing, a codebook of 2^bits
values per layer and an index per weight, with the centroids fine-tuned afterwards (eq. 3). Against
it: uniform affine quantization (Jacob et al. 2018), binary weights (BinaryConnect, Courbariaux et
al. 2015; XNOR/BWN, Rastegari et al. 2016), product quantization (Gong et al. 2014) and low rank
by truncated SVD (Denton et al. 2014). The bits and rank sliders are browser-side players
(``kdviz.app.stops_player``): the trained baseline is quantized or truncated and tested once at
every stop (``kdviz.app.quantization_stops``, through the caching ``MethodExplorer``), and a move
redraws in the browser. The live section runs an engine job with the k-means hook
(``kdviz.present.compression_configs.kmeans_fine_tune_config``).
"""
from __future__ import annotations

import os

import streamlit as st

from kdviz.app import session
from kdviz.app.charts import csv_button, show_chart
from kdviz.app.components import (
    ExactKeys, copy_link, exact_callbacks, exact_error, guarded, job_on_dataset, page_state, pick_layer, read_runs,
    run_controls, status_row, url_choice, url_number, url_settings,
)
from kdviz.app.errors import user_errors
from kdviz.app.export import export_menu
from kdviz.app.replay import show_live_or_replay
from kdviz.app.live import job_view
from kdviz.app.pruning_view import ready_baseline
from kdviz.app.quantization_stops import BITS_GRID, bits_player_spec, rank_player_spec, rank_stops
from kdviz.app.quantization_view import curves, histogram_figure, load_qbaseline
from kdviz.app.sidebar import current_settings
from kdviz.app.stops_player import stops_player
from kdviz.engine import start
from kdviz.figures.quantization import accuracy_vs_bits, compression_vs_accuracy
from kdviz.figures.quantization_explorer import style_methods
from kdviz.methods.quantize import KMEANS
from kdviz.present.compression_charts import centroid_accuracy, codebook_charts, quantized_charts, readings
from kdviz.present.compression_configs import kmeans_fine_tune_config
from kdviz.present.stops_player import nearest_stop
from kdviz.quant.explore import DEFAULT_METHOD, KINDS, QuantChoice, option_values
from kdviz.quant.kmeans import check_bits
from kdviz.quant.lowrank import check_rank

K = {"model": "qz_model", "method": "qz_method", "init": "qz_init", "granularity": "qz_granularity",
     "scheme": "qz_scheme", "binarizer": "qz_binarizer", "subvector": "qz_subvector", "layer": "qz_layer",
     "product": "qz_curves_product", "rank_layer": "qz_rank_layer", "live_bits": "qz_live_bits",
     "live_init": "qz_live_init", "epochs": "qz_live_epochs", "lr": "qz_live_lr", "job": "qz_job",
     "live_layer": "qz_live_layer", "bits_typed": "qz_bits_typed", "bits_rev": "qz_bits_rev",
     "rank_typed": "qz_rank_typed", "rank_rev": "qz_rank_rev", "pace": "qz_pace"}
PACE_S = 20.0  # "pace to watch": the live run lasts at least this long (on digits ~1 s otherwise)
BITS_PLAYER, RANK_PLAYER = "qz_bits_player", "qz_rank_player"
BITS = ExactKeys(value="qz_bits", slider="qz_bits_slider", exact="qz_bits_exact", error="qz_bits_error")
RANK = ExactKeys(value="qz_rank", slider="qz_rank_slider", exact="qz_rank_exact", error="qz_rank_error")
OPTIONS = option_values()
INIT_LABELS = {"density": "density (CDF)", "random": "random (Forgy)"}
BINARIZER_LABELS = {"binaryconnect": "BinaryConnect: sign(w)", "xnor": "XNOR: alpha sign(w), alpha = mean |w| per unit"}
REFRESH_S = float(os.environ.get("KDVIZ_REFRESH_S", "1.0"))
DEFAULT = QuantChoice()
# The options of every quantizer (``QuantChoice`` fields); only the chosen quantizer's controls are drawn.
CHOICE_DEFAULTS = {K["init"]: DEFAULT.init, K["granularity"]: DEFAULT.per_channel, K["scheme"]: DEFAULT.symmetric,
                   K["binarizer"]: DEFAULT.binarizer, K["subvector"]: DEFAULT.subvector}
EXPLORER_DEFAULTS = {**CHOICE_DEFAULTS, K["method"]: DEFAULT_METHOD}
state = page_state({**EXPLORER_DEFAULTS, K["product"]: False, K["live_bits"]: 2, K["live_init"]: DEFAULT.init,
                    K["lr"]: 1e-3, K["bits_typed"]: None, K["bits_rev"]: 0, K["rank_typed"]: None, K["rank_rev"]: 0, K["pace"]: True})
state.setdefault(BITS.value, 3)  # the bits both the slider and its exact box show (not a widget key)
# The settings a link carries (``?qz_method=uniform&qz_bits=4...``), each checked as its control would.
IN_URL = {K["method"]: url_choice(KINDS), BITS.value: lambda raw: check_bits(int(raw)),
          K["live_bits"]: url_number(1, 8, int), K["live_init"]: url_choice(OPTIONS["init"]),
          K["lr"]: url_choice([1e-4, 3e-4, 1e-3, 3e-3])}
url_settings(IN_URL)

st.title("Quantization")
st.markdown(
    "A trained layer needs far fewer than 32 bits per weight. **k-means weight sharing** clusters a layer's "
    "weights into $2^b$ shared values and stores a $b$-bit index per weight; fine-tuning the shared values wins back "
    "accuracy (Han, Mao & Dally 2016). Compare it with evenly spaced **uniform** levels, **binary** weights "
    "(Courbariaux et al. 2015; Rastegari et al. 2016), **product quantization** of weight sub-vectors "
    "(Gong et al. 2014) and **low rank** by truncated SVD (Denton et al. 2014)."
)
session.touch()
settings = current_settings()
bundle, job, b = ready_baseline(settings, K["model"], "qz", load_qbaseline)

# One control per QuantChoice option; each quantizer shows the options its kind reads (quant.explore.KINDS).
OPTION_CONTROLS = {
    "init": lambda: st.radio("Initialisation (Han et al. sec. 3.2)", OPTIONS["init"], key=K["init"], horizontal=True,
                             format_func=lambda n: INIT_LABELS.get(n, n)),
    "per_channel": lambda: st.radio("Scale per", OPTIONS["per_channel"], key=K["granularity"], horizontal=True,
                                    format_func=lambda c: "channel" if c else "tensor"),
    "symmetric": lambda: st.radio("Range", OPTIONS["symmetric"], key=K["scheme"], horizontal=True,
                                  format_func=lambda s: "symmetric" if s else "asymmetric"),
    "binarizer": lambda: st.radio("Binarization", OPTIONS["binarizer"], key=K["binarizer"], horizontal=True,
                                  format_func=lambda n: BINARIZER_LABELS.get(n, n)),
    "subvector": lambda: st.radio("Sub-vector length d", OPTIONS["subvector"], key=K["subvector"], horizontal=True),
}


def current_choice() -> QuantChoice:
    return QuantChoice(state[K["method"]], int(state[BITS.value]), state[K["init"]], bool(state[K["scheme"]]),
                       bool(state[K["granularity"]]), state[K["binarizer"]], int(state[K["subvector"]]))


def method_controls() -> QuantChoice:
    """The method menu, its own options and the exact bits box; the choice they make."""
    page_state(EXPLORER_DEFAULTS)  # a fragment rerun may have hidden some options: keep their values
    c1, c2 = st.columns([1, 1], vertical_alignment="bottom")
    c1.segmented_control("Method", list(KINDS), format_func=lambda n: KINDS[n].title, key=K["method"], required=True)
    kind = KINDS[state[K["method"]]]
    with c2:
        for option in kind.options:
            OPTION_CONTROLS[option]()
    _, on_exact = exact_callbacks(BITS, check_bits, lambda v: min(int(v), 8))

    def on_typed() -> None:
        on_exact()
        if not state[BITS.error]:
            state[K["bits_rev"]] += 1  # the browser's slider moves to the typed width

    fixed = kind.fixed_bits is not None
    c1, c2 = st.columns([2, 3], vertical_alignment="bottom")
    c1.number_input("Type the bits (1 to 16) or drag the slider below", key=BITS.exact, step=1, on_change=on_typed,
                    disabled=fixed, help=f"{kind.title} always uses {kind.fixed_bits} bit." if fixed else
                    "1 to 8 are on the slider; 9 to 16 become a stop of their own.")
    exact_error(BITS, "Bits")
    return current_choice()


def on_bits_player() -> None:
    """The bits player reports the width the user moved to: the exact box, the link and the CSV follow."""
    picked = state.get(BITS_PLAYER) or {}
    if "value" in picked and KINDS[state[K["method"]]].fixed_bits is None:
        state[BITS.value] = state[BITS.exact] = state[BITS.slider] = int(picked["value"])
        state[BITS.error] = None


def explorer() -> None:
    """Method, options and the exact box; then the browser-side bits slider with accuracy, size,
    histogram with the levels, index map and codebook, every width evaluated once (``quantization_stops``)."""
    choice = method_controls()
    layer = pick_layer(K["layer"], b.layers)
    if choice.bits not in BITS_GRID:
        state[K["bits_typed"]] = choice.bits  # a typed or linked width is a stop of its own (until another is typed)
    with st.spinner("Quantizing every layer at every bit width of the slider and testing each…"):
        spec = bits_player_spec(b, choice, layer, state[K["bits_typed"]])
    stops_player(spec, nearest_stop(spec, choice.bits), state[K["bits_rev"]], key=BITS_PLAYER, on_change=on_bits_player)
    try:
        frame = quantized_charts(b.explorer.evaluator, b.explorer.quantize(choice), layer)["frame"]
    except ValueError:
        frame = None  # a width the quantizer refuses: the player says why
    if frame is not None:
        csv_button(frame, "codebook")


def method_curves() -> None:
    st.toggle("Add product quantization (slower: k-means in every sub-space)", key=K["product"])
    with st.spinner("Quantizing at every bit width…"):
        acc_curves, points = curves(b, bool(state[K["product"]]))
    left, right = st.columns(2)
    with left:
        show_chart(style_methods(accuracy_vs_bits(acc_curves, baseline=b.float_accuracy)), "accuracy-vs-bits",
                   caption="Uniform levels with one scale per tensor break first; k-means (values that follow the "
                   "weights) and per-channel scales hold on to fewer bits. Symmetric uniform starts at 2 bits "
                   "(1 bit would leave it the single level 0); "
                   "binary points sit at 1 bit.")
    with right:
        labelled = [p if p["method"].startswith(("k-means", "low rank")) else {**p, "label": ""} for p in points]
        show_chart(style_methods(compression_vs_accuracy(labelled, baseline=b.float_accuracy)), "compression-vs-accuracy",
                   caption="Up and to the right wins. Labels: bits for k-means, the share of full rank for low rank "
                   "(hidden layers only). Hover a point for its method and setting.")


def on_rank_player() -> None:
    """The rank player reports the rank the user moved to: the exact box follows."""
    picked = state.get(RANK_PLAYER) or {}
    if "value" in picked:
        state[RANK.value] = state[RANK.exact] = state[RANK.slider] = int(picked["value"])
        state[RANK.error] = None


def low_rank() -> None:
    """Layer and exact rank box; then the browser-side rank slider with accuracy, parameters, energy
    and spectrum, every stop evaluated once (``quantization_stops``)."""
    layer = pick_layer(K["rank_layer"], b.layers)
    top = b.explorer.low_rank(layer, 1).max_rank
    if state.get(RANK.value) is None or state[RANK.value] > top or state.get("qz_rank_for") != layer:
        state[RANK.value] = state[RANK.slider] = state[RANK.exact] = max(1, top // 4)
        state["qz_rank_for"], state[RANK.error], state[K["rank_typed"]] = layer, None, None
    shape = b.explorer.evaluator.svd(layer).matrix_shape
    _, on_exact = exact_callbacks(RANK, lambda r: check_rank(r, shape), lambda r: min(int(r), top))

    def on_typed() -> None:
        on_exact()
        if not state[RANK.error]:
            state[K["rank_rev"]] += 1  # the browser's slider moves to the typed rank

    st.number_input(f"Type the rank (1 to {top}) or drag the slider below", key=RANK.exact, step=1, on_change=on_typed)
    exact_error(RANK, "Rank")
    rank = int(state[RANK.value])
    if rank not in rank_stops(top):
        state[K["rank_typed"]] = rank  # a typed rank is a stop of its own (until another is typed)
    with st.spinner("Truncating the layer at every rank of the slider and testing each…"):
        spec = rank_player_spec(b, layer, top, state[K["rank_typed"]])
    stops_player(spec, nearest_stop(spec, rank), state[K["rank_rev"]], key=RANK_PLAYER, on_change=on_rank_player)


def live_config(epochs: int):
    """The centroid fine-tuning run the live controls describe (built on the method side)."""
    return kmeans_fine_tune_config(job, int(state[K["live_bits"]]), state[K["live_init"]], epochs=epochs,
                                   lr=float(state[K["lr"]]), runs_root=session.runs_root(),
                                   pace_s=PACE_S if state[K["pace"]] else None)


def start_live() -> None:
    """Cluster the baseline with k-means and fine-tune its shared values (the config is built on the method side)."""
    with user_errors("Start"):
        live_job = start(live_config(int(state[K["epochs"]])), session.lab_manager())
        session.keep_job(K["job"], live_job)  # a reloaded tab finds it; closing the tab stops it


def codebook_drawer(live_job, layer: str):
    """The live codebook chart of ``layer`` drawn from one raw snapshot: the replay's drawing function."""
    def draw(raw):
        found = readings(KMEANS, [raw], live_job.config)
        return codebook_charts(found[0][1], layer)[0] if found and layer in found[0][1].layers else None

    return draw


def live_panel(live: bool) -> None:
    """Status and the live codebook of this session's centroid fine-tuning job."""
    session.touch()
    live_job = job_on_dataset(K["job"], settings.dataset)
    if live and live_job is not None and live_job.done:
        st.rerun(scope="app")
    if live_job is None:
        st.info("Press **Start fine-tuning** to cluster the baseline and fine-tune its shared values. The charts fill "
                "in live; you need not click anything.", icon=":material/info:")
        return
    status_row(live_job, "Fine-tune the centroids")
    view = job_view(live_job, "k-means, fine-tuned")
    found = readings(KMEANS, view.snapshots, live_job.config)
    if not found:
        st.caption("Waiting for the first snapshot…")
        return
    snap, codebook = found[-1]
    layer = pick_layer(K["live_layer"], codebook.layers)
    hist, table, frame = codebook_charts(codebook, layer)
    left, right = st.columns(2)
    with left:
        show_live_or_replay(view, "live-codebook", codebook_drawer(live_job, layer), variant=layer,
                            caption=f"Snapshot at step {snap.step}. Dashed: the shared values k-means chose; solid: "
                            "where fine-tuning has moved them. Each moves by the summed gradient of its cluster.")
    with right:
        show_chart(centroid_accuracy(view.evals, b.float_accuracy if b else None, snap.epoch), "live-accuracy",
                   caption="The first point is k-means before any step; fine-tuning only the shared values (and "
                   "biases) climbs back towards the float model.")
    show_chart(table, "live-codebook-table", csv=False, caption="Each shared value now, and how far it has moved.")
    csv_button(frame, "live-codebook-values")


def runs_to_export() -> list:
    """The baseline and the centroid fine-tuning run these settings start (its config, as Start builds it)."""
    if job is None or b is None:
        return []
    epochs = state.get(K["epochs"]) or (4 if settings.dataset == "digits" else 1)  # its slider is drawn further down
    return [("baseline", job.config), ("k-means, fine-tuned", live_config(int(epochs)))]


def charts_to_export():
    """The report's charts, built only when it is downloaded: the chosen quantizer's histogram of the
    first layer and the accuracy against bits of every method."""
    choice = current_choice()

    def build() -> list:
        q = b.explorer.quantize(choice)
        acc_curves, _ = curves(b, False)
        return [(f"{choice.kind.title}, {choice.bits} bits: {b.layers[0]}", histogram_figure(b, q, b.layers[0])),
                ("Accuracy against bits", style_methods(accuracy_vs_bits(acc_curves, baseline=b.float_accuracy)))]

    return build


link, export, _ = st.columns([2, 2, 5])  # wide enough for "Copy link" and "Export" whole
with link:
    copy_link(IN_URL)
if b is not None:
    settings_shown = {"baseline": state.get(K["model"]), "method": state[K["method"]], "bits": state[BITS.value],
                      "live bits": state[K["live_bits"]], "live init": state[K["live_init"]], "live lr": state[K["lr"]]}
    with export, user_errors("Export"):
        export_menu("Quantization", settings_shown, runs_to_export(), charts=charts_to_export(), key="quantization")
    st.header("1. Quantize with a slider", divider="gray")
    st.caption("Every layer quantized the chosen way and the whole test set evaluated at every move. No retraining yet.")
    st.fragment(guarded("Quantization", explorer))()
    st.header("2. Which method holds up at fewer bits?", divider="gray")
    st.fragment(guarded("Curves", method_curves))()
    st.header("3. Low rank: keep the largest singular values", divider="gray")
    st.caption("W ≈ U_r S_r V_rᵀ: the layer becomes two smaller ones with r (m + n) weights (Denton et al. 2014). "
               "The error ‖W − W_r‖_F is the root of the discarded s_i².")
    st.fragment(guarded("Low rank", low_rank))()

st.header("4. Fine-tune the shared values, live", divider="gray")
st.caption("Clusters the baseline with k-means, fixes every weight's index and trains only the shared values and "
           "the biases (Han et al. 2016, eq. 3). The learning rate is small: a centroid's gradient sums its whole cluster.")
page_state({K["epochs"]: 4 if settings.dataset == "digits" else 1})
c1, c2, c3, c4 = st.columns(4, vertical_alignment="bottom")
c1.slider("Bits", 1, 8, key=K["live_bits"])
c2.selectbox("Initialisation", OPTIONS["init"], format_func=lambda n: INIT_LABELS.get(n, n), key=K["live_init"])
c3.slider("Epochs", 1, 20, key=K["epochs"])
c4.select_slider("Learning rate", [1e-4, 3e-4, 1e-3, 3e-3], key=K["lr"], format_func=lambda v: f"{v:g}")
st.toggle(f"Pace to watch (at least {PACE_S:.0f} s)", key=K["pace"],
          help="Spread the run over at least this long so the shared values can be watched moving. Off: as fast as "
               "it can (about a second on digits); a finished run replays with ▶ either way.")
live_jobs = [job for job in [job_on_dataset(K["job"], settings.dataset)] if job is not None]
runs = read_runs(live_jobs)  # read once: the buttons and the live refresh of this rerun all agree
run_controls(runs, "qz-live", on_start=start_live, start_label="Start fine-tuning", start_disabled=b is None)
live = runs.live
st.fragment(run_every=REFRESH_S if live else None)(guarded("Live fine-tuning", live_panel))(live)
