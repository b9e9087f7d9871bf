"""A sweep's record, ``<runs root>/sweeps/<name>-<yyyymmdd-hhmmss>/sweep.json``.

It names every planned trial (its swept values and its config), and for each trial that started: its
run folder (relative to the sweep folder, so a runs root moves with its sweeps), its state, each
evaluation's step and test accuracy as Ray Tune received them, and whether ASHA stopped it. The runner
rewrites the file atomically (temp file + rename, ``engine.run_folder.atomic_write_json``) after every
result, so a page that reopens it mid-sweep sees the heatmap so far; ``load_sweep`` reopens it.
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..engine.run_folder import atomic_write_json
from .spec import PlannedTrial

SWEEP_FILE = "sweep.json"
SWEEP_FORMAT = 1
FOLDER = "sweeps"  # under the runs root
TRIAL_STATES = ("pending", "running", "finished", "stopped", "failed")


@dataclass
class TrialRecord:
    """One trial as the sweep saw it. ``history`` holds ``[step, test_acc]`` per evaluation reported."""

    key: str
    values: dict
    config: dict
    state: str = "pending"
    run: str = ""  # its kdviz run folder (absolute in memory, relative to the sweep folder on disk)
    history: list = field(default_factory=list)
    last: dict = field(default_factory=dict)  # the last evaluation record (test_acc, train_acc, step, ...)
    stopped_by_scheduler: bool = False
    message: str = ""

    @property
    def test_acc(self) -> float | None:
        return self.last.get("test_acc")


@dataclass
class SweepRecord:
    """The sweep: its spec, its trials (planned order) and its state ("running", then "finished",
    "stopped" or "failed"). Updated from Ray Tune's callback thread; ``to_dict`` takes the lock."""

    name: str
    spec: dict
    trials: dict  # key -> TrialRecord, in planned order
    state: str = "running"
    message: str = ""
    started: str = ""
    wall_s: float = 0.0
    machine: str = ""
    cluster: str = ""  # "local (N CPUs)" or the Ray address it joined
    path: Path | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    @classmethod
    def planned(cls, name: str, spec: dict, trials: list[PlannedTrial], path: Path | None = None) -> "SweepRecord":
        records = {t.key: TrialRecord(t.key, dict(t.values), dict(t.config)) for t in trials}
        return cls(name=name, spec=spec, trials=records, started=time.strftime("%Y-%m-%d %H:%M:%S"), path=path)

    def update_trial(self, key: str, **changes: Any) -> None:
        """Change a trial's fields under the lock (``history_point=[step, acc]`` appends to its history)."""
        with self._lock:
            trial = self.trials[key]
            point = changes.pop("history_point", None)
            if point is not None:
                trial.history.append(list(point))
            for name, value in changes.items():
                setattr(trial, name, value)

    def counts(self) -> dict[str, int]:
        with self._lock:
            counts = dict.fromkeys(TRIAL_STATES, 0)
            for trial in self.trials.values():
                counts[trial.state] = counts.get(trial.state, 0) + 1
            return counts

    def to_dict(self, relative_to: Path | None = None) -> dict[str, Any]:
        """JSON data; with ``relative_to`` (the sweep folder) run folders are written relative to it."""
        with self._lock:
            trials = []
            for trial in self.trials.values():
                row = asdict(trial)
                if row["run"] and relative_to is not None:
                    row["run"] = _relative(row["run"], relative_to)
                trials.append(row)
            return {"format": SWEEP_FORMAT, "name": self.name, "spec": self.spec, "state": self.state,
                    "message": self.message, "started": self.started, "wall_s": round(self.wall_s, 2),
                    "machine": self.machine, "cluster": self.cluster, "trials": trials}

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path | None = None) -> "SweepRecord":
        found = data.get("format") if isinstance(data, dict) else None
        if found != SWEEP_FORMAT:
            raise ValueError(f"{path or 'file'} is not a kdviz sweep record (format {found!r})")
        trials = {}
        for row in data.get("trials", []):
            trial = TrialRecord(**row)
            if trial.run and path is not None and not os.path.isabs(trial.run):
                trial.run = str((path / trial.run).resolve())
            trials[trial.key] = trial
        names = ("name", "spec", "state", "message", "started", "wall_s", "machine", "cluster")
        return cls(**{n: data[n] for n in names if n in data}, trials=trials, path=path)

    def save(self) -> None:
        """Rewrite ``sweep.json`` atomically (nothing when the record has no folder)."""
        if self.path is None:
            return
        with self._lock:
            atomic_write_json(self.path / SWEEP_FILE, self.to_dict(relative_to=self.path))


def _relative(run: str, folder: Path) -> str:
    try:
        return os.path.relpath(run, folder)
    except ValueError:  # another drive (Windows)
        return run


def new_sweep_folder(runs_root: str | os.PathLike, name: str) -> Path:
    """``<runs root>/sweeps/<name>-<yyyymmdd-hhmmss>`` (``-2``, ``-3`` when it exists), created."""
    safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in name).strip("-") or "sweep"
    base = Path(runs_root) / FOLDER / f"{safe}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while True:
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            n += 1
            path = base.with_name(f"{base.name}-{n}")


def load_sweep(path: str | os.PathLike) -> SweepRecord:
    """Reopen a sweep from its folder or its ``sweep.json``; a ``ValueError`` names what is wrong."""
    path = Path(path)
    file = path / SWEEP_FILE if path.is_dir() else path
    if not file.is_file():
        raise ValueError(f"no {SWEEP_FILE} in {path}")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{file} cannot be read as a sweep record: {exc}") from None
    try:
        return SweepRecord.from_dict(data, path=file.parent.resolve())
    except TypeError as exc:
        raise ValueError(f"{file} is not a kdviz sweep record: {exc}") from None


def saved_sweeps(runs_root: str | os.PathLike) -> list[tuple[Path, str]]:
    """(folder, label) of each readable sweep under ``runs_root/sweeps``, newest first."""
    root = Path(runs_root) / FOLDER
    if not root.is_dir():
        return []
    found = []
    for folder in sorted((p for p in root.iterdir() if (p / SWEEP_FILE).is_file()), reverse=True):
        try:
            record = load_sweep(folder)
        except ValueError:
            continue
        found.append((folder, f"{folder.name} ({len(record.trials)} trials, started {record.started})"))
    return found
