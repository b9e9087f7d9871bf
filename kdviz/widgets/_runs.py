"""The widgets' runs: ``kdviz.present.RunView``, the one view of a run both UIs use.

A live ``Job``, a ``RunReader`` or a run folder path become a view with the run's method (label and
colour from its ``MethodSpec``); this module re-exports the presentation layer's functions and adds
``is_teacher`` (whether a view plays the teacher in its set, which the charts draw as a reference line).
"""
from __future__ import annotations

from ..methods import method_of
from ..present import RunView, as_run_view, last_eval, run_views, teacher_accuracy


def is_teacher(view: RunView) -> bool:
    """Whether ``view`` is a teacher: its method is the one ``method_of`` gives a run another run
    distils from (``run_views`` marks such runs; a cached teacher run is recognised by its config)."""
    return view.method is method_of(view.config, is_teacher=True)


__all__ = ["RunView", "as_run_view", "run_views", "teacher_accuracy", "last_eval", "is_teacher"]
