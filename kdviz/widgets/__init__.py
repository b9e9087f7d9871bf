"""Jupyter widgets (ipywidgets + plotly ``FigureWidget``) over the same figures and engine as the app.

* ``TemperatureExplorer(teacher, dataset)``: a temperature slider and sample picker, with the
  soft targets and their entropy (Hinton, Vinyals, Dean 2015, eq. 1).
* ``TrainingMonitor(job_or_jobs)``: live loss, accuracy and probe soft-target charts of background
  jobs, with Pause and Stop.
* ``RunComparison(runs)``: overlaid accuracy of several runs (live or from run folders).
* ``FSPMonitor``, ``PruningExplorer``/``PruningMonitor``, ``QuantizationExplorer``/``CentroidMonitor``,
  ``DeepCompressionMonitor``: the FSP, pruning and quantization labs' widgets.
* ``ReproductionMonitor()``: pick a paper's table (``kdviz.reproduce``), seeds and quick or full,
  Start, and watch the table fill in beside the paper's numbers with the runs' accuracy; reopen a
  saved result.
* ``KDDiagnosis(kd_run, scratch_run=None)``: why KD helped or not (per-class agreement and gain,
  dark knowledge received, teacher calibration/ECE, warnings, T x alpha surface).
* ``FamilyMonitor(experiment)``: "Which distillation?": every member of the distillation family
  (KD, DKD, RKD, logit matching, DML...) beside a scratch student, live, with each method's panel.
* ``GenerationsMonitor(chain)``: born-again generations or teacher assistant, live (Furlanello et al.
  2018; Mirzadeh et al. 2020).

Every chart is built by a ``kdviz.figures`` function and kept live by ``_live.LiveFigure``
(in-place, batched updates); see ``kdviz.widgets._live`` for the pattern new explorers follow,
and ``kdviz.widgets._monitor.RunsMonitor`` for what every live run monitor shares (status lines,
Stop, polling, error reporting, the accuracy chart).
"""
from __future__ import annotations

import importlib
from typing import Any

from ..methods import all_methods

# Widgets that belong to no single method; every other widget is listed by its method's spec
# (``MethodSpec.widgets``: exported name -> module of this package), so a new method's widget is
# exported without editing this file.
SHARED_WIDGETS = {"RunComparison": "comparison", "ReproductionMonitor": "reproduce", "KDDiagnosis": "diagnose",
                  "FamilyMonitor": "family", "GenerationsMonitor": "generations", "PTQExplorer": "ptq",
                  "SpeedMeter": "speed", "SweepMonitor": "sweep"}


def _widget_modules() -> dict[str, str]:
    found = dict(SHARED_WIDGETS)
    for spec in all_methods():
        found.update(spec.widgets)
    return found


_WIDGETS = _widget_modules()
__all__ = sorted(_WIDGETS)


def __getattr__(name: str) -> Any:
    """Import a widget's module on first use (``from kdviz.widgets import FSPMonitor``)."""
    if name not in _WIDGETS:
        raise AttributeError(f"module 'kdviz.widgets' has no attribute {name!r} (widgets: {', '.join(__all__)})")
    value = getattr(importlib.import_module(f"{__name__}.{_WIDGETS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
