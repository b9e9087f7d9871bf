"""``SpecialistsMonitor``: the specialists pipeline (Hinton, Vinyals, Dean 2015, section 5) live in a notebook.

``kdviz.present.specialists`` plans and starts the pipeline (``specialists_experiment``): a generalist,
the confusable subsets found from the covariance of its predictions (section 5.2), one specialist per
subset started from its weights, and the combination at test time (section 5.3). This monitor shows
every stage's state (a stage that is not a run says what it waits for), the runs' accuracy as they
train, the confusable-subset matrix once the generalist has finished, the accuracy gain on the covered
classes once the specialists have, and the caption that reads the numbers, with a Stop button. A
``_live.Poller`` thread polls the experiment, reads the runs and redraws, so the cell returns at once.
"""
from __future__ import annotations

import html

import ipywidgets as W

from ..present import RunView, describe
from ..present.specialists import SpecialistsExperiment, specialists_caption, specialists_figures, stage_lines
from ._live import LiveFigure
from ._monitor import CHART_WIDTH, ExperimentMonitor, row, waiting

CHART_HEIGHT = 380


class SpecialistsMonitor(ExperimentMonitor, W.VBox):
    """Live stages, accuracy, confusable subsets and gain of a ``SpecialistsExperiment``.

    ``interval_ms`` is the poll and redraw interval; with ``autostart=False`` nothing polls until
    ``refresh()`` or ``wait()``."""

    monitor_name = "specialists monitor"

    def __init__(self, experiment: SpecialistsExperiment, interval_ms: float = 1000, autostart: bool = True) -> None:
        if not isinstance(experiment, SpecialistsExperiment):
            raise ValueError("SpecialistsMonitor follows a pipeline started by "
                             f"kdviz.present.specialists.specialists_experiment, got {type(experiment).__name__}")
        self.experiment = experiment
        self.views: dict[str, RunView] = {}
        controls = self._run_controls([name for name, _, _ in stage_lines(experiment)],
                                      tooltip="stop every run after its current step and cancel the specialists not started")
        self.caption = W.HTML()
        self.accuracy_chart = LiveFigure(waiting("Test accuracy: waiting for the first evaluation", CHART_HEIGHT),
                                         width=CHART_WIDTH)
        self.subsets_chart = LiveFigure(waiting("Confusable subsets: waiting for the generalist", CHART_HEIGHT),
                                        width=CHART_WIDTH)
        self.gain_chart = LiveFigure(waiting("Gain on the covered classes: waiting for the specialists", CHART_HEIGHT),
                                     width=CHART_WIDTH)
        header = W.HTML("<b>Specialists monitor</b>: a generalist, specialists for the classes it confuses (each with "
                        "a dustbin class), and the two combined at test time.")
        super().__init__([header, controls, row(self.accuracy_chart.widget, self.subsets_chart.widget,
                                                self.gain_chart.widget), self.caption, self.errors])
        self._drawn: set[str] = set()
        self._start_polling(interval_ms, autostart, "kdviz-specialists-monitor")


    def _tick(self) -> bool:
        done, changed = self._read_experiment()
        if changed or done or not self._drawn:
            self._draw()
        self._update_status()
        return not done

    def _draw(self) -> None:
        figures = specialists_figures(self.experiment, self.views)
        if any(view.evals for view in self.views.values()):
            self.accuracy_chart.show(figures["accuracy"])
        for key, chart in (("subsets", self.subsets_chart), ("gain", self.gain_chart)):
            if key in figures and key not in self._drawn:  # drawn once: neither changes after it appears
                chart.show(figures[key])
                self._drawn.add(key)
        self._drawn.add("accuracy")
        self.caption.value = html.escape(specialists_caption(self.experiment))

    def _update_status(self) -> None:
        for name, job, text in stage_lines(self.experiment):
            view = self.views.get(name)
            if view is not None:
                line = describe(view.status(), name, epochs=getattr(view.config, "epochs", None))
                self.status[name].value = (f"<b>{html.escape(name)}</b> · {html.escape(line.state)} · "
                                           f"{html.escape(line.accuracy or '')} {html.escape(line.detail)}")
            else:
                self.status[name].value = f"<b>{html.escape(name)}</b> · {html.escape(text)}"
        self._update_stop_button()

    def _can_stop(self) -> bool:
        return True  # the experiment stops its running runs and cancels the stages not started


__all__ = ["SpecialistsMonitor"]
