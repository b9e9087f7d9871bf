"""``DeepCompressionMonitor``: a Deep Compression experiment seen live in a notebook.

The experiment (``kdviz.methods.deep_compression.deep_compression_experiment``: a pruning run, then
a k-means run from its weights, each an engine job; Han, Mao, Dally 2016) trains in the engine's
threads; this widget polls it from a ``_live.Poller`` thread through
``kdviz.present.deep_compression.DeepCompressionView`` and shows a progress bar, one status line
per stage, the stages' test accuracy as they train, and the size waterfall (the same
``size_waterfall`` chart as the Streamlit page): dense and pruned bars once pruning has finished,
the k-means and Huffman bars once the k-means run has. Stop stops the running stage and cancels
the next.
"""
from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

from ..figures.quantization import size_waterfall
from ..figures.training import accuracy_comparison
from ..present import format_duration
from ..present.deep_compression import DeepCompressionView, waterfall_stages
from ._live import LiveFigure, LiveMonitor, Poller
from .monitor import placeholder

CHART_WIDTH = 480


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
        self.errors = W.Output()
        self._shown_stages = 0
        self._evals = -1
        header = W.HTML("<b>Deep Compression</b>: prune, then share 2<sup>bits</sup> values per layer with k-means, "
                        "then Huffman-code the indices (Han, Mao &amp; Dally 2016). Each stage is a training run; "
                        "each bar appears as its stage ends.")
        super().__init__([header, W.HBox([self.progress, self.stop_button, self.status]), self.stages,
                          W.HBox([self.accuracy.widget, self.waterfall.widget]), self.errors])
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
        report = self.view.report()
        if report is not None and len(report.stages) != self._shown_stages:
            self.waterfall.show(size_waterfall(waterfall_stages(report)))
            self._shown_stages = len(report.stages)
        return not done

    def refresh(self) -> None:
        """Read the experiment and redraw now (the poller does this on its own)."""
        self._shown_stages, self._evals = 0, -1
        self._tick()

    def _waitables(self) -> list:
        return [self.view.experiment]

    def _report(self, exc: BaseException) -> None:
        with self.errors:
            print(f"kdviz deep compression monitor: {type(exc).__name__}: {exc}")


__all__ = ["DeepCompressionMonitor"]
