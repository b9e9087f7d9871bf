"""``QATMonitor``: quantization-aware training (Jacob et al. 2018) and LSQ (Esser et al., ICLR 2020)
drawn live in a notebook.

From the runs' stores: each layer's step size over training (LSQ's learned s, QAT's min/max scale),
a chosen layer's latent float weights with the quantization grid moving on them (every snapshot),
and accuracy against bits: post-training quantization (``ptq``, from ``kdviz.present.qat_story
.ptq_accuracies``) beside each finished QAT and LSQ run. A ``_live.Poller`` thread redraws at most every
``interval_ms``, so the cell returns at once; once every run has ended a play button and scrubber
replay the grid over the first run's snapshots.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import ipywidgets as W

from ..figures.qat import accuracy_against_bits, step_size_curve, weight_grid_histogram
from ..methods.qat import step_size_series
from ..present.qat_story import KINDS, accuracy_curves, grid_series
from ._live import LiveFigure, Throttle
from ._monitor import CHART_WIDTH, RunsMonitor, row, waiting
from ._replay import ReplayBar


class QATMonitor(RunsMonitor, W.VBox):
    """Live step sizes, weight grid and accuracy against bits of QAT or LSQ runs.

    ``job_or_jobs``: an ``Experiment``, a ``Job``, ``RunReader`` or run folder, or a list or
    ``{label: run}`` dict of them, at least one a QAT or LSQ run (the grid and steps are the first
    one's). ``ptq``: ``{bits: accuracy}`` of the float model quantized after training, and
    ``float_accuracy``, both optional, drawn on the accuracy-against-bits chart."""

    monitor_name = "QAT monitor"

    def __init__(self, job_or_jobs: Any, ptq: Mapping[int, float] | None = None, float_accuracy: float | None = None,
                 interval_ms: float = 1000, autostart: bool = True) -> None:
        self._follow(job_or_jobs)
        quantized = [v for v in self.views if v.method in KINDS.values()]
        if not quantized:
            raise ValueError(f"QATMonitor needs a QAT or LSQ run (a config with the {' or '.join(map(repr, KINDS))} "
                             f"hook); got {[v.method.label for v in self.views]}")
        self.student, self.student_method = quantized[0], quantized[0].method
        self.ptq, self.float_accuracy = dict(ptq or {}), float_accuracy
        self.snapshot = None  # the latest QATSnapshot read
        self.grid_step: int | None = None  # the step the grid chart shows
        self._grid_lock = threading.Lock()
        controls = self._run_controls()
        self.layer_picker = W.Dropdown(options=[], description="layer", layout=W.Layout(width="220px"))
        self.steps_chart = LiveFigure(waiting("Step sizes: waiting for the first evaluation"), width=CHART_WIDTH)
        self.grid_chart = LiveFigure(waiting("Weights and grid: waiting for the first snapshot"), width=CHART_WIDTH)
        self.bits_chart = LiveFigure(waiting("Accuracy against bits: waiting for a finished run"), width=CHART_WIDTH)
        self._throttle = Throttle(self._draw_grid, 100, on_error=self._report)
        self.replay = ReplayBar(self._replay_to, on_error=self._report)
        self.layer_picker.observe(lambda _: self._throttle(), names="value")
        header = W.HTML("<b>Quantization-aware training monitor</b>: the weights snap to the grid in the forward pass "
                        "while the float weights underneath keep learning; LSQ also learns the grid's step "
                        "(Jacob et al. 2018; Esser et al. 2020).")
        super().__init__([header, controls, W.HBox([self.layer_picker, self.replay]),
                          row(self.steps_chart.widget, self.grid_chart.widget), self.bits_chart.widget, self.errors])
        if self.ptq:
            self._draw_bits()
        self._start_polling(interval_ms, autostart, "kdviz-qat-monitor")

    def _tick(self) -> bool:
        done, changed = self._read_runs()
        if changed[self.student.label] and self.student.snapshots:
            self._take_snapshot()
        if changed[self.student.label] and self.student.evals:
            series = step_size_series(self.student.evals, self.student_method, self.student.config)
            if series:
                self.steps_chart.show(step_size_curve(series))
        if any(changed.values()) or done:  # done: a run that finished with no new record still gets its point
            self._draw_bits()
        self._update_status()
        if done:
            self.replay.set_snapshots(self._replayable())
        return not done

    def _replay_to(self, snapshot: Any) -> None:
        reading = self._reading_of(snapshot)
        if reading is not None:
            self.snapshot = reading
            self._draw_grid(snapshot.step)

    def _take_snapshot(self) -> None:
        self.snapshot = self.student.read(self.student_method)
        layers = self.snapshot.layers
        if list(self.layer_picker.options) != layers:
            keep = self.layer_picker.value if self.layer_picker.value in layers else layers[0]
            self.layer_picker.options, self.layer_picker.value = layers, keep
        self._draw_grid(self.student.snapshots[-1].step)

    def _draw_grid(self, step: int | None = None) -> None:
        snap, layer = self.snapshot, self.layer_picker.value
        if snap is None or layer is None:
            return
        counts, edges, grid = grid_series(snap, layer)
        figure = weight_grid_histogram(counts, edges, grid, layer, snap.bits[layer], step, grid_colour=self.student.colour)
        with self._grid_lock:  # the chart and its step change together (shown_grid reads both)
            self.grid_chart.show(figure)
            if step is not None:
                self.grid_step = step

    def shown_grid(self) -> tuple[int | None, tuple]:
        """(the step the grid chart shows, the chart's traces), read together."""
        with self._grid_lock:
            return self.grid_step, tuple(self.grid_chart.widget.data)

    def _draw_bits(self) -> None:
        curves, colours = accuracy_curves(self.ptq, self.views)
        if curves:
            self.bits_chart.show(accuracy_against_bits(curves, colours, self.float_accuracy))


__all__ = ["QATMonitor"]
