"""The presentation layer: what both UIs show, computed once, with no UI toolkit imported.

The Streamlit pages (``kdviz.app``) and the Jupyter widgets (``kdviz.widgets``) are thin renderers
of these: ``RunView`` (a live or reopened run, read incrementally, with its method's label and
colour), ``describe`` (a job's status in words), ``Experiment`` (named jobs and stages, from the
engine), ``shared_run`` (a teacher or baseline trained once per process and reused from disk).
It joins ``kdviz.methods`` (what a run is) and ``kdviz.figures`` (how it is drawn).
"""
from ..engine.experiment import Experiment, Stage
from .runs import RunView, as_run_view, last_eval, run_label, run_views, teacher_accuracy
from .shared_runs import shared_run
from .status import StatusText, describe, format_duration, readiness

__all__ = [
    "Experiment", "RunView", "Stage", "StatusText", "as_run_view", "describe", "format_duration", "last_eval",
    "readiness", "run_label", "run_views", "shared_run", "teacher_accuracy",
]
