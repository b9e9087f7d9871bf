"""``LogitMatchingMonitor``: logit matching (Ba & Caruana, NIPS 2014) drawn live in a notebook.

A logit-matching student adds weight * 1/(2B) sum ||z_s - z_t||^2 to cross-entropy (or trains on it
alone); Hinton et al. (2015, section 2.1, eqs. 2-4) show their loss times T^2 tends to the same
distance over K as T grows. The monitor shows, from the runs' stores, the family panel of the
student (``kdviz.present.family_logit_matching``: the ratio (T^2 KL) / (L2 / K) against T, the
student's probe logits against the teacher's, the probe L2 over training, each with a caption that
reads the numbers now) and the test accuracy of every run, with a Stop button. A ``_live.Poller``
thread reads the stores and redraws through ``_live.LiveFigure``, so the cell returns at once; once
every run has ended, a replay bar (``_replay.ReplayBar``) scrubs the student's snapshots.
"""
from __future__ import annotations

import html
import threading
from typing import Any

import ipywidgets as W

from ..figures.training import accuracy_comparison
from ..methods.logit_matching import LOGIT_MATCHING
from ..present import Experiment, run_views, teacher_accuracy
from ..present.family_logit_matching import panel_at, reading
from ._live import LiveFigure, LiveMonitor, Poller
from ._replay import ReplayBar
from .attention import CHART_WIDTH, status_html, waiting

PANEL_TITLES = ("Hinton's loss against logit matching: waiting for the first snapshot",
                "Student vs teacher logits: waiting for the first snapshot",
                "Logit distance: waiting for the second evaluation")


class LogitMatchingMonitor(LiveMonitor, W.VBox):
    """Live logit-matching charts of a logit-matching student and the accuracy of the runs beside it.

    ``job_or_jobs``: an ``Experiment``, a ``Job``, ``RunReader`` or run folder, or a list or
    ``{label: run}`` dict of them; one must be a logit-matching run (its config has the method's hook).
    ``interval_ms`` is the poll and redraw interval."""

    def __init__(self, job_or_jobs: Any, interval_ms: float = 1000, autostart: bool = True) -> None:
        runs = job_or_jobs.jobs if isinstance(job_or_jobs, Experiment) else job_or_jobs
        self.views = run_views(runs)
        students = [v for v in self.views if v.method is LOGIT_MATCHING]
        if not students:
            raise ValueError(f"LogitMatchingMonitor needs a logit-matching run (a config with the "
                             f"{LOGIT_MATCHING.name!r} hook); got {[v.method.label for v in self.views]}")
        self.student = students[0]
        self.shown_step: int | None = None  # the student step the snapshot charts show
        self._teacher_acc: float | None = None
        self._panel_drawn_at: tuple[int, int] | None = None  # (snapshots, evaluations) the panel last drew
        self._accuracy_drawn_at = -1  # evaluations of all runs the accuracy chart last drew
        self._lock = threading.Lock()
        self._errors_seen: set[str] = set()
        self.status = {v.label: W.HTML() for v in self.views}
        self.stop_button = W.Button(description="Stop", icon="stop", button_style="danger", layout=W.Layout(width="90px"),
                                    tooltip="stop every run after its current step (a checkpoint is saved)")
        self.stop_button.on_click(lambda _: self.stop())
        self.errors = W.Output()
        self.charts = [LiveFigure(waiting(title), width=CHART_WIDTH) for title in PANEL_TITLES]
        self.captions = [W.HTML(layout=W.Layout(width=f"{CHART_WIDTH}px")) for _ in PANEL_TITLES]
        self.accuracy_chart = LiveFigure(waiting("Test accuracy: waiting for the first evaluation"), width=CHART_WIDTH)
        self.replay = ReplayBar(self._replay_to, on_error=self._report)
        header = W.HTML("<b>Logit matching monitor</b>: does the student's every logit land on the teacher's "
                        "(Ba &amp; Caruana 2014), and is Hinton's loss at high T the same thing? Watch the points close "
                        "on y = x and the ratio reach 1 (Hinton et al. 2015, section 2.1).")
        cells = [W.VBox([chart.widget, caption]) for chart, caption in zip(self.charts, self.captions)]
        row = lambda *ws: W.Box(list(ws), layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))  # noqa: E731
        super().__init__([header, W.HBox([self.stop_button, W.VBox(list(self.status.values()))]), self.replay,
                          row(cells[0], cells[1]), row(cells[2], self.accuracy_chart.widget), self.errors])
        self.poller = Poller(self._tick, interval_ms, name="kdviz-logit-matching-monitor", on_error=self._report)
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
        seen = (len(self.student.snapshots), len(self.student.evals))
        if changed[self.student.label] and self.student.snapshots and seen != self._panel_drawn_at:
            self._panel_drawn_at = seen  # step records alone change nothing the panel draws
            self._draw_panel(self.student.snapshots[-1])
        evaluations = sum(len(v.evals) for v in self.views)
        if any(changed.values()) and evaluations != self._accuracy_drawn_at:
            self._accuracy_drawn_at = evaluations
            self._draw_accuracy()
        self._update_status()
        if done:
            self.replay.set_snapshots([s for s in self.student.snapshots if reading(self.student, s) is not None])
        return not done

    def refresh(self) -> None:
        """Read what is new in every run and redraw now (the poller does this on its own)."""
        self._tick()

    def _waitables(self) -> list:
        return [view.job for view in self.views if view.job is not None]

    def _replay_to(self, snapshot: Any) -> None:
        self._draw_panel(snapshot)

    def _draw_panel(self, snapshot: Any) -> None:
        figures = panel_at(self.student, snapshot)
        for chart, caption, panel_figure in zip(self.charts, self.captions, figures):
            chart.show(panel_figure.figure)
            caption.value = html.escape(panel_figure.caption, quote=False)
        if figures:
            self.shown_step = snapshot.step

    def _draw_accuracy(self) -> None:
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
        text = f"kdviz logit-matching monitor: {type(exc).__name__}: {exc}"
        if text not in self._errors_seen:  # a failing redraw repeats every tick: say it once
            self._errors_seen.add(text)
            self.errors.append_stdout(text + "\n")


__all__ = ["LogitMatchingMonitor"]
