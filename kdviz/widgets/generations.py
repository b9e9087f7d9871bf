"""``GenerationsMonitor``: a chain of KD runs (born-again generations or a teacher assistant) live in a notebook.

Born-again networks (Furlanello et al., ICML 2018): generation k, the same architecture, is distilled
from generation k-1. Teacher assistant (Mirzadeh et al., AAAI 2020): teacher -> assistant -> student
against teacher -> student. ``kdviz.present.generations`` plans and starts the chain
(``chain_experiment``); this monitor shows every run's state (a run not started yet says whom it
waits for), the test accuracy per generation (mean over seeds, spread, one dot a seed), for a
teacher-assistant chain the accuracy against the capacity gap, and the caption that reads the numbers,
with a Stop button. A ``_live.Poller`` thread polls the experiment (which starts each stage once the
run before it has finished), reads the runs' stores and redraws, so the cell returns at once.
"""
from __future__ import annotations

import html

import ipywidgets as W

from ..present import RunView, describe
from ..present.generations import BORN_AGAIN, ChainExperiment, chain_figures, chain_results, latest_accuracies
from ._live import LiveFigure
from ._monitor import ExperimentMonitor, waiting

CHART_WIDTH = 560
CHART_HEIGHT = 360


class GenerationsMonitor(ExperimentMonitor, W.VBox):
    """Live state and accuracy of every run of a ``ChainExperiment`` (``kdviz.present.generations``).

    ``interval_ms`` is the poll and redraw interval; with ``autostart=False`` nothing polls until
    ``refresh()`` or ``wait()``."""

    monitor_name = "generations monitor"

    def __init__(self, experiment: ChainExperiment, interval_ms: float = 1000, autostart: bool = True) -> None:
        if not isinstance(experiment, ChainExperiment):
            raise ValueError("GenerationsMonitor follows a chain started by kdviz.present.generations.chain_experiment "
                             f"(born_again_plan or assistant_plan), got {type(experiment).__name__}")
        self.experiment, self.plan = experiment, experiment.plan
        self.views: dict[str, RunView] = {}
        self.results = []
        controls = self._run_controls((run.name for run in self.plan.runs),
                                      tooltip="stop every run after its current step and cancel the runs not started")
        self.caption = W.HTML()
        self.generation_chart = LiveFigure(
            waiting("Test accuracy per generation: waiting for the first evaluation", CHART_HEIGHT), width=CHART_WIDTH)
        charts = [self.generation_chart.widget]
        self.gap_chart = None
        if self.plan.kind != BORN_AGAIN:
            self.gap_chart = LiveFigure(
                waiting("Accuracy against the capacity gap: waiting for the students", CHART_HEIGHT), width=CHART_WIDTH)
            charts.append(self.gap_chart.widget)
        header = W.HTML(f"<b>{html.escape(self.plan.kind.capitalize())} monitor</b>: each run is distilled from the "
                        "finished run before it. Does each step of the chain beat the one before?")
        super().__init__([header, controls,
                          W.Box(charts, layout=W.Layout(flex_flow="row wrap")), self.caption, self.errors])
        self._start_polling(interval_ms, autostart, "kdviz-generations-monitor")


    # ---- polling ------------------------------------------------------------------------------
    def _tick(self) -> bool:
        done, changed = self._read_experiment()
        if changed or not self.results:
            self._draw()
        self._update_status()
        return not done

    def _draw(self) -> None:
        accuracies = {name: (view.evals[-1].get("test_acc") if view.evals else None) for name, view in self.views.items()}
        finished = {name: view.status().get("state") == "finished" for name, view in self.views.items()}
        self.results = chain_results(self.plan, accuracies, finished)
        if self._teacher_acc is None and self.plan.teacher is not None:  # the chain's teacher, not the assistant
            self._teacher_acc = latest_accuracies({"teacher": self.plan.teacher})["teacher"]
        figures = chain_figures(self.plan, self.results, self._teacher_acc)
        self.generation_chart.show(figures[0][0])
        if self.gap_chart is not None and len(figures) > 1:
            self.gap_chart.show(figures[1][0])
        self.caption.value = html.escape(figures[0][1])

    def _update_status(self) -> None:
        pending, blocked = set(self.experiment.pending), self.experiment.blocked
        for run in self.plan.runs:
            view, name = self.views.get(run.name), html.escape(run.name)
            if view is not None:
                text = describe(view.status(), run.name, epochs=getattr(view.config, "epochs", None))
                line = f"<b>{name}</b> · {html.escape(text.state)} · {html.escape(text.accuracy or '')} {html.escape(text.detail)}"
            elif run.name in blocked:
                line = f"<b>{name}</b> · will not start: {html.escape(blocked[run.name])}"
            else:
                line = f"<b>{name}</b> · waiting for {html.escape(run.teacher_from or 'its turn')} to finish" \
                    if run.name in pending else f"<b>{name}</b> · not started"
            self.status[run.name].value = line
        self._update_stop_button()

    def _can_stop(self) -> bool:
        return True  # the experiment stops its running stages and cancels those not started


__all__ = ["GenerationsMonitor"]
