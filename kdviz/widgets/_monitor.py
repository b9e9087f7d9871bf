"""What the live monitors of a set of runs share: polling, the Stop button, a status line per run,
errors said once, the accuracy chart and the layout helpers.

``PolledMonitor`` (a ``_live.LiveMonitor``) starts its ``_live.Poller`` over ``self._tick`` (or draws
once when it is not to poll). ``RunsMonitor`` adds what a monitor of ``kdviz.present.RunView``s
(``self.views``) shows beside its charts: a Stop button that stops every controllable running run,
one ``describe`` line per run in the run's colour, and an ``errors`` Output that says each failure
once. The attention, DKD, RKD, logit-matching, DML, family and generations monitors mix it in
before ``ipywidgets.VBox``; ``KDDiagnosis`` only polls.
"""
from __future__ import annotations

import html
import threading
from typing import Any, Callable, Iterable

import ipywidgets as W
import plotly.graph_objects as go

from ..figures.training import accuracy_comparison
from ..present import Experiment, RunView, as_run_view, describe, run_views, teacher_accuracy
from ._live import LiveFigure, LiveMonitor, Poller

CHART_WIDTH = 520
STOP_TOOLTIP = "stop every run after its current step (a checkpoint is saved)"


def waiting(title: str, height: int = 340) -> go.Figure:
    """An empty, unthemed chart whose title says what it waits for."""
    return go.Figure(layout={"template": "none", "height": height, "title": {"text": f"<b>{title}</b>", "x": 0.0},
                             "xaxis": {"visible": False}, "yaxis": {"visible": False}})


def status_html(view: RunView) -> str:
    """``kdviz.present.describe``'s line for a run, its label in the run's colour."""
    text = describe(view.status(), view.label, epochs=getattr(view.config, "epochs", None))
    label = f"<span style='color:{view.colour};font-weight:bold'>{html.escape(view.label)}</span>"
    return f"{label} · <b>{html.escape(text.state)}</b> · {html.escape(text.accuracy or '')} {html.escape(text.detail)}"


def row(*widgets: W.Widget) -> W.Box:
    """Widgets side by side, wrapping on a narrow notebook, aligned at the top."""
    return W.Box(list(widgets), layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))


def column(chart: LiveFigure, caption: W.Widget) -> W.VBox:
    """A chart over its caption, as wide as a chart of ``CHART_WIDTH``."""
    return W.VBox([chart.widget, caption], layout=W.Layout(width=f"{CHART_WIDTH + 10}px"))


class PolledMonitor(LiveMonitor):
    """A ``LiveMonitor`` whose ``_live.Poller`` calls ``self._tick`` (True: poll again) while ``done``
    is False."""

    @property
    def done(self) -> bool:
        raise NotImplementedError

    def _tick(self) -> bool:
        raise NotImplementedError

    def _start_polling(self, interval_ms: float, autostart: bool, name: str,
                       on_error: Callable[[BaseException], None] | None = None) -> None:
        """Poll every ``interval_ms`` in a thread called ``name`` (a failure goes to ``on_error``,
        default ``self._report``); ended runs, or ``autostart=False``: draw once now instead."""
        self.poller = Poller(self._tick, interval_ms, name=name, on_error=on_error or self._report)
        if autostart and not self.done:
            self.poller.start()
        else:
            self.refresh()


