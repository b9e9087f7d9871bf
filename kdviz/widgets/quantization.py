"""Quantization widgets: a bits slider over every method, a rank slider, and a live centroid monitor.

* ``QuantizationExplorer(model, dataset)``: method and options, a bits slider (1..8) and a rank
  slider. Every move quantizes the model's layers and evaluates the whole test set
  (``kdviz.quant.explore.MethodExplorer`` over a ``SliderEvaluator``, which caches sorted weights,
  SVDs and results): accuracy, compression, the weight histogram with the codebook drawn on it
  (Han, Mao, Dally 2016, fig. 4), the index map, and the singular-value spectrum with the rank
  marked (Denton et al. 2014).
* ``CentroidMonitor(job)``: a background centroid fine-tuning job (the k-means hook;
  ``kdviz.present.compression_configs.kmeans_fine_tune_config`` builds one) seen live: the
  centroids moving on the histogram (dashed: k-means' choice, solid: now) and accuracy while they
  are fine-tuned (Han et al. 2016, sec. 3.3, eq. 3); once the run has ended, a play button and a
  scrubber replay the centroids moving (``_replay.ReplayBar``).

The method menu and its options come from ``kdviz.quant.explore.KINDS``; charts come from
``kdviz.figures`` and ``kdviz.present.compression_charts`` (the same functions as the Streamlit
page) and stay live through ``_live.LiveFigure``; sliders are rate-limited by a ``Throttle``, the
monitor polls with a ``Poller``.
"""
from __future__ import annotations

from typing import Any

import ipywidgets as W

from ..data import DatasetBundle
from ..figures.quantization import index_map_heatmap, singular_spectrum
from ..figures.quantization_explorer import levels_histogram
from ..methods.quantize import KMEANS
from ..present import as_run_view
from ..present.compression_charts import centroid_accuracy, codebook_charts, readings
from ..quant import SliderEvaluator
from ..quant.explore import DEFAULT_METHOD, KINDS, MethodExplorer, QuantChoice, layer_histogram, option_values
from ._live import LiveFigure, LiveMonitor, Poller, Throttle
from ._replay import ReplayBar
from .monitor import placeholder, status_line
from .temperature import resolve_dataset, resolve_teacher

CHART_WIDTH = 560  # pixels: two charts side by side fit a wide notebook; they wrap on a narrow one
BINARIZER_LABELS = {"binaryconnect": "BinaryConnect", "xnor": "XNOR (alpha per unit)"}


