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

import threading
from typing import Any

import ipywidgets as W

from ..figures.rkd import distance_heatmaps, rkd_loss_curve, rkd_series
from ..figures.training import accuracy_comparison
from ..methods.rkd import RKD
from ..methods.scratch import TEACHER
from ..present import Experiment, run_views, teacher_accuracy
from ._live import LiveFigure, LiveMonitor, Poller
from ._replay import ReplayBar
from .attention import status_html, waiting

CHART_WIDTH = 520


class RKDMonitor(LiveMonitor, W.VBox):
    """Live distance matrices, RKD losses and accuracy of an RKD student and the runs beside it.

    ``job_or_jobs``: an ``Experiment``, a ``Job``, ``RunReader`` or run folder, or a list or
    ``{label: run}`` dict of them; one of them must be an RKD run (its config has the method's hook).
    ``interval_ms`` is the poll and redraw interval.
    """

    def __init__(self, job_or_jobs: Any, interval_ms: float = 1000, autostart: bool = True) -> None:
        runs = job_or_jobs.jobs if isinstance(job_or_jobs, Experiment) else job_or_jobs
        self.views = run_views(runs)
        students = [v for v in self.views if v.method is RKD]
        if not students:
            raise ValueError(f"RKDMonitor needs a relational-KD run (a config with the {RKD.name!r} hook); "
                             f"got {[v.method.label for v in self.views]}")
        self.student = students[0]
        self.snapshot = None  # the latest RKDSnapshot read
        self.matrices_step: int | None = None  # the student step the heatmaps show
        self._teacher_acc: float | None = None
        self._lock = threading.Lock()
        self._errors_seen: set[str] = set()
        self.status = {v.label: W.HTML() for v in self.views}
        self.stop_button = W.Button(description="Stop", icon="stop", button_style="danger", layout=W.Layout(width="90px"),
                                    tooltip="stop every run after its current step (a checkpoint is saved)")
        self.stop_button.on_click(lambda _: self.stop())
        self.errors = W.Output()
        self.matrices_chart = LiveFigure(waiting("Distance matrices: waiting for the first snapshot"), width=2 * CHART_WIDTH)
        self.loss_chart = LiveFigure(waiting("RKD losses: waiting for the first evaluation"), width=CHART_WIDTH)
        self.accuracy_chart = LiveFigure(waiting("Test accuracy: waiting for the first evaluation"), width=CHART_WIDTH)
        self.replay = ReplayBar(self._replay_to, on_error=self._report)
        header = W.HTML("<b>Relational KD monitor</b>: does the student place the probe images as the teacher does? "
                        "Watch the right matrix take the left one's pattern and the correlation rise "
                        "(Park et al. 2019, eqs. 3-6).")
        row = lambda *ws: W.Box(list(ws), layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))  # noqa: E731
        super().__init__([header, W.HBox([self.stop_button, W.VBox(list(self.status.values()))]), self.replay,
                          self.matrices_chart.widget, row(self.loss_chart.widget, self.accuracy_chart.widget),
                          self.errors])
        self.poller = Poller(self._tick, interval_ms, name="kdviz-rkd-monitor", on_error=self._report)
        if autostart and not self.done:
            self.poller.start()
        else:
            self.refresh()

    @property
    def done(self) -> bool:
        return all(v.done for v in self.views)

    def stop(self) -> None:
        """Stop every run after its current step (checkpoints are saved); returns at once."""
        for view in self.views:
            if view.controllable and not view.done:
                view.job.stop()
        self._update_status()

    def _tick(self) -> bool:
        done = self.done  # read before the data, so the last records are in
        with self._lock:
            changed = {v.label: v.refresh() for v in self.views}
        if changed[self.student.label] and self.student.snapshots:
            self._draw_matrices(self.student.snapshots[-1])
        if any(changed.values()):
            self._draw_curves()
        self._update_status()
        if done:
            self.replay.set_snapshots([s for s in self.student.snapshots if self._reading_of(s) is not None])
        return not done

    def refresh(self) -> None:
        """Read what is new in every run and redraw now (the poller does this on its own)."""
        self._tick()

    def _waitables(self) -> list:
        return [view.job for view in self.views if view.job is not None]

    def _reading_of(self, snapshot: Any) -> Any:
        try:
            return self.student.read(RKD, snapshot)
        except ValueError:  # a snapshot without the hook's arrays
            return None

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
        runs = [{"label": v.label, "colour": v.colour, "records": v.evals} for v in self.views if v.evals]
        if runs:
            if self._teacher_acc is None:
                self._teacher_acc = teacher_accuracy(self.views)
            self.accuracy_chart.show(accuracy_comparison(runs, teacher_accuracy=self._teacher_acc))

    def _update_status(self) -> None:
        for view in self.views:
            self.status[view.label].value = status_html(view)
        done = self.done
        self.stop_button.disabled = done or not any(v.controllable for v in self.views)
        if done:
            self.stop_button.layout.display = "none"

    def _report(self, exc: BaseException) -> None:
        text = f"kdviz RKD monitor: {type(exc).__name__}: {exc}"
        if text not in self._errors_seen:
            self._errors_seen.add(text)
            self.errors.append_stdout(text + "\n")


__all__ = ["RKDMonitor"]
