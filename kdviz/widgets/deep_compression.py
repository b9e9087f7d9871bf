"""``DeepCompressionMonitor``: a Deep Compression experiment seen live in a notebook.

The experiment (``kdviz.methods.deep_compression.deep_compression_experiment``: a pruning run, then
a k-means run from its weights, each an engine job; Han, Mao, Dally 2016) trains in the engine's
threads; this widget polls it from a ``_live.Poller`` thread through
``kdviz.present.deep_compression.DeepCompressionView`` and shows a progress bar, one status line
per stage, the stages' test accuracy as they train, and the size waterfall (the same
``size_waterfall`` chart as the Streamlit page): dense and pruned bars once pruning has finished,
the k-means and Huffman bars once the k-means run has. Stop stops the running stage and cancels
the next.

Above them, the running stage live (``kdviz.present.deep_compression.stage_live``): while pruning,
sparsity per layer beside accuracy over training; while the shared values are fine-tuned, the
layer's codebook beside accuracy. Once the experiment has ended, a play button and a scrubber
(``_replay.ReplayBar``) replay both stages' snapshots in order. When the compressed model's
accuracy has collapsed (``collapse_warning``), a warning names the stage that lost it and what to
change.
"""
from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

from ..figures.quantization import size_waterfall
from ..figures.training import accuracy_comparison
from ..present import format_duration
from ..present.deep_compression import (
    DeepCompressionView, StageSnapshot, collapse_warning, pipeline_snapshots, replay_label, stage_live, waterfall_stages,
)
from ._live import LiveFigure, LiveMonitor, Poller
from ._replay import ReplayBar
from .monitor import placeholder

CHART_WIDTH = 480
WARNING_STYLE = "border-left:4px solid #D55E00;background:rgba(213,94,0,0.08);padding:6px 10px"


