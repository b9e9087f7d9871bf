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

import html
import threading
from typing import Any

import ipywidgets as W
import plotly.graph_objects as go

from ..figures.attention import attention_distance_curve, attention_maps, distance_series
from ..figures.training import accuracy_comparison
from ..methods.attention import ATTENTION
from ..methods.scratch import TEACHER
from ..present import Experiment, RunView, describe, run_views, teacher_accuracy
from ._live import LiveFigure, LiveMonitor, Poller, Throttle
from ._replay import ReplayBar

CHART_WIDTH = 520


def waiting(title: str, height: int = 340) -> go.Figure:
    """An empty, unthemed chart whose title says what it waits for."""
    return go.Figure(layout={"template": "none", "height": height, "title": {"text": f"<b>{title}</b>", "x": 0.0},
                             "xaxis": {"visible": False}, "yaxis": {"visible": False}})


def status_html(view: RunView) -> str:
    """``kdviz.present.describe``'s line for a run, its label in the run's colour."""
    text = describe(view.status(), view.label, epochs=getattr(view.config, "epochs", None))
    label = f"<span style='color:{view.colour};font-weight:bold'>{html.escape(view.label)}</span>"
    return f"{label} · <b>{html.escape(text.state)}</b> · {html.escape(text.accuracy or '')} {html.escape(text.detail)}"


class AttentionMonitor(LiveMonitor, W.VBox):
    """Live attention maps and accuracy of an AT student and the runs beside it.

    ``job_or_jobs``: an ``Experiment``, a ``Job``, ``RunReader`` or run folder, or a list or
    ``{label: run}`` dict of them; one of them must be an attention-transfer run (its config has
    the method's hook). ``interval_ms`` is the poll and redraw interval.
    """

    def __init__(self, job_or_jobs: Any, interval_ms: float = 1000, autostart: bool = True) -> None:
        runs = job_or_jobs.jobs if isinstance(job_or_jobs, Experiment) else job_or_jobs
        self.views = run_views(runs)
        students = [v for v in self.views if v.method is ATTENTION]
        if not students:
            raise ValueError(f"AttentionMonitor needs an attention-transfer run (a config with the "
                             f"{ATTENTION.name!r} hook); got {[v.method.label for v in self.views]}")
        self.student = students[0]
        self.snapshot = None  # the latest AttentionSnapshot read
        self.maps_step: int | None = None  # the student step the maps show
        self._teacher_acc: float | None = None  # read from the teacher's run folder once it has one
        self._lock = threading.Lock()
        self._errors_seen: set[str] = set()
        self.status = {v.label: W.HTML() for v in self.views}
        self.stop_button = W.Button(description="Stop", icon="stop", button_style="danger", layout=W.Layout(width="90px"),
                                    tooltip="stop every run after its current step (a checkpoint is saved)")
        self.stop_button.on_click(lambda _: self.stop())
        wide = {"description_width": "initial"}
        self.pair_picker = W.Dropdown(options=[], description="layer pair", style=wide, layout=W.Layout(width="260px"))
        self.image_picker = W.Dropdown(options=[], description="probe image", style=wide, layout=W.Layout(width="200px"))
        self.errors = W.Output()
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
        row = lambda *ws: W.Box(list(ws), layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))  # noqa: E731
        super().__init__([header, W.HBox([self.stop_button, W.VBox(list(self.status.values()))]),
                          W.HBox([self.pair_picker, self.image_picker, self.replay], layout=W.Layout(flex_flow="row wrap")),
                          self.maps_chart.widget,
                          row(self.distance_chart.widget, self.accuracy_chart.widget), self.errors])
        self.poller = Poller(self._tick, interval_ms, name="kdviz-attention-monitor", on_error=self._report)
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

    # ---- polling ------------------------------------------------------------------------------
    def _tick(self) -> bool:
        done = self.done  # read before the data, so the last records are in
        with self._lock:
            changed = {v.label: v.refresh() for v in self.views}
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
        self.replay.set_snapshots([snap for snap in self.student.snapshots if self._reading_of(snap) is not None])

    def _reading_of(self, snapshot: Any) -> Any:
        try:
            return self.student.read(ATTENTION, snapshot)
        except ValueError:  # a snapshot without the attention arrays
            return None

    def _replay_to(self, snapshot: Any) -> None:
        """Draw the maps at a replayed snapshot (the layer pair and image pickers still apply)."""
        reading = self._reading_of(snapshot)
        if reading is not None:
            self.snapshot = reading
            self._draw_maps(snapshot.step)

    def refresh(self) -> None:
        """Read what is new in every run and redraw now (the poller does this on its own)."""
        self._tick()

    def _waitables(self) -> list:
        return [view.job for view in self.views if view.job is not None]

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
        if done:  # nothing left to stop: no red button beside finished runs
            self.stop_button.layout.display = "none"

    def _report(self, exc: BaseException) -> None:
        text = f"kdviz attention monitor: {type(exc).__name__}: {exc}"
        if text not in self._errors_seen:  # a failing redraw repeats every tick: say it once
            self._errors_seen.add(text)
            self.errors.append_stdout(text + "\n")


__all__ = ["AttentionMonitor"]
