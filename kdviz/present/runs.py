"""One view of a run for both UIs, whatever it was given as: a live ``Job``, a ``RunReader`` or a
run folder path. A live job's ``LiveStore`` and a reopened folder's ``RunReader`` share a reading
API (``metrics_since``, ``snapshots_since``, ``reference``), so a live run and a reopened one render
the same way, and each refresh fetches only what is new ("everything since version k").

A view knows its method (``kdviz.methods.method_of`` on its config), hence its legend label and
colour: a cross-entropy run with a pruning hook is a pruned fine-tune everywhere, never the scratch baseline.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine import FINAL_STATES, Job, RunReader, Snapshot, open_run
from ..methods import MethodSpec, method_of


@dataclass
class RunView:
    """What has been read of one run so far, with its method, label and colour."""

    store: Any  # LiveStore or RunReader
    config: Any  # TrainConfig
    path: Path | None
    label: str
    method: MethodSpec
    job: Job | None = None
    metric_version: int = 0
    snapshot_version: int = 0
    steps: list[dict] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)

    @property
    def colour(self) -> str:
        return self.method.colour

    @property
    def role(self) -> str:
        """The method's legend label ("KD student", "pruned fine-tune"...)."""
        return self.method.label

    def refresh(self) -> bool:
        """Fetch new records and snapshots; True if anything arrived."""
        records, self.metric_version = self.store.metrics_since(self.metric_version)
        snaps, self.snapshot_version = self.store.snapshots_since(self.snapshot_version)
        for r in records:
            (self.evals if r.get("kind") == "eval" else self.steps).append(r)
        self.snapshots.extend(snaps)
        return bool(records or snaps)

    @property
    def records(self) -> list[dict]:
        """Step and evaluation records read so far, in the order they were logged."""
        return sorted(self.steps + self.evals, key=lambda r: r.get("seq", 0))

    def reference(self) -> dict:
        return self.store.reference()

    def status(self) -> dict[str, Any]:
        """State and progress as a dict (``state``, ``step``, ``total_steps``, ``epoch``, ``eta_s``...)."""
        if self.job is not None:
            return self.job.status().to_dict()
        if hasattr(self.store, "status"):
            return dict(self.store.status())
        return {"state": "unknown"}

    @property
    def done(self) -> bool:
        return self.status().get("state") in FINAL_STATES

    @property
    def controllable(self) -> bool:
        """Whether pause and stop reach a training thread (a reopened run has no manager, no thread)."""
        return self.job is not None and self.job.manager is not None

    def eval_series(self, key: str) -> tuple[list[float], list[float]]:
        """(epochs, values) of an evaluation metric, e.g. ``"test_acc"``."""
        pts = [(r["epoch"], r[key]) for r in self.evals if key in r]
        return [p[0] for p in pts], [p[1] for p in pts]

    def step_series(self, key: str) -> tuple[list[float], list[float]]:
        pts = [(r["epoch"], r[key]) for r in self.steps if key in r]
        return [p[0] for p in pts], [p[1] for p in pts]

    def latest_snapshot(self) -> Snapshot | None:
        return self.snapshots[-1] if self.snapshots else None

    def read(self, method: MethodSpec, snapshot: Snapshot | None = None, which: int = 0) -> Any:
        """``method``'s typed reading of a snapshot (default: the latest read so far)."""
        snap = snapshot or self.latest_snapshot()
        if snap is None:
            raise ValueError(f"run {self.label!r} has no snapshot yet")
        return method.read_snapshot(snap.arrays, self.config, which)


def run_label(config: Any, method: MethodSpec, folder_name: str = "") -> str:
    """A short legend label: the method's label for this config and the folder's time stamp."""
    stamp = f" · {folder_name[:15]}" if folder_name else ""
    return f"{method.run_label(config)}{stamp}"


def as_run_view(run: Any, label: str | None = None, is_teacher: bool = False) -> RunView:
    """A ``RunView`` of a ``Job``, a ``RunReader`` or a run folder path (str or ``os.PathLike``).

    A path that is not a run folder is a ``ValueError`` naming it."""
    if isinstance(run, RunView):
        return run
    if isinstance(run, Job):
        store, config, path, job = run.store, run.config, Path(run.path), run
    elif isinstance(run, RunReader):
        store, config, path, job = run, run.config, Path(run.path), None
    elif isinstance(run, (str, os.PathLike)):
        path = Path(run).expanduser()
        if not path.exists():
            raise ValueError(f"run folder {str(path)!r} does not exist")
        if not (path / "config.json").is_file():
            raise ValueError(f"{str(path)!r} is not a run folder (no config.json)")
        store = open_run(path)
        config, job = store.config, None
    else:
        raise TypeError(f"a run must be a Job, a RunReader or a run folder path, got {type(run).__name__}")
    method = method_of(config, is_teacher=is_teacher)
    return RunView(store, config, path, label or config.name or method.run_label(config), method, job)


def run_views(runs: Any) -> list[RunView]:
    """Views of one run, a list of runs, or a ``{label: run}`` dict; labels made unique, and a run
    that another run of the set uses as its teacher is the teacher."""
    if isinstance(runs, Mapping):
        views = [as_run_view(run, str(label)) for label, run in runs.items()]
    elif isinstance(runs, (list, tuple)):
        views = [as_run_view(run) for run in runs]
    else:
        views = [as_run_view(runs)]
    if not views:
        raise ValueError("give at least one run (a Job, a RunReader or a run folder path)")
    teacher_paths = {_resolved(v.config.teacher) for v in views if getattr(v.config, "teacher", None)}
    for view in views:
        if view.path is not None and _resolved(view.path) in teacher_paths:
            view.method = method_of(view.config, is_teacher=True)
    _make_unique(views)
    return views


def teacher_accuracy(views: Iterable[RunView]) -> float | None:
    """The last test accuracy of the teacher the runs distil from (read from its run folder)."""
    views = list(views)
    teacher_paths = {_resolved(v.config.teacher) for v in views if getattr(v.config, "teacher", None)}
    for view in views:
        if view.path is not None and _resolved(view.path) in teacher_paths:
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
