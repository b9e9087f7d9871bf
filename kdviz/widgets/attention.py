"""``AttentionMonitor``: attention transfer (Zagoruyko & Komodakis, ICLR 2017) drawn live in a notebook.

An AT student adds beta/2 * sum_j ||Q_S^j/||Q_S^j|| - Q_T^j/||Q_T^j|| ||_2 (eq. 2, Q = vec(sum_c |A_c|^2))
to cross-entropy; a scratch student usually trains beside it. The monitor shows, from the runs'
stores, the teacher's and the student's attention maps of a chosen layer pair on a chosen probe
image (updating with every snapshot), each pair's distance over training, and the test accuracy of
every run, with a Stop button. A ``_live.Poller`` thread reads the stores and redraws at most every
``interval_ms`` through ``_live.LiveFigure``, so the cell that shows it returns at once. Once every
run has ended, a play button and a scrubber (``_replay.ReplayBar``) replay the maps over the AT
student's snapshots.
"""
from __future__ import annotations

from typing import Any

import ipywidgets as W

from ..figures.attention import attention_distance_curve, attention_maps, distance_series
from ..methods.attention import ATTENTION
from ..methods.scratch import TEACHER
from ._live import LiveFigure, Throttle
from ._monitor import CHART_WIDTH, RunsMonitor, row, waiting
from ._replay import ReplayBar


class AttentionMonitor(RunsMonitor, W.VBox):
    """Live attention maps and accuracy of an AT student and the runs beside it.

    ``job_or_jobs``: an ``Experiment``, a ``Job``, ``RunReader`` or run folder, or a list or
    ``{label: run}`` dict of them; one of them must be an attention-transfer run (its config has
    the method's hook). ``interval_ms`` is the poll and redraw interval.
    """

    monitor_name = "attention monitor"

    def __init__(self, job_or_jobs: Any, interval_ms: float = 1000, autostart: bool = True) -> None:
        self._follow(job_or_jobs)
        self.student = self._student(ATTENTION, "an attention-transfer run")
        self.snapshot = None  # the latest AttentionSnapshot read
        self.maps_step: int | None = None  # the student step the maps show
        controls = self._run_controls()
        wide = {"description_width": "initial"}
        self.pair_picker = W.Dropdown(options=[], description="layer pair", style=wide, layout=W.Layout(width="260px"))
        self.image_picker = W.Dropdown(options=[], description="probe image", style=wide, layout=W.Layout(width="200px"))
        self.maps_chart = LiveFigure(waiting("Attention maps: waiting for the first snapshot"), width=2 * CHART_WIDTH)
        self.distance_chart = LiveFigure(waiting("Attention distance: waiting for the first evaluation"), width=CHART_WIDTH)
        self.accuracy_chart = LiveFigure(waiting("Test accuracy: waiting for the first evaluation"), width=CHART_WIDTH)
        self._throttle = Throttle(self._draw_maps, 100, on_error=self._report)
        self.replay = ReplayBar(self._replay_to, on_error=self._report)
        for picker in (self.pair_picker, self.image_picker):
            picker.observe(lambda _: self._throttle(), names="value")
        header = W.HTML("<b>Attention transfer monitor</b>: where does the teacher look, and does the student learn "
                        "to look there? Watch the student's bright spots move to the teacher's and the distances fall "
                        "(Zagoruyko &amp; Komodakis 2017, eq. 2).")
        super().__init__([header, controls,
                          W.HBox([self.pair_picker, self.image_picker, self.replay], layout=W.Layout(flex_flow="row wrap")),
                          self.maps_chart.widget,
                          row(self.distance_chart.widget, self.accuracy_chart.widget), self.errors])
        self._start_polling(interval_ms, autostart, "kdviz-attention-monitor")

    # ---- polling ------------------------------------------------------------------------------
    def _tick(self) -> bool:
        done, changed = self._read_runs()
        if changed[self.student.label] and self.student.snapshots:
            self._take_snapshot()
        if any(changed.values()):
            self._draw_curves()
        self._update_status()
        if done:
            self._arm_replay()
        return not done

    def _arm_replay(self) -> None:
        """Once every run has ended: a play button and scrubber over the AT student's map snapshots."""
        self.replay.set_snapshots(self._replayable())

    def _replay_to(self, snapshot: Any) -> None:
        """Draw the maps at a replayed snapshot (the layer pair and image pickers still apply)."""
        reading = self._reading_of(snapshot)
        if reading is not None:
            self.snapshot = reading
            self._draw_maps(snapshot.step)

    # ---- drawing ------------------------------------------------------------------------------
    def _take_snapshot(self) -> None:
        self.snapshot = self.student.read(ATTENTION)
        step = self.student.snapshots[-1].step
        labels, images = self.snapshot.labels, list(range(len(self.snapshot.images)))
        if list(self.pair_picker.options) != labels:
            keep = self.pair_picker.value if self.pair_picker.value in labels else labels[0]
            self.pair_picker.options, self.pair_picker.value = labels, keep
        if [v for _, v in self.image_picker.options] != images:
            self.image_picker.options = [(f"test image #{i}", i) for i in images]
            self.image_picker.value = 0
        self._draw_maps(step)

    def _draw_maps(self, step: int | None = None) -> None:
        snap, pair, image = self.snapshot, self.pair_picker.value, self.image_picker.value
        if snap is None or pair is None or image is None:
            return
        chosen = snap.pair(pair)
        self.maps_chart.show(attention_maps(
            snap.images[image], chosen.teacher[image], chosen.student[image], pair, teacher_label=TEACHER.label,
            student_label=self.student.label, teacher_colour=TEACHER.colour, student_colour=self.student.colour))
        if step is not None:
            self.maps_step = step

    def _draw_curves(self) -> None:
        steps, distances = distance_series(self.student.evals, ATTENTION.metric_key(self.student.config, "probe_loss"))
        if steps:
            self.distance_chart.show(attention_distance_curve(steps, distances))
        self._draw_accuracy()


__all__ = ["AttentionMonitor"]