class RunsMonitor(PolledMonitor):
    """A polled monitor of ``self.views`` (``RunView``s) with a Stop button, a status line per run and
    an errors Output; ``monitor_name`` names it in the errors ("DKD monitor")."""

    monitor_name = "monitor"
    views: Any  # the RunViews read (a list; a dict by run name where a subclass says so)
    _teacher_acc: float | None = None  # read from the teacher's run folder once it has one

    def _follow(self, job_or_jobs: Any) -> None:
        """``self.views``: a ``RunView`` per run of an ``Experiment``, a ``Job``, ``RunReader`` or run
        folder, or a list or ``{label: run}`` dict of them."""
        runs = job_or_jobs.jobs if isinstance(job_or_jobs, Experiment) else job_or_jobs
        self.views = run_views(runs)

    def _student(self, method: Any, wanted: str) -> RunView:
        """The first of ``self.views`` trained by ``method`` (a ``MethodSpec``); a ValueError that names
        what was ``wanted`` ("a decoupled-KD run") and the runs' methods where there is none."""
        students = [v for v in self.views if v.method is method]
        if not students:
            raise ValueError(f"{type(self).__name__} needs {wanted} (a config with the {method.name!r} hook); "
                             f"got {[v.method.label for v in self.views]}")
        self.student_method = method
        return students[0]

    def _reading_of(self, snapshot: Any) -> Any:
        """``self.student``'s reading of its method's arrays in ``snapshot``; None for a snapshot
        without them."""
        try:
            return self.student.read(self.student_method, snapshot)
        except ValueError:  # a snapshot without the hook's arrays
            return None

    def _replayable(self) -> list:
        """The student's snapshots that hold its method's arrays (what the replay bar scrubs)."""
        return [snap for snap in self.student.snapshots if self._reading_of(snap) is not None]

    def _run_controls(self, labels: Iterable[str] | None = None, tooltip: str = STOP_TOOLTIP) -> W.HBox:
        """Make ``status`` (an HTML line per run label, default the views' labels), ``stop_button``,
        ``errors`` and the lock ``_tick`` reads under; returns the Stop button beside the status lines."""
        self._lock = threading.Lock()
        self._errors_seen: set[str] = set()
        labels = [v.label for v in self.views] if labels is None else labels
        self.status = {label: W.HTML() for label in labels}
        self.stop_button = W.Button(description="Stop", icon="stop", button_style="danger",
                                    layout=W.Layout(width="90px"), tooltip=tooltip)
        self.stop_button.on_click(lambda _: self.stop())
        self.errors = W.Output()
        return W.HBox([self.stop_button, W.VBox(list(self.status.values()))])

    @property
    def done(self) -> bool:
        return all(v.done for v in self.views)

    def stop(self) -> None:
        """Stop every run after its current step (checkpoints are saved); returns at once."""
        for view in self.views:
            if view.controllable and not view.done:
                view.job.stop()
        self._update_status()

    def refresh(self) -> None:
        """Read what is new in every run and redraw now (the poller does this on its own)."""
        self._tick()

    def _waitables(self) -> list:
        return [view.job for view in self.views if view.job is not None]

    def _read_runs(self) -> tuple[bool, dict[str, bool]]:
        """(every run had ended, {label: whether the run had news}); ``done`` is read before the data,
        so the last records are in."""
        done = self.done
        with self._lock:
            changed = {v.label: v.refresh() for v in self.views}
        return done, changed

    def _draw_accuracy(self) -> None:
        """Every run's test accuracy on one chart (``self.accuracy_chart``), the teacher's as a line."""
        runs = [{"label": v.label, "colour": v.colour, "records": v.evals} for v in self.views if v.evals]
        if runs:
            if self._teacher_acc is None:
                self._teacher_acc = teacher_accuracy(self.views)
            self.accuracy_chart.show(accuracy_comparison(runs, teacher_accuracy=self._teacher_acc))

    def _can_stop(self) -> bool:
        return any(v.controllable for v in self.views)

    def _update_status(self) -> None:
        for view in self.views:
            self.status[view.label].value = status_html(view)
        self._update_stop_button()

    def _update_stop_button(self) -> None:
        done = self.done
        self.stop_button.disabled = done or not self._can_stop()
        if done:  # nothing left to stop: no red button beside finished runs
            self.stop_button.layout.display = "none"

    def _report(self, exc: BaseException) -> None:
        text = f"kdviz {self.monitor_name}: {type(exc).__name__}: {exc}"
        if text not in self._errors_seen:  # a failing redraw repeats every tick: say it once
            self._errors_seen.add(text)
            self.errors.append_stdout(text + "\n")


class ExperimentMonitor(RunsMonitor):
    """A monitor of an ``Experiment`` whose runs start in stages (a chain, a pipeline, rounds):
    ``self.experiment``, and ``self.views`` a ``{name: RunView}`` dict that grows as runs start."""

    experiment: Experiment

    @property
    def done(self) -> bool:
        return self.experiment.done

    def stop(self) -> None:
        """Stop every run after its current step and cancel the runs not started yet; returns at once."""
        self.experiment.stop()
        self._update_status()

    def _waitables(self) -> list:
        return [self.experiment]

    def _read_experiment(self) -> tuple[bool, bool]:
        """(the experiment had ended, some run had news): follows the runs started since the last tick;
        ``done`` polls the stages first and is read before the data, so the last records are in."""
        done = self.done
        with self._lock:
            for name, job in self.experiment.jobs.items():
                if name not in self.views:
                    self.views[name] = as_run_view(job, name)
            changed = [view.refresh() for view in self.views.values()]
        return done, any(changed)


__all__ = ["CHART_WIDTH", "ExperimentMonitor", "PolledMonitor", "RunsMonitor", "column", "row", "status_html",
           "waiting"]
