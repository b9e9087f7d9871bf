"""``HeadPruningMonitor``: a ViT's attention heads pruned by importance (Michel, Levy & Neubig, NeurIPS
2019) while it fine-tunes, drawn live in a notebook.

From a ``head_prune`` run's store: the head-importance heatmap (layers x heads, eq. 4; removed heads
crossed out) at every snapshot, and accuracy against heads removed: the fine-tuned run's evaluations
beside the no-fine-tuning curves (``curves``, from ``kdviz.present.vit_compression.pruning_curves``).
A ``_live.Poller`` thread redraws at most every ``interval_ms``, so the cell returns at once; once the run
has ended a play button and scrubber replay the heatmap over its snapshots.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as W

from ..figures.vit_heads import accuracy_against_heads_removed, head_importance_heatmap
from ..methods.head_prune import HEAD_PRUNE
from ..present.vit_compression import CURVE_COLOURS, fine_tune_points, heatmap_caption
from ._live import LiveFigure
from ._monitor import CHART_WIDTH, RunsMonitor, row, waiting
from ._replay import ReplayBar


class HeadPruningMonitor(RunsMonitor, W.VBox):
    """Live head-importance heatmap and accuracy against heads removed of a head-pruning run.

    ``job_or_jobs``: an ``Experiment``, a ``Job``, ``RunReader`` or run folder, or a list or ``{label: run}``
    dict of them, at least one a ``head_prune`` run (the first is drawn). ``curves``: ``{label: (heads
    removed, accuracy)}`` without fine-tuning and ``dense_accuracy``, both optional."""

    monitor_name = "head-pruning monitor"

    def __init__(self, job_or_jobs: Any, curves: Mapping[str, tuple[Sequence[int], Sequence[float]]] | None = None,
                 dense_accuracy: float | None = None, interval_ms: float = 1000, autostart: bool = True) -> None:
        self._follow(job_or_jobs)
        self.student = self._student(HEAD_PRUNE, "a head-pruning run")
        self.curves, self.dense_accuracy = dict(curves or {}), dense_accuracy
        self.heatmap_step: int | None = None  # the step the heatmap shows
        self._heatmap_lock = threading.Lock()
        controls = self._run_controls()
        self.heatmap = LiveFigure(waiting("Head importance: waiting for the first snapshot"), width=CHART_WIDTH)
        self.accuracy_chart = LiveFigure(waiting("Accuracy against heads removed: waiting for an evaluation"),
                                         width=CHART_WIDTH)
        self.caption = W.HTML()
        self.replay = ReplayBar(self._replay_to, on_error=self._report)
        header = W.HTML("<b>Head-pruning monitor</b>: each round removes the heads whose gate gradient "
                        "E|∂L/∂ξ_h| is smallest, then fine-tuning carries on (Michel et al. 2019).")
        super().__init__([header, controls, self.replay, row(self.heatmap.widget, self.accuracy_chart.widget),
                          self.caption, self.errors])
        self._start_polling(interval_ms, autostart, "kdviz-head-pruning-monitor")

    def _tick(self) -> bool:
        done, changed = self._read_runs()
        if changed[self.student.label] and self.student.snapshots:
            self._draw_heatmap(self.student.snapshots[-1])
        if changed[self.student.label] or done:
            self._draw_accuracy_curves()
        self._update_status()
        if done:
            self.replay.set_snapshots(self._replayable())
        return not done

    def _replay_to(self, snapshot: Any) -> None:
        self._draw_heatmap(snapshot)

    def _draw_heatmap(self, snapshot: Any) -> None:
        reading = self._reading_of(snapshot)
        if reading is None:
            return
        figure = head_importance_heatmap(reading.importance, reading.removed, snapshot.step, reading.normalized)
        with self._heatmap_lock:  # the chart and its step change together (shown_heatmap reads both)
            self.heatmap.show(figure)
            self.heatmap_step = snapshot.step
        self.caption.value = heatmap_caption(reading.importance, reading.removed)

    def shown_heatmap(self) -> tuple[int | None, tuple]:
        """(the step the heatmap shows, the chart's traces), read together."""
        with self._heatmap_lock:
            return self.heatmap_step, tuple(self.heatmap.widget.data)

    def _draw_accuracy_curves(self) -> None:
        curves = dict(self.curves)
        points = fine_tune_points(self.student.evals, self.student.config)
        if points[0]:
            curves[HEAD_PRUNE.label] = points
        if curves and self.student.snapshots:
            shape = self.student.read(HEAD_PRUNE).shape
            self.accuracy_chart.show(accuracy_against_heads_removed(curves, CURVE_COLOURS, shape[0] * shape[1],
                                                                     self.dense_accuracy))


__all__ = ["HeadPruningMonitor"]
