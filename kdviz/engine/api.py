"""The engine's small public API: start a run, reopen one, resume one, reuse a cached teacher.

>>> job = start(TrainConfig(dataset="digits", model="mlp", epochs=2))   # returns at once
>>> job.status().state                                                  # doctest: +SKIP
'running'
>>> records, version = job.store.metrics_since(0)                       # doctest: +SKIP
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from .config import TrainConfig
from .job import Job
from .manager import JobManager, default_manager
from .run_folder import atomic_write_bytes, read_config
from .run_reader import RunReader, list_runs, read_status


def _as_config(config: TrainConfig | dict[str, Any]) -> TrainConfig:
    if isinstance(config, TrainConfig):
        return config
    if isinstance(config, dict):
        return TrainConfig.from_dict(config)
    raise TypeError(f"config must be a TrainConfig or a dict, got {type(config).__name__}")


def start(config: TrainConfig | dict[str, Any], manager: JobManager | None = None) -> Job:
    """Validate ``config``, create its run folder and start (or queue) the job; returns at once."""
    config = _as_config(config).validate()
    for field in ("teacher", "init_from"):
        path = getattr(config, field)
        if path is not None and not (Path(path) / "config.json").is_file():
            raise ValueError(f"{field} {path!r} is not a run folder (no config.json)")
    manager = manager or default_manager()
    return manager.submit(Job(config, manager))


def open_run(path: str | os.PathLike) -> RunReader:
    """A finished, stopped or still-running run folder, read with the live store's API."""
    return RunReader(path)


STALE_AFTER_S = 60.0  # a live job rewrites status.json every second while running, every few while paused


def resume(path: str | os.PathLike, manager: JobManager | None = None, epochs: int | None = None, force: bool = False) -> Job:
    """Continue a run from its last checkpoint, in the same folder (``epochs`` may extend it).

    Works for stopped, diverged and failed runs, and for runs whose process was killed (their
    status.json says "running" but has not been updated for a minute; ``force=True`` skips that wait).
    """
    path = Path(path)
    config = read_config(path)
    status = read_status(path)
    state = status.get("state")
    age = time.time() - float(status.get("updated", 0.0))
    if state in ("running", "paused") and age < STALE_AFTER_S and not force:
        raise ValueError(f"run {path} is {state} (status updated {age:.0f} s ago); stop it first. If its process "
                         f"was killed, wait {STALE_AFTER_S:.0f} s or pass force=True")
    if state == "finished" and epochs is None:
        raise ValueError(f"run {path} already finished; pass epochs= (more than {config.epochs}) to train longer")
    if epochs is not None:
        config.epochs = int(epochs)
        atomic_write_bytes(path / "config.json", config.validate().to_json().encode())
    manager = manager or default_manager()
    return manager.submit(Job(config, manager, resume_path=path))


def find_finished_run(config: TrainConfig, runs_root: str | os.PathLike | None = None) -> Path | None:
    """The newest finished run under ``runs_root`` that trained exactly ``config`` (same identity).

    A run whose checkpoint no longer fits the model (a run saved before a model's layers changed)
    or cannot be read is passed over, so a cached teacher is retrained rather than failing later.
    """
    from .teacher_cache import load_trained_model

    identity = config.identity()
    for row in list_runs(runs_root or config.runs_root):
        if row["state"] != "finished":
            continue
        try:
            if read_config(row["path"]).identity() != identity:
                continue
            load_trained_model(row["path"])
        except (ValueError, TypeError, OSError):
            continue
        return Path(row["path"])
    return None


def train_teacher_cached(dataset: str = "digits", model: str = "mlp", manager: JobManager | None = None, **options: Any) -> Job:
    """A teacher run (method "ce"): reuse a finished run with the same config when one exists under
    ``runs_root``, else join the same teacher already training in ``manager``, else start it.

    ``options`` are further ``TrainConfig`` fields (model_options, jitter_px, epochs, lr, ...).
    The returned job's ``path`` is what a student's ``teacher`` field takes.
    """
    options.setdefault("name", f"teacher-{model}-{dataset}")
    config = TrainConfig(dataset=dataset, model=model, method=options.pop("method", "ce"), **options).validate()
    found = find_finished_run(config)
    if found is not None:
        return Job.reopened(found)
    manager = manager or default_manager()
    active = manager.find_active(config.identity())
    return active if active is not None else start(config, manager)
