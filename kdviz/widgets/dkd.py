"""``DKDMonitor``: decoupled knowledge distillation (Zhao et al., CVPR 2022) drawn live in a notebook.

A DKD student adds alpha TCKD + beta NCKD (eq. 8) to cross-entropy, where Hinton's loss is
KD = TCKD + (1 - p_t^T) NCKD (eq. 7); a scratch student or a KD student may train beside it. The
monitor shows, from the runs' stores, TCKD, NCKD and Hinton's KD on the probe batch over training,
each probe image's NCKD weight 1 - p_t^T against the teacher's confidence (updating with every
snapshot), the captions ``kdviz.present.family_dkd`` writes from those numbers, and the test
accuracy of every run, with a Stop button. A ``_live.Poller`` thread reads the stores and redraws at
most every ``interval_ms``, so the cell that shows it returns at once. Once every run has ended, a
play button and a scrubber (``_replay.ReplayBar``) replay the suppression chart over the snapshots.
"""
from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

from ..figures.dkd import dkd_parts_curve, metric_series, nckd_suppression
from ..methods.dkd import DKD, dkd_options, dkd_series_keys
from ..present.family_dkd import parts_caption, suppression_caption
from ._live import LiveFigure
from ._monitor import CHART_WIDTH, RunsMonitor, column, row, waiting
from ._replay import ReplayBar


class DKDMonitor(RunsMonitor, W.VBox):
    """Live TCKD / NCKD / KD curves, NCKD suppression and accuracy of a DKD student and the runs beside it.

    ``job_or_jobs``: an ``Experiment``, a ``Job``, ``RunReader`` or run folder, or a list or
    ``{label: run}`` dict of them; one of them must be a DKD run (its config has the method's hook).
    ``interval_ms`` is the poll and redraw interval.
    """

    monitor_name = "DKD monitor"

    def __init__(self, job_or_jobs: Any, interval_ms: float = 1000, autostart: bool = True) -> None:
        self._follow(job_or_jobs)
        self.student = self._student(DKD, "a decoupled-KD run")
        self.options = dkd_options(self.student.config)
        self.snapshot = None  # the latest DKDSnapshot read
        self.snapshot_step: int | None = None  # the student step the suppression chart shows
        controls = self._run_controls()
        self.parts_chart = LiveFigure(waiting("TCKD, NCKD and KD: waiting for the first evaluation"), width=CHART_WIDTH)
        self.suppression_chart = LiveFigure(waiting("NCKD suppression: waiting for the first snapshot"),
                                            width=CHART_WIDTH)
        self.accuracy_chart = LiveFigure(waiting("Test accuracy: waiting for the first evaluation"), width=CHART_WIDTH)
        self.parts_caption, self.suppression_caption = W.HTML(), W.HTML()
        self.replay = ReplayBar(self._replay_to, on_error=self._report)
        header = W.HTML("<b>Decoupled KD monitor</b>: Hinton's loss is KD = TCKD + (1 − p<sub>t</sub>)·NCKD, so the "
                        "more confident the teacher, the less NCKD (the wrong classes' ranking) the student gets; DKD "
                        "weights the two parts by α and β instead (Zhao et al. 2022, eqs. 7-8).")
        super().__init__([header, controls, self.replay,
                          row(column(self.parts_chart, self.parts_caption),
                              column(self.suppression_chart, self.suppression_caption)),
                          self.accuracy_chart.widget, self.errors])
        self._start_polling(interval_ms, autostart, "kdviz-dkd-monitor")

    # ---- polling ------------------------------------------------------------------------------
    def _tick(self) -> bool:
        done, changed = self._read_runs()
        if changed[self.student.label] and self.student.snapshots:
            reading = self._reading_of(self.student.snapshots[-1])
            if reading is not None:
                self._draw_suppression(reading, self.student.snapshots[-1].step)
        if any(changed.values()):
            self._draw_curves()
        self._update_status()
        if done:
            self.replay.set_snapshots(self._replayable())
        return not done

    def _replay_to(self, snapshot: Any) -> None:
        reading = self._reading_of(snapshot)
        if reading is not None:
            self._draw_suppression(reading, snapshot.step)

    # ---- drawing ------------------------------------------------------------------------------
    def _draw_suppression(self, reading: Any, step: int) -> None:
        self.suppression_chart.show(nckd_suppression(reading.teacher_target_prob, reading.nckd, T=reading.T))
        self.suppression_caption.value = html.escape(suppression_caption(reading, step, float(self.options["beta"])))
        self.snapshot, self.snapshot_step = reading, step

    def _draw_curves(self) -> None:
        steps, series = metric_series(self.student.evals, dkd_series_keys(self.student.config))
        if steps:
            self.parts_chart.show(dkd_parts_curve(steps, series["tckd"], series["nckd"], series["hinton"],
                                                  series["nckd_in_kd"], T=float(self.options["T"])))
            self.parts_caption.value = html.escape(parts_caption(steps, series, self.options))
        self._draw_accuracy()


__all__ = ["DKDMonitor"]
