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
from typing import Any

import ipywidgets as W

from ..figures.dml import mutual_accuracy_curve, mutual_kl_curve
from ..methods.dml import DML, dml_options
from ..present.family_dml import accuracy_caption, dml_curves, kl_caption
from ._live import LiveFigure
from ._monitor import CHART_WIDTH, RunsMonitor, column, row, waiting


class DMLMonitor(RunsMonitor, W.VBox):
    """Live accuracy of both students of a DML run, their KL terms, and the accuracy of the runs beside it.

    ``job_or_jobs``: an ``Experiment``, a ``Job``, ``RunReader`` or run folder, or a list or
    ``{label: run}`` dict of them; one of them must be a DML run (its config has the method's hook).
    ``interval_ms`` is the poll and redraw interval.
    """

    monitor_name = "DML monitor"

    def __init__(self, job_or_jobs: Any, interval_ms: float = 1000, autostart: bool = True) -> None:
        self._follow(job_or_jobs)
        self.student = self._student(DML, "a deep-mutual-learning run")
        self.options = dml_options(self.student.config)
        controls = self._run_controls()
        self.mutual_chart = LiveFigure(waiting("Both students: waiting for the first evaluation"), width=CHART_WIDTH)
        self.kl_chart = LiveFigure(waiting("KL terms: waiting for the first evaluation"), width=CHART_WIDTH)
        self.accuracy_chart = LiveFigure(waiting("Test accuracy: waiting for the first evaluation"), width=CHART_WIDTH)
        self.mutual_caption, self.kl_caption = W.HTML(), W.HTML()
        header = W.HTML("<b>Deep mutual learning monitor</b>: two students learn together from scratch, no teacher; "
                        "each minimises its cross-entropy plus KL(p<sub>other</sub> ‖ p<sub>self</sub>), the other's "
                        "predictions held fixed (Zhang et al. 2018, eqs. 3-4). The peer is drawn dashed.")
        super().__init__([header, controls,
                          row(column(self.mutual_chart, self.mutual_caption), column(self.kl_chart, self.kl_caption)),
                          self.accuracy_chart.widget, self.errors])
        self._start_polling(interval_ms, autostart, "kdviz-dml-monitor")

    def _tick(self) -> bool:
        done, changed = self._read_runs()
        if any(changed.values()):
            self._draw()
        self._update_status()
        return not done

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
        self._draw_accuracy()


__all__ = ["DMLMonitor"]
