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
import threading
from typing import Any

import ipywidgets as W

from ..figures.dkd import dkd_parts_curve, metric_series, nckd_suppression
from ..figures.training import accuracy_comparison
from ..methods.dkd import DKD, dkd_options, dkd_series_keys
from ..present import Experiment, run_views, teacher_accuracy
from ..present.family_dkd import parts_caption, suppression_caption
from ._live import LiveFigure, LiveMonitor, Poller
from ._replay import ReplayBar
from .attention import status_html, waiting

CHART_WIDTH = 520


class DKDMonitor(LiveMonitor, W.VBox):
    """Live TCKD / NCKD / KD curves, NCKD suppression and accuracy of a DKD student and the runs beside it.

    ``job_or_jobs``: an ``Experiment``, a ``Job``, ``RunReader`` or run folder, or a list or
    ``{label: run}`` dict of them; one of them must be a DKD run (its config has the method's hook).
    ``interval_ms`` is the poll and redraw interval.
    """

    def __init__(self, job_or_jobs: Any, interval_ms: float = 1000, autostart: bool = True) -> None:
        runs = job_or_jobs.jobs if isinstance(job_or_jobs, Experiment) else job_or_jobs
        self.views = run_views(runs)
        students = [v for v in self.views if v.method is DKD]
        if not students:
            raise ValueError(f"DKDMonitor needs a decoupled-KD run (a config with the {DKD.name!r} hook); "
                             f"got {[v.method.label for v in self.views]}")
        self.student = students[0]
        self.options = dkd_options(self.student.config)
        self.snapshot = None  # the latest DKDSnapshot read
        self.snapshot_step: int | None = None  # the student step the suppression chart shows
        self._teacher_acc: float | None = None
        self._lock = threading.Lock()
        self._errors_seen: set[str] = set()
        self.status = {v.label: W.HTML() for v in self.views}
        self.stop_button = W.Button(description="Stop", icon="stop", button_style="danger",
                                    layout=W.Layout(width="90px"),
                                    tooltip="stop every run after its current step (a checkpoint is saved)")
        self.stop_button.on_click(lambda _: self.stop())
        self.errors = W.Output()
        self.parts_chart = LiveFigure(waiting("TCKD, NCKD and KD: waiting for the first evaluation"), width=CHART_WIDTH)
        self.suppression_chart = LiveFigure(waiting("NCKD suppression: waiting for the first snapshot"),
                                            width=CHART_WIDTH)
        self.accuracy_chart = LiveFigure(waiting("Test accuracy: waiting for the first evaluation"), width=CHART_WIDTH)
        self.parts_caption, self.suppression_caption = W.HTML(), W.HTML()
        self.replay = ReplayBar(self._replay_to, on_error=self._report)
        header = W.HTML("<b>Decoupled KD monitor</b>: Hinton's loss is KD = TCKD + (1 − p<sub>t</sub>)·NCKD, so the "
                        "more confident the teacher, the less NCKD (the wrong classes' ranking) the student gets; DKD "
                        "weights the two parts by α and β instead (Zhao et al. 2022, eqs. 7-8).")
        column = lambda chart, caption: W.VBox([chart.widget, caption],  # noqa: E731
                                               layout=W.Layout(width=f"{CHART_WIDTH + 10}px"))
        row = lambda *ws: W.Box(list(ws), layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))  # noqa: E731
        super().__init__([header, W.HBox([self.stop_button, W.VBox(list(self.status.values()))]), self.replay,
                          row(column(self.parts_chart, self.parts_caption),
                              column(self.suppression_chart, self.suppression_caption)),
                          self.accuracy_chart.widget, self.errors])
        self.poller = Poller(self._tick, interval_ms, name="kdviz-dkd-monitor", on_error=self._report)
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
            reading = self._reading_of(self.student.snapshots[-1])
            if reading is not None:
                self._draw_suppression(reading, self.student.snapshots[-1].step)
        if any(changed.values()):
            self._draw_curves()
        self._update_status()
        if done:
            self.replay.set_snapshots([s for s in self.student.snapshots if self._reading_of(s) is not None])
        return not done

    def _reading_of(self, snapshot: Any) -> Any:
        try:
            return self.student.read(DKD, snapshot)
        except ValueError:  # a snapshot without the hook's arrays
            return None

    def _replay_to(self, snapshot: Any) -> None:
        reading = self._reading_of(snapshot)
        if reading is not None:
            self._draw_suppression(reading, snapshot.step)

    def refresh(self) -> None:
        """Read what is new in every run and redraw now (the poller does this on its own)."""
        self._tick()

    def _waitables(self) -> list:
        return [view.job for view in self.views if view.job is not None]

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
        text = f"kdviz DKD monitor: {type(exc).__name__}: {exc}"
        if text not in self._errors_seen:  # a failing redraw repeats every tick: say it once
            self._errors_seen.add(text)
            self.errors.append_stdout(text + "\n")


__all__ = ["DKDMonitor"]
