"""``RKDMonitor``: relational knowledge distillation (Park, Kim, Lu, Cho, CVPR 2019) drawn live in a notebook.

An RKD student adds lambda_D * L_RKD-D + lambda_A * L_RKD-A (eqs. 4 and 6: Huber losses between the
teacher's and the student's normalised pairwise distances and triplet angles of the embedding) to
cross-entropy; a scratch student usually trains beside it. The monitor shows, from the runs' stores,
the teacher's and the student's pairwise-distance matrices on the probe batch (updating with every
snapshot), both losses and the matrices' correlation over training, and the test accuracy of every
run, with a Stop button. A ``_live.Poller`` thread reads the stores and redraws at most every
``interval_ms``, so the cell that shows it returns at once. Once every run has ended, a play button
and a scrubber (``_replay.ReplayBar``) replay the matrices over the RKD student's snapshots.
"""
from __future__ import annotations

from typing import Any

import ipywidgets as W

from ..figures.rkd import distance_heatmaps, rkd_loss_curve, rkd_series
from ..methods.rkd import RKD
from ..methods.scratch import TEACHER
from ._live import LiveFigure
from ._monitor import CHART_WIDTH, RunsMonitor, row, waiting
from ._replay import ReplayBar


class RKDMonitor(RunsMonitor, W.VBox):
    """Live distance matrices, RKD losses and accuracy of an RKD student and the runs beside it.

    ``job_or_jobs``: an ``Experiment``, a ``Job``, ``RunReader`` or run folder, or a list or
    ``{label: run}`` dict of them; one of them must be an RKD run (its config has the method's hook).
    ``interval_ms`` is the poll and redraw interval.
    """

    monitor_name = "RKD monitor"

    def __init__(self, job_or_jobs: Any, interval_ms: float = 1000, autostart: bool = True) -> None:
        self._follow(job_or_jobs)
        self.student = self._student(RKD, "a relational-KD run")
        self.snapshot = None  # the latest RKDSnapshot read
        self.matrices_step: int | None = None  # the student step the heatmaps show
        controls = self._run_controls()
        self.matrices_chart = LiveFigure(waiting("Distance matrices: waiting for the first snapshot"), width=2 * CHART_WIDTH)
        self.loss_chart = LiveFigure(waiting("RKD losses: waiting for the first evaluation"), width=CHART_WIDTH)
        self.accuracy_chart = LiveFigure(waiting("Test accuracy: waiting for the first evaluation"), width=CHART_WIDTH)
        self.replay = ReplayBar(self._replay_to, on_error=self._report)
        header = W.HTML("<b>Relational KD monitor</b>: does the student place the probe images as the teacher does? "
                        "Watch the right matrix take the left one's pattern and the correlation rise "
                        "(Park et al. 2019, eqs. 3-6).")
        super().__init__([header, controls, self.replay,
                          self.matrices_chart.widget, row(self.loss_chart.widget, self.accuracy_chart.widget),
                          self.errors])
        self._start_polling(interval_ms, autostart, "kdviz-rkd-monitor")

    def _tick(self) -> bool:
        done, changed = self._read_runs()
        if changed[self.student.label] and self.student.snapshots:
            self._draw_matrices(self.student.snapshots[-1])
        if any(changed.values()):
            self._draw_curves()
        self._update_status()
        if done:
            self.replay.set_snapshots(self._replayable())
        return not done

    def _replay_to(self, snapshot: Any) -> None:
        self._draw_matrices(snapshot)

    def _draw_matrices(self, snapshot: Any) -> None:
        reading = self._reading_of(snapshot)
        if reading is None:
            return
        self.snapshot = reading
        self.matrices_chart.show(distance_heatmaps(
            reading.teacher, reading.student, reading.labels, teacher_label=TEACHER.label,
            student_label=self.student.label, teacher_colour=TEACHER.colour, student_colour=self.student.colour,
            step=snapshot.step))
        self.matrices_step = snapshot.step

    def _draw_curves(self) -> None:
        config = self.student.config
        keys = {"distance loss": RKD.metric_key(config, "probe_distance"),
                "angle loss": RKD.metric_key(config, "probe_angle"), "r": RKD.metric_key(config, "distance_corr")}
        steps, series = rkd_series(self.student.evals, keys)
        if steps:
            correlation = series.pop("r")
            self.loss_chart.show(rkd_loss_curve(steps, series, correlation=correlation))
        self._draw_accuracy()


__all__ = ["RKDMonitor"]
