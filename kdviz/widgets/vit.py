"""``ViTDistillMonitor``: a ViT student distilling from a ViT teacher (TinyBERT, Jiao et al. 2020,
eqs. 7-11), drawn live in a notebook.

From the runs' stores: the class token's attention over the probe digit's patch grid, per layer and
head, for teacher and student (updating with every snapshot), the attention rollout of both (Abnar &
Zuidema 2020), the four losses as the student trains, and the test accuracy of every run (the
student trained alone beside it), with a Stop button. A ``_live.Poller`` thread reads the stores and
redraws, so the cell returns at once; once every run has ended a play button and a scrubber
(``_replay.ReplayBar``) replay the maps over the distilled student's snapshots.
"""
from __future__ import annotations

from typing import Any

import ipywidgets as W

from ..figures.vit_attention import accuracy_race, distill_loss_curve, head_maps, rollout_maps
from ..methods.scratch import TEACHER
from ..methods.vit_distill import VIT_DISTILL
from ..present import teacher_accuracy
from ..present.vit_story import accuracy_series, loss_series, map_scale, maps_caption
from ._live import LiveFigure
from ._monitor import CHART_WIDTH, RunsMonitor, row, waiting
from ._replay import ReplayBar


class ViTDistillMonitor(RunsMonitor, W.VBox):
    """Live attention maps, losses and accuracy of a distilled ViT student and the runs beside it.

    ``job_or_jobs``: an ``Experiment``, a ``Job``, ``RunReader`` or run folder, or a list or
    ``{label: run}`` dict of them; one must be a ``vit_distill`` run. ``interval_ms``: poll interval."""

    monitor_name = "ViT distillation monitor"

    def __init__(self, job_or_jobs: Any, interval_ms: float = 1000, autostart: bool = True) -> None:
        self._follow(job_or_jobs)
        self.student = self._student(VIT_DISTILL, "a distilled ViT run")
        self.first = None  # the first ViTDistillSnapshot read (the caption compares with it)
        self.maps_step: int | None = None  # the student step the maps show
        controls = self._run_controls()
        self.teacher_chart = LiveFigure(waiting("Teacher's attention: waiting for the first snapshot"), width=CHART_WIDTH)
        self.student_chart = LiveFigure(waiting("Student's attention: waiting for the first snapshot"), width=CHART_WIDTH)
        self.rollout_chart = LiveFigure(waiting("Attention rollout: waiting for the first snapshot"), width=2 * CHART_WIDTH)
        self.loss_chart = LiveFigure(waiting("Losses: waiting for the first steps"), width=CHART_WIDTH)
        self.accuracy_chart = LiveFigure(waiting("Test accuracy: waiting for the first evaluation"), width=CHART_WIDTH)
        self.caption = W.HTML()
        self.replay = ReplayBar(self._replay_to, on_error=self._report)
        header = W.HTML("<b>Transformer distillation monitor</b>: the student (right) learns where the teacher (left) "
                        "looks. Each square is the probe digit's patch grid, bright where the class token attends; "
                        "the student's heads are matched to groups of the teacher's (TinyBERT, eq. 7).")
        super().__init__([header, controls, self.replay, row(self.teacher_chart.widget, self.student_chart.widget),
                          self.caption, self.rollout_chart.widget,
                          row(self.loss_chart.widget, self.accuracy_chart.widget), self.errors])
        self._start_polling(interval_ms, autostart, "kdviz-vit-distill-monitor")

    def _tick(self) -> bool:
        done, changed = self._read_runs()
        if changed[self.student.label] and self.student.snapshots:
            self._draw_maps(self.student.snapshots[-1])
        if any(changed.values()):
            self._draw_curves()
        self._update_status()
        if done:
            self.replay.set_snapshots(self._replayable())
        return not done

    def _replay_to(self, snapshot: Any) -> None:
        self._draw_maps(snapshot)

    def _draw_maps(self, snapshot: Any) -> None:
        reading = self._reading_of(snapshot)
        if reading is None:
            return
        if self.first is None:
            self.first = self._reading_of(self.student.snapshots[0])
        scale = map_scale(reading)  # one colour scale for both, so equal colours mean equal attention
        self.teacher_chart.show(head_maps(reading.teacher, reading.grid, TEACHER.label, TEACHER.colour, zmax=scale))
        self.student_chart.show(head_maps(reading.student, reading.grid, self.student.label, self.student.colour,
                                          zmax=scale))
        self.rollout_chart.show(rollout_maps(reading.image, reading.teacher_rollout, reading.student_rollout, reading.grid,
                                             TEACHER.label, self.student.label))
        self.caption.value = maps_caption(snapshot.step, self.first, reading)
        self.maps_step = snapshot.step

    def _draw_curves(self) -> None:
        steps, losses = loss_series(self.student.steps, self.student.config)
        if steps and losses:
            self.loss_chart.show(distill_loss_curve(steps, losses))
        series = {v.label: accuracy_series(v.evals) for v in self.views if v.evals}
        if series:
            if self._teacher_acc is None:
                self._teacher_acc = teacher_accuracy(self.views)
            self.accuracy_chart.show(accuracy_race(series, {v.label: v.colour for v in self.views}, self._teacher_acc))


__all__ = ["ViTDistillMonitor"]
