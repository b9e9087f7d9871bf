"""One view of a run for the widgets, whatever it was given as: a live ``Job``, a ``RunReader`` or
a run folder path. Both expose the ``LiveStore`` reading API (``metrics_since``, ``metrics``,
``latest_snapshot``, ``reference``), so a live run and a reopened one render the same way.

Roles pick colours (``kdviz.figures.theme.ROLE_COLORS``): a run that another run in the same set
uses as its teacher (or whose name starts with "teacher") is the teacher; method "kd" is a KD
student (Hinton et al. 2015); method "ce" otherwise is a student trained from scratch.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class RunView:
    """A run as the widgets see it: a label, a role, its reader (``store``) and, if live, its job."""

    label: str
    role: str
    store: Any  # LiveStore or RunReader
    config: Any  # TrainConfig
    path: Path | None
    job: Any = None  # kdviz.engine.Job when the run is (or was) trained in this process

    def status(self) -> dict[str, Any]:
        """State and progress as a dict (``state``, ``step``, ``total_steps``, ``epoch``, ``eta_s``...)."""
        if self.job is not None:
            return self.job.status().to_dict()
        if hasattr(self.store, "status"):
            return dict(self.store.status())
        return {"state": "unknown"}

    @property
    def done(self) -> bool:
        from ..engine import FINAL_STATES

        return self.status().get("state") in FINAL_STATES

    @property
    def controllable(self) -> bool:
        """Whether pause and stop reach a training thread (a reopened run has no manager, no thread)."""
        return self.job is not None and self.job.manager is not None


def as_run_view(run: Any, label: str | None = None) -> RunView:
    """A ``RunView`` of a ``Job``, a ``RunReader`` or a run folder path (str or ``os.PathLike``)."""
    from ..engine import Job, RunReader, open_run

    if isinstance(run, Job):
        return RunView(label or run.config.display_name(), "", run.store, run.config, Path(run.path), job=run)
    if isinstance(run, RunReader):
        return RunView(label or run.config.display_name(), "", run, run.config, Path(run.path))
    if isinstance(run, (str, os.PathLike)):
        path = Path(run)
        if not (path / "config.json").is_file():
            raise ValueError(f"{path} is not a run folder (no config.json)")
        reader = open_run(path)
        return RunView(label or reader.config.display_name(), "", reader, reader.config, path)
    raise TypeError(f"a run must be a Job, a RunReader or a run folder path, got {type(run).__name__}")


def run_views(runs: Any) -> list[RunView]:
    """Views of one run, a list of runs, or a ``{label: run}`` dict; labels made unique, roles set."""
    if isinstance(runs, Mapping):
        views = [as_run_view(run, str(label)) for label, run in runs.items()]
    elif isinstance(runs, (list, tuple)):
        views = [as_run_view(run) for run in runs]
    else:
        views = [as_run_view(runs)]
    if not views:
        raise ValueError("give at least one run (a Job, a RunReader or a run folder path)")
    _make_unique([v for v in views])
    teacher_paths = {_resolved(v.config.teacher) for v in views if getattr(v.config, "teacher", None)}
    for view in views:
        view.role = run_role(view.config, is_teacher=view.path is not None and _resolved(view.path) in teacher_paths)
    return views


def run_role(config: Any, is_teacher: bool = False) -> str:
    """The colour role of a run: "teacher", "kd student", "scratch student" or "student"."""
    if is_teacher or (config.method == "ce" and str(config.name).lower().startswith("teacher")):
        return "teacher"
    return {"kd": "kd student", "ce": "scratch student"}.get(config.method, "student")


def teacher_accuracy(views: Iterable[RunView]) -> float | None:
    """The last test accuracy of the teacher the runs distil from (read from its run folder)."""
    from ..engine import open_run

    for view in views:
        if view.role == "teacher":
            return last_eval(view.store.metrics("eval"), "test_acc")
    for view in views:
        path = getattr(view.config, "teacher", None)
        if path and (Path(path) / "config.json").is_file():
            return last_eval(open_run(path).metrics("eval"), "test_acc")
    return None


def last_eval(records: Iterable[Mapping[str, Any]], key: str) -> float | None:
    """The last value of ``key`` among evaluation records (None if there is none yet)."""
    values = [r[key] for r in records if r.get("kind") == "eval" and key in r]
    return float(values[-1]) if values else None


def _resolved(path: Any) -> str:
    return str(Path(path).resolve())


def _make_unique(views: list[RunView]) -> None:
    seen: dict[str, int] = {}
    for view in views:
        n = seen.get(view.label, 0)
        seen[view.label] = n + 1
        if n:
            view.label = f"{view.label} ({n + 1})"


__all__ = ["RunView", "as_run_view", "run_views", "run_role", "teacher_accuracy", "last_eval"]