class DeepCompressionMonitor(LiveMonitor, W.VBox):
    """Progress, stage states, live accuracy and the size waterfall of a Deep Compression experiment."""

    def __init__(self, experiment: Any, interval_ms: float = 500, autostart: bool = True) -> None:
        self.view = experiment if isinstance(experiment, DeepCompressionView) else DeepCompressionView(experiment)
        self.progress = W.FloatProgress(value=0.0, min=0.0, max=1.0, description="progress",
                                        layout=W.Layout(width="420px"))
        self.status = W.HTML()
        self.stages = W.HTML()
        self.stop_button = W.Button(description="Stop", icon="stop", button_style="danger",
                                    tooltip="stop the running stage and cancel the next")
        self.stop_button.on_click(lambda _: self.view.stop())
        self.accuracy = LiveFigure(placeholder("Test accuracy of each stage: waiting for the first evaluation"),
                                   width=CHART_WIDTH)
        self.waterfall = LiveFigure(placeholder("Model size after each stage: waiting for the pruned model"),
                                    width=CHART_WIDTH)
        self.stage_chart = LiveFigure(placeholder("The running stage: waiting for its first snapshot"), width=CHART_WIDTH)
        self.stage_accuracy = LiveFigure(placeholder("Test accuracy of the running stage"), width=CHART_WIDTH)
        self.stage_caption = W.HTML()
        self.layer = W.Dropdown(options=[], description="layer", layout=W.Layout(width="200px", display="none"))
        self.layer.observe(lambda _: self._redraw_stage(), names="value")
        self.replay = ReplayBar(self._replay_to, label=replay_label, on_error=self._report)
        self.shown: StageSnapshot | None = None  # the replay's position once the experiment has ended
        self.warning = W.HTML()
        self.errors = W.Output()
        self._shown_stages = 0
        self._evals = -1
        self._live_key: tuple = ()
        self._drawing = False
        header = W.HTML("<b>Deep Compression</b>: prune, then share 2<sup>bits</sup> values per layer with k-means, "
                        "then Huffman-code the indices (Han, Mao &amp; Dally 2016). Each stage is a training run; "
                        "each bar appears as its stage ends.")
        row = lambda *ws: W.Box(list(ws), layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))  # noqa: E731
        super().__init__([header, W.HBox([self.progress, self.stop_button, self.status]), self.stages,
                          row(self.replay, self.layer), self.stage_caption,
                          row(self.stage_chart.widget, self.stage_accuracy.widget), self.warning,
                          row(self.accuracy.widget, self.waterfall.widget), self.errors])
        self.poller = Poller(self._tick, interval_ms, name="kdviz-deep-compression", on_error=self._report)
        if autostart and not self.view.done:
            self.poller.start()
        else:
            self.refresh()

    def _tick(self) -> bool:
        done = self.view.done  # read before the runs, so the last records are in
        views = self.view.refresh()
        self.progress.value = self.view.progress
        elapsed = sum(float(v.status().get("elapsed_s") or 0.0) for v in views)
        self.status.value = f"<b>{self.view.state}</b> · {format_duration(elapsed)} of training"
        self.stages.value = "<br>".join(html.escape(s.line) for s in self.view.statuses())
        self.stop_button.disabled = done
        if done:  # nothing left to stop: no red button beside a finished experiment
            self.stop_button.layout.display = "none"
        evals = sum(len(v.evals) for v in views)
        if evals and evals != self._evals:
            runs = [{"label": v.label, "colour": v.colour, "records": v.evals} for v in views]
            self.accuracy.show(accuracy_comparison(runs, title="Test accuracy while each stage trains"))
            self._evals = evals
        self._draw_live(views, done)
        report = self.view.report()
        if report is not None and len(report.stages) != self._shown_stages:
            self.waterfall.show(size_waterfall(waterfall_stages(report)))
            self._shown_stages = len(report.stages)
            self._show_warning(report)
        return not done

    # ---- the running stage ------------------------------------------------------------------------
    def _draw_live(self, views: list, done: bool) -> None:
        """The running stage at its latest snapshot; once the experiment has ended, arm the replay."""
        key = tuple((len(v.snapshots), len(v.evals)) for v in views)
        if key == self._live_key:
            return
        self._live_key = key
        if done:
            self.replay.set_snapshots(pipeline_snapshots(self.view))
        self._redraw_stage()

    def _replay_to(self, shown: StageSnapshot) -> None:
        self.shown = shown
        self._redraw_stage()

    def _redraw_stage(self) -> None:
        if self._drawing:
            return
        self._drawing = True
        try:
            live = stage_live(self.view, self.shown, self.layer.value)
            if live is None:
                return
            self.stage_chart.show(live.figures["progress"])
            self.stage_accuracy.show(live.figures["accuracy"])
            self.stage_caption.value = html.escape(live.caption)
            if live.layer is None:
                self.layer.layout.display = "none"
            else:
                if list(self.layer.options) != live.layers:
                    self.layer.options = live.layers
                self.layer.value = live.layer
                self.layer.layout.display = "flex"
        except Exception as exc:  # a failed redraw must not kill the replay or the poller
            self._report(exc)
        finally:
            self._drawing = False

    def _show_warning(self, report) -> None:
        """A visible warning when the compressed model's accuracy has collapsed; nothing otherwise."""
        warning = collapse_warning(report)
        self.warning.value = "" if warning is None else (
            f"<div style='{WARNING_STYLE}'>&#9888; <b>{html.escape(warning.message)}</b> "
            f"{html.escape(warning.advice)}</div>")

    def refresh(self) -> None:
        """Read the experiment and redraw now (the poller does this on its own)."""
        self._shown_stages, self._evals, self._live_key = 0, -1, ()
        self._tick()

    def _waitables(self) -> list:
        return [self.view.experiment]

    def _report(self, exc: BaseException) -> None:
        with self.errors:
            print(f"kdviz deep compression monitor: {type(exc).__name__}: {exc}")


__all__ = ["DeepCompressionMonitor"]
