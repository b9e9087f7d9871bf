"""``DMLMonitor``: deep mutual learning (Zhang et al., CVPR 2018) drawn live in a notebook.

A DML run trains two students together, each on its cross-entropy plus KL(p_other || p_self)
(eqs. 3-4); the second one (the peer) lives inside the run's ``dml`` hook. The monitor shows, from
the runs' stores, both students' test accuracy and their agreement over training, the two KL terms
on the probe batch, the captions ``kdviz.present.family_dml`` writes from those numbers, and the
test accuracy of every run (a scratch student beside it, say), with a Stop button. A
``_live.Poller`` thread reads the stores and redraws at most every ``interval_ms``, so the cell that
shows it returns at once.
"""
from __future__ import annotations

import html
import threading
from typing import Any

import ipywidgets as W

from ..figures.dml import mutual_accuracy_curve, mutual_kl_curve
from ..figures.training import accuracy_comparison
from ..methods.dml import DML, dml_options
from ..present import Experiment, run_views, teacher_accuracy
from ..present.family_dml import accuracy_caption, dml_curves, kl_caption
from ._live import LiveFigure, LiveMonitor, Poller
from .attention import status_html, waiting

CHART_WIDTH = 520


class DMLMonitor(LiveMonitor, W.VBox):
    """Live accuracy of both students of a DML run, their KL terms, and the accuracy of the runs beside it.

    ``job_or_jobs``: an ``Experiment``, a ``Job``, ``RunReader`` or run folder, or a list or
    ``{label: run}`` dict of them; one of them must be a DML run (its config has the method's hook).
    ``interval_ms`` is the poll and redraw interval.
    """

    def __init__(self, job_or_jobs: Any, interval_ms: float = 1000, autostart: bool = True) -> None:
        runs = job_or_jobs.jobs if isinstance(job_or_jobs, Experiment) else job_or_jobs
        self.views = run_views(runs)
        students = [v for v in self.views if v.method is DML]
        if not students:
            raise ValueError(f"DMLMonitor needs a deep-mutual-learning run (a config with the {DML.name!r} hook); "
                             f"got {[v.method.label for v in self.views]}")
        self.student = students[0]
        self.options = dml_options(self.student.config)
        self._teacher_acc: float | None = None
        self._lock = threading.Lock()
        self._errors_seen: set[str] = set()
        self.status = {v.label: W.HTML() for v in self.views}
        self.stop_button = W.Button(description="Stop", icon="stop", button_style="danger",
                                    layout=W.Layout(width="90px"),
                                    tooltip="stop every run after its current step (a checkpoint is saved)")
        self.stop_button.on_click(lambda _: self.stop())
        self.errors = W.Output()
        self.mutual_chart = LiveFigure(waiting("Both students: waiting for the first evaluation"), width=CHART_WIDTH)
        self.kl_chart = LiveFigure(waiting("KL terms: waiting for the first evaluation"), width=CHART_WIDTH)
        self.accuracy_chart = LiveFigure(waiting("Test accuracy: waiting for the first evaluation"), width=CHART_WIDTH)
        self.mutual_caption, self.kl_caption = W.HTML(), W.HTML()
        header = W.HTML("<b>Deep mutual learning monitor</b>: two students learn together from scratch, no teacher; "
                        "each minimises its cross-entropy plus KL(p<sub>other</sub> ‖ p<sub>self</sub>), the other's "
                        "predictions held fixed (Zhang et al. 2018, eqs. 3-4). The peer is drawn dashed.")
        column = lambda chart, caption: W.VBox([chart.widget, caption],  # noqa: E731
                                               layout=W.Layout(width=f"{CHART_WIDTH + 10}px"))
        row = lambda *ws: W.Box(list(ws), layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))  # noqa: E731
        super().__init__([header, W.HBox([self.stop_button, W.VBox(list(self.status.values()))]),
                          row(column(self.mutual_chart, self.mutual_caption), column(self.kl_chart, self.kl_caption)),
                          self.accuracy_chart.widget, self.errors])
        self.poller = Poller(self._tick, interval_ms, name="kdviz-dml-monitor", on_error=self._report)
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
        if any(changed.values()):
            self._draw()
        self._update_status()
        return not done

    def refresh(self) -> None:
        """Read what is new in every run and redraw now (the poller does this on its own)."""
        self._tick()

    def _waitables(self) -> list:
        return [view.job for view in self.views if view.job is not None]

    def _draw(self) -> None:
        steps, series = dml_curves(self.student.evals, self.student.config)
        if steps:
            colour = self.student.colour
            self.mutual_chart.show(mutual_accuracy_curve(steps, series["acc"], series["peer_acc"], series["agreement"],
                                                         colour=colour))
            self.kl_chart.show(mutual_kl_curve(steps, series["kl"], series["peer_kl"], T=float(self.options["T"]),
                                               colour=colour))
            self.mutual_caption.value = html.escape(accuracy_caption(steps, series))
            self.kl_caption.value = html.escape(kl_caption(steps, series, self.options))
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
        text = f"kdviz DML monitor: {type(exc).__name__}: {exc}"
        if text not in self._errors_seen:  # a failing redraw repeats every tick: say it once
            self._errors_seen.add(text)
            self.errors.append_stdout(text + "\n")


__all__ = ["DMLMonitor"]
