"""``LotteryMonitor`` and ``NMMonitor``: the lottery-ticket search and the N:M comparison live in a notebook.

Lottery tickets (Frankle & Carbin 2019; rewinding, Frankle et al. 2020): ``kdviz.present.lottery``
plans and starts the rounds (``lottery_experiment``); the monitor shows every run's state (a round
not started yet says which round it waits for), the accuracy per round of the ticket against the
random re-initialisation and the dense network, and the live mask-overlap chart. N:M sparsity
(Mishra et al. 2021): ``n_m_experiment``; the monitor shows N:M against unstructured pruning at the
same sparsity and a picture of the pattern. A ``_live.Poller`` thread polls the experiment (which
starts each round once the round before has finished) and redraws, so the cell returns at once.

>>> plan = lottery_plan(base_config("digits", "runs"), rounds=4)
>>> LotteryMonitor(lottery_experiment(plan))
"""
from __future__ import annotations

import html

import ipywidgets as W

from ..present import RunView, describe
from ..present.lottery import LotteryPlan, NMPlan, PlannedExperiment, lottery_charts, n_m_charts
from ._live import LiveFigure
from ._monitor import ExperimentMonitor, waiting

CHART_WIDTH = 560
CHART_HEIGHT = 380


class _PlanMonitor(ExperimentMonitor, W.VBox):
    """A monitor of a ``PlannedExperiment``: a status line per planned run, two charts, a caption."""

    monitor_name = "monitor"
    plan_type: type = object
    titles = ("", "")
    header = ""
    starter = ""

    def __init__(self, experiment: PlannedExperiment, interval_ms: float = 1000, autostart: bool = True) -> None:
        if not isinstance(experiment, PlannedExperiment) or not isinstance(experiment.plan, self.plan_type):
            raise ValueError(f"{type(self).__name__} follows an experiment started by kdviz.present.lottery "
                             f"({self.starter}), got {type(experiment).__name__}")
        self.experiment, self.plan = experiment, experiment.plan
        self.views: dict[str, RunView] = {}
        self.drawn = False
        controls = self._run_controls((name for name, _ in self.plan.names()),
                                      tooltip="stop every run after its current step and cancel the runs not started")
        self.caption = W.HTML()
        self.charts = [LiveFigure(waiting(t, CHART_HEIGHT), width=CHART_WIDTH) for t in self.titles]
        super().__init__([W.HTML(self.header), controls, W.Box([c.widget for c in self.charts],
                          layout=W.Layout(flex_flow="row wrap")), self.caption, self.errors])
        self._start_polling(interval_ms, autostart, f"kdviz-{type(self).__name__.lower()}")


    def _tick(self) -> bool:
        done, changed = self._read_experiment()
        if changed or not self.drawn:
            self._draw()
            self.drawn = True
        self._update_status()
        return not done

    def _draw(self) -> None:
        raise NotImplementedError

    def _update_status(self) -> None:
        pending, blocked = set(self.experiment.pending), self.experiment.blocked
        for name, after in self.plan.names():
            view, shown = self.views.get(name), html.escape(name)
            if view is not None:
                text = describe(view.status(), name, epochs=getattr(view.config, "epochs", None))
                line = f"<b>{shown}</b> · {html.escape(text.state)} · {html.escape(text.accuracy or '')} {html.escape(text.detail)}"
            elif name in blocked:
                line = f"<b>{shown}</b> · will not start: {html.escape(blocked[name])}"
            else:
                line = f"<b>{shown}</b> · waiting for {html.escape(after or 'its turn')} to finish" \
                    if name in pending else f"<b>{shown}</b> · not started"
            self.status[name].value = line
        self._update_stop_button()

    def _can_stop(self) -> bool:
        return True


class LotteryMonitor(_PlanMonitor):
    """Live rounds of a lottery-ticket search: accuracy per round (ticket, re-init, dense) and mask overlap."""

    monitor_name = "lottery monitor"
    plan_type = LotteryPlan
    starter = "lottery_plan, then lottery_experiment"
    titles = ("Accuracy per round: waiting for round 1", "Mask overlap: waiting for the first evaluation")
    header = ("<b>Lottery-ticket monitor</b>: each round prunes the survivors of the round before and rewinds them; "
              "does the ticket keep the dense accuracy while the same mask re-initialised falls away?")

    def _draw(self) -> None:
        accuracy, overlap, caption = lottery_charts(self.plan, self.views)
        self.charts[0].show(accuracy)
        self.charts[1].show(overlap)
        self.caption.value = html.escape(caption)


class NMMonitor(_PlanMonitor):
    """Live N:M fine-tune beside unstructured pruning at the same sparsity, and the pattern's picture."""

    monitor_name = "N:M monitor"
    plan_type = NMPlan
    starter = "n_m_plan, then n_m_experiment"
    titles = ("N:M against unstructured: waiting for the fine-tunes", "The N:M pattern: waiting for a snapshot")
    header = ("<b>N:M monitor</b>: the dense network, then two fine-tunes from it at the same sparsity: the N:M "
              "pattern and unstructured magnitude pruning. What does the pattern cost?")

    def _draw(self) -> None:
        comparison, pattern, caption = n_m_charts(self.plan, self.views)
        self.charts[0].show(comparison)
        if pattern is not None:
            self.charts[1].show(pattern)
        self.caption.value = html.escape(caption)


__all__ = ["LotteryMonitor", "NMMonitor"]