class QuantizationExplorer(W.VBox):
    """Bits and rank sliders over a trained ``model`` (an ``nn.Module``, a finished run folder, a
    ``RunReader`` or a ``Job``) evaluated on ``dataset``'s test set (a ``DatasetBundle`` or a name)."""

    def __init__(self, model: Any, dataset: DatasetBundle | str, method: str = DEFAULT_METHOD, bits: int = 3,
                 layer: str | None = None, throttle_ms: float = 100) -> None:
        data = resolve_dataset(dataset)
        self.explorer = MethodExplorer(SliderEvaluator(resolve_teacher(model), data.test_images, data.test_labels))
        layers = self.explorer.layers
        if layer is not None and layer not in layers:
            raise ValueError(f"unknown layer {layer!r} (layers: {', '.join(layers)})")
        QuantChoice(method, bits).validate()
        self.float_accuracy = self.explorer.baseline()
        values, default = option_values(), QuantChoice()
        self.method = W.Dropdown(options=[(k.title, k.name) for k in KINDS.values()], value=method, description="method")
        self.init = W.Dropdown(options=values["init"], value=default.init, description="k-means init")
        self.granularity = W.ToggleButtons(options=[(f"per {'channel' if c else 'tensor'}", c) for c in values["per_channel"]],
                                           value=default.per_channel)
        self.scheme = W.ToggleButtons(options=[("symmetric" if v else "asymmetric", v) for v in values["symmetric"]],
                                      value=default.symmetric)
        self.binarizer = W.Dropdown(options=[(BINARIZER_LABELS.get(n, n), n) for n in values["binarizer"]],
                                    value=default.binarizer, description="binarize")
        self.subvector = W.Dropdown(options=values["subvector"], value=default.subvector, description="sub-vector d")
        self._option_controls = {"init": self.init, "per_channel": self.granularity, "symmetric": self.scheme,
                                 "binarizer": self.binarizer, "subvector": self.subvector}
        self.bits = W.IntSlider(value=min(max(int(bits), 1), 8), min=1, max=8, description="bits", continuous_update=True)
        self.layer = W.Dropdown(options=layers, value=layer or layers[0], description="layer")
        self.rank_layer = W.Dropdown(options=layers, value=layer or layers[0], description="layer")
        self.rank = W.IntSlider(value=1, min=1, max=1, description="rank r", continuous_update=True)
        self.info, self.rank_info, self.errors = W.HTML(), W.HTML(), W.Output()
        self.histogram_chart = LiveFigure(placeholder("Weight histogram"), width=CHART_WIDTH)
        self.index_chart = LiveFigure(placeholder("Index map"), width=CHART_WIDTH)
        self.spectrum_chart = LiveFigure(placeholder("Singular values"), width=2 * CHART_WIDTH)
        self._throttle = Throttle(self._draw_quantized, throttle_ms, on_error=self._report)
        self._rank_throttle = Throttle(self._draw_rank, throttle_ms, on_error=self._report)
        for control in (self.method, self.init, self.granularity, self.scheme, self.binarizer, self.subvector,
                        self.bits, self.layer):
            control.observe(lambda _: self._throttle(), names="value")
        self.rank.observe(lambda _: self._rank_throttle(), names="value")
        self.rank_layer.observe(lambda _: self._reset_rank(), names="value")
        self.options = W.HBox([])
        header = W.HTML("<b>Quantization explorer</b>: every move quantizes each layer and tests the model on the whole "
                        "test set. k-means shares 2<sup>bits</sup> values per layer (Han, Mao &amp; Dally 2016).")
        rank_header = W.HTML("<b>Low rank</b>: W &asymp; U<sub>r</sub> S<sub>r</sub> V<sub>r</sub><sup>T</sup> keeps "
                             "the r largest singular values (Denton et al. 2014); the other layers stay float.")
        row = lambda *items: W.Box(list(items), layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))  # noqa: E731
        super().__init__([header, row(self.method, self.options), row(self.bits, self.layer), self.info,
                          row(self.histogram_chart.widget, self.index_chart.widget),
                          rank_header, row(self.rank_layer, self.rank), self.rank_info, self.spectrum_chart.widget,
                          self.errors])
        self._reset_rank()
        self._draw_quantized()

    # ---- state ------------------------------------------------------------------------------
    @property
    def choice(self) -> QuantChoice:
        """The controls' current ``QuantChoice``."""
        return QuantChoice(self.method.value, int(self.bits.value), self.init.value, bool(self.scheme.value),
                           bool(self.granularity.value), self.binarizer.value, int(self.subvector.value))

    def flush(self) -> None:
        """Draw slider changes still waiting for the rate limit (tests; rarely needed otherwise)."""
        self._throttle.flush()
        self._rank_throttle.flush()

    # ---- drawing ----------------------------------------------------------------------------
    def _sync_options(self) -> None:
        kind = KINDS[self.method.value]
        shown = [self._option_controls[option] for option in kind.options]
        if list(self.options.children) != shown:
            self.options.children = shown
        self.bits.disabled = kind.fixed_bits is not None

    def _draw_quantized(self) -> None:
        self._sync_options()
        choice, layer = self.choice, self.layer.value
        try:
            q, acc = self.explorer.quantize(choice), self.explorer.accuracy(choice)
        except ValueError as exc:  # e.g. symmetric uniform at 1 bit: say why, keep the last charts
            self.info.value = f"<span style='color:#D55E00'><b>Cannot quantize:</b> {exc}</span>"
            return
        counts, edges = layer_histogram(self.explorer.evaluator, layer)
        self.histogram_chart.show(levels_histogram(counts, edges, q.levels[layer], layer, choice.label(), q.choice.bits,
                                                   q.n_weights[layer], shared=choice.kind.shared, per_row=q.per_row))
        self.index_chart.show(index_map_heatmap(q.codes[layer], layer=layer))
        self.accuracy = acc
        self.info.value = (f"Test accuracy <b>{acc:.2%}</b> ({100 * (acc - self.float_accuracy):+.2f} points against "
                           f"float32 {self.float_accuracy:.2%}) · weights <b>{q.ratio:.1f}x</b> smaller "
                           f"({q.bits_per_weight:.2f} bits per weight, codebooks and scales included)")

    def _reset_rank(self) -> None:
        top = self.explorer.low_rank(self.rank_layer.value, 1).max_rank
        with self.rank.hold_trait_notifications():
            self.rank.max = top
            self.rank.value = max(1, top // 4)
        self._draw_rank()

    def _draw_rank(self) -> None:
        p = self.explorer.low_rank(self.rank_layer.value, int(self.rank.value))
        self.rank_accuracy = p.accuracy
        self.spectrum_chart.show(singular_spectrum(p.singular_values, p.rank, p.layer))
        self.rank_info.value = (f"Test accuracy <b>{p.accuracy:.2%}</b> with {p.layer} at rank {p.rank} · "
                                f"{p.params_after:,} weights instead of {p.params_before:,} · "
                                f"{p.energy:.1%} of the energy kept")

    def _report(self, exc: BaseException) -> None:
        with self.errors:
            print(f"kdviz: could not redraw: {type(exc).__name__}: {exc}")


class CentroidMonitor(LiveMonitor, W.VBox):
    """Live codebook of a centroid fine-tuning job (a ``Job``, ``RunReader`` or run folder with the
    k-means hook): the centroids on the weight histogram and accuracy, redrawn from a polling
    thread every ``interval_ms``. ``which`` picks the use of the hook when the run has two; a run
    without the hook is a ``ValueError`` naming its hooks. Once the run has ended, ``replay``
    scrubs through its snapshots (the layer picker applies to the replayed one)."""

    def __init__(self, job: Any, layer: str | None = None, float_accuracy: float | None = None,
                 interval_ms: float = 1000, autostart: bool = True, which: int = 0) -> None:
        self.view = as_run_view(job, label="k-means fine-tuning")
        self.which = which
        KMEANS.hook_label(self.view.config, which)  # no k-means hook in this run: say so now
        self.float_accuracy = float_accuracy
        self.codebook = None
        self.shown = None  # the snapshot drawn: the latest, or the replay's position once the run has ended
        self.records: list[dict] = []
        self.layer = W.Dropdown(options=[layer] if layer else [], value=layer, description="layer")
        self.status = W.HTML()
        self.errors = W.Output()
        self.histogram_chart = LiveFigure(placeholder("Codebook: waiting for the first snapshot"), width=CHART_WIDTH)
        self.accuracy_chart = LiveFigure(placeholder("Test accuracy: waiting for the first evaluation"), width=CHART_WIDTH)
        self.replay = ReplayBar(self._replay_to, on_error=self._report)
        self.layer.observe(lambda _: None if self._drawing else self._redraw_shown(), names="value")
        self._versions, self._drawing = (-1, -1), False
        header = W.HTML("<b>Centroid monitor</b>: dashed lines are the shared values k-means chose, solid lines "
                        "where fine-tuning has moved them; each moves by the summed gradient of its cluster.")
        charts = W.Box([self.histogram_chart.widget, self.accuracy_chart.widget],
                       layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))
        super().__init__([header, self.status, W.HBox([self.layer, self.replay], layout=W.Layout(flex_flow="row wrap")), charts,
                          self.errors])
        self.poller = Poller(self._tick, interval_ms, name="kdviz-centroid-monitor", on_error=self._report)
        if autostart and not self.view.done:
            self.poller.start()
        else:
            self.refresh()

    def _tick(self) -> bool:
        done = self.view.done  # read before the data, so the last records are in
        self._draw()
        return not done

    def refresh(self) -> None:
        """Read the run and redraw now (the poller does this on its own)."""
        self._draw(force=True)

    def _waitables(self) -> list:
        return [self.view.job] if self.view.job is not None else []

    def _draw(self, force: bool = False) -> None:
        self._drawing = True
        try:
            self._draw_now(force)
        finally:
            self._drawing = False

    def _draw_now(self, force: bool) -> None:
        store = self.view.store
        done = self.view.done  # read before the data, so the last snapshot is in
        _, metrics_v = store.metrics_since(self._versions[0])
        _, snaps_v = store.snapshots_since(self._versions[1])
        self.records = store.metrics()
        self.status.value = status_line(self.view, self.view.status(), self.records)
        if not force and (metrics_v, snaps_v) == self._versions:
            return
        self._versions = (metrics_v, snaps_v)
        latest = store.latest_snapshot()
        self.shown = latest if latest is not None else self.shown
        self._draw_snapshot()
        if done:
            self._arm_replay()

    def _draw_snapshot(self) -> None:
        """The codebook of the shown snapshot on the histogram, and accuracy with its epoch marked."""
        snapshot = self.shown
        found = readings(KMEANS, [snapshot] if snapshot is not None else [], self.view.config, self.which)
        if found:
            codebook = found[0][1]
            if list(self.layer.options) != codebook.layers:
                self.layer.options = codebook.layers
            if self.layer.value not in codebook.layers:
                self.layer.value = codebook.layers[0]
            hist, _, self.codebook = codebook_charts(codebook, self.layer.value)
            self.histogram_chart.show(hist)
        if any(r.get("kind") == "eval" for r in self.records):
            epoch = snapshot.epoch if snapshot is not None else None
            self.accuracy_chart.show(centroid_accuracy(self.records, self.float_accuracy, epoch))

    def _arm_replay(self) -> None:
        """Once the run has ended: a play button and scrubber over its snapshots holding a codebook."""
        snapshots, _ = self.view.store.snapshots_since(0)
        self.replay.set_snapshots([snap for snap, _ in readings(KMEANS, snapshots, self.view.config, self.which)])

    def _replay_to(self, snapshot: Any) -> None:
        self.shown = snapshot
        self._redraw_shown()

    def _redraw_shown(self) -> None:
        self._drawing = True
        try:
            self._draw_snapshot()
        except Exception as exc:  # a failed redraw must not kill the control
            self._report(exc)
        finally:
            self._drawing = False

    def _report(self, exc: BaseException) -> None:
        with self.errors:
            print(f"kdviz centroid monitor: {type(exc).__name__}: {exc}")


__all__ = ["CentroidMonitor", "QuantizationExplorer"]
