"""``ProjectionMonitor``: ProjectionNet (Ravi 2017, arXiv:1708.00630) drawn live in a notebook.

A projection net reads T hash codes of d bits (random hyperplanes fixed from a seed, section 3.3) and
learns with a full trainer network on eq. 1. The monitor shows, from the runs' stores, the probe
digits' bits beside what the first projection net reads from them (updating with every snapshot), the
three weighted terms of eq. 1 per step, accuracy against the number of bits over every projection run,
and the deployed size in bytes, with a Stop button. A ``_live.Poller`` thread reads the stores and
redraws at most every ``interval_ms``, so the cell that shows it returns at once. Once every run has
ended, a play button and a scrubber replay the bits chart over the first run's snapshots.
"""
from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

from ..methods.projection import PROJECTION, bits_of
from ..present.projection_story import (
    accuracy_figure, accuracy_points, bits_figure, dataset_shape, loss_figure, model_sizes, size_caption,
)
from ._live import LiveFigure
from ._monitor import CHART_WIDTH, RunsMonitor, column, row, waiting
from ._replay import ReplayBar


class ProjectionMonitor(RunsMonitor, W.VBox):
    """Live bits, loss parts, accuracy against bits and sizes of ProjectionNet runs.

    ``job_or_jobs``: an ``Experiment``, a ``Job``, ``RunReader`` or run folder, or a list or
    ``{label: run}`` dict of them; at least one must be a ProjectionNet run (its config has the
    method's hook). The first such run's bits and losses are drawn; every one's accuracy.
    """

    monitor_name = "ProjectionNet monitor"

    def __init__(self, job_or_jobs: Any, interval_ms: float = 1000, autostart: bool = True) -> None:
        self._follow(job_or_jobs)
        self.student = self._student(PROJECTION, "a ProjectionNet run")
        self.bits_step: int | None = None  # the snapshot step the bits chart shows
        controls = self._run_controls()
        self.bits_chart = LiveFigure(waiting("Probe digits' bits: waiting for the first snapshot"), width=2 * CHART_WIDTH)
        self.bits_caption = W.HTML()
        self.loss_chart = LiveFigure(waiting("Loss parts (eq. 1): waiting for the first step"), width=CHART_WIDTH)
        self.loss_caption = W.HTML()
        self.accuracy_chart = LiveFigure(waiting("Accuracy against bits: waiting for the first evaluation"),
                                         width=CHART_WIDTH)
        self.accuracy_caption = W.HTML()
        self.sizes = W.HTML()
        self.replay = ReplayBar(self._replay_to, on_error=self._report)
        header = W.HTML("<b>ProjectionNet monitor</b>: a small net on T × d locality-sensitive hash bits learns "
                        "beside a full trainer network (Ravi 2017, eq. 1). The bits stay fixed; watch what the "
                        "projection net reads from them.")
        super().__init__([header, controls, self.sizes, self.replay, self.bits_chart.widget, self.bits_caption,
                          row(column(self.loss_chart, self.loss_caption), column(self.accuracy_chart,
                                                                                 self.accuracy_caption)),
                          self.errors])
        self._start_polling(interval_ms, autostart, "kdviz-projection-monitor")

    # ---- polling ------------------------------------------------------------------------------
    def _tick(self) -> bool:
        done, changed = self._read_runs()
        if changed[self.student.label] and self.student.snapshots:
            self._draw_bits(self.student.snapshots[-1])
        if any(changed.values()):
            self._draw_curves()
        self._update_status()
        if done:
            self.replay.set_snapshots(self._replayable())
        return not done

    def _replay_to(self, snapshot: Any) -> None:
        if self._reading_of(snapshot) is not None:
            self._draw_bits(snapshot)

    # ---- drawing ------------------------------------------------------------------------------
    def _draw_bits(self, snapshot: Any) -> None:
        fig, caption = bits_figure(self.student, snapshot)
        self.bits_chart.show(fig)
        self.bits_caption.value = html.escape(caption)
        self.bits_step = snapshot.step

    def _draw_curves(self) -> None:
        loss = loss_figure(self.student)
        if loss is not None:
            self.loss_chart.show(loss[0])
            self.loss_caption.value = html.escape(loss[1])
        shape, classes = dataset_shape(self.student.config)
        points = accuracy_points(self.views, shape, classes)
        if points:
            fig, caption = accuracy_figure(points)
            self.accuracy_chart.show(fig)
            self.accuracy_caption.value = html.escape(caption)
        t, d = bits_of(self.student.config)
        self.sizes.value = html.escape(size_caption(model_sizes(self.student.config, shape, classes), t * d))


__all__ = ["ProjectionMonitor"]
