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
from typing import Any

import ipywidgets as W

from ..methods.logit_matching import LOGIT_MATCHING
from ..present.family_logit_matching import panel_at, reading
from ._live import LiveFigure
from ._monitor import CHART_WIDTH, RunsMonitor, row, waiting
from ._replay import ReplayBar

PANEL_TITLES = ("Hinton's loss against logit matching: waiting for the first snapshot",
                "Student vs teacher logits: waiting for the first snapshot",
                "Logit distance: waiting for the second evaluation")


class LogitMatchingMonitor(RunsMonitor, W.VBox):
    """Live logit-matching charts of a logit-matching student and the accuracy of the runs beside it.

    ``job_or_jobs``: an ``Experiment``, a ``Job``, ``RunReader`` or run folder, or a list or
    ``{label: run}`` dict of them; one must be a logit-matching run (its config has the method's hook).
    ``interval_ms`` is the poll and redraw interval."""

    monitor_name = "logit-matching monitor"

    def __init__(self, job_or_jobs: Any, interval_ms: float = 1000, autostart: bool = True) -> None:
        self._follow(job_or_jobs)
        self.student = self._student(LOGIT_MATCHING, "a logit-matching run")
        self.shown_step: int | None = None  # the student step the snapshot charts show
        self._panel_drawn_at: tuple[int, int] | None = None  # (snapshots, evaluations) the panel last drew
        self._accuracy_drawn_at = -1  # evaluations of all runs the accuracy chart last drew
        controls = self._run_controls()
        self.charts = [LiveFigure(waiting(title), width=CHART_WIDTH) for title in PANEL_TITLES]
        self.captions = [W.HTML(layout=W.Layout(width=f"{CHART_WIDTH}px")) for _ in PANEL_TITLES]
        self.accuracy_chart = LiveFigure(waiting("Test accuracy: waiting for the first evaluation"), width=CHART_WIDTH)
        self.replay = ReplayBar(self._replay_to, on_error=self._report)
        header = W.HTML("<b>Logit matching monitor</b>: does the student's every logit land on the teacher's "
                        "(Ba &amp; Caruana 2014), and is Hinton's loss at high T the same thing? Watch the points close "
                        "on y = x and the ratio reach 1 (Hinton et al. 2015, section 2.1).")
        cells = [W.VBox([chart.widget, caption]) for chart, caption in zip(self.charts, self.captions)]
        super().__init__([header, controls, self.replay,
                          row(cells[0], cells[1]), row(cells[2], self.accuracy_chart.widget), self.errors])
        self._start_polling(interval_ms, autostart, "kdviz-logit-matching-monitor")

    def _tick(self) -> bool:
        done, changed = self._read_runs()
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

    def _replay_to(self, snapshot: Any) -> None:
        self._draw_panel(snapshot)

    def _draw_panel(self, snapshot: Any) -> None:
        figures = panel_at(self.student, snapshot)
        for chart, caption, panel_figure in zip(self.charts, self.captions, figures):
            chart.show(panel_figure.figure)
            caption.value = html.escape(panel_figure.caption, quote=False)
        if figures:
            self.shown_step = snapshot.step


__all__ = ["LogitMatchingMonitor"]
