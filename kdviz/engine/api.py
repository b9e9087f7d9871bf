"""The engine's small public API: start a run, reopen one, resume one, reuse a cached teacher.

>>> job = start(TrainConfig(dataset="digits", model="mlp", epochs=2))   # returns at once
>>> job.status().state                                                  # doctest: +SKIP
'running'
>>> records, version = job.store.metrics_since(0)                       # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from .config import TrainConfig
from .job import Job
from .manager import JobManager, default_manager
from .run_folder import atomic_write_bytes, read_config
from .run_reader import RunReader, list_runs


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


def resume(path: str | os.PathLike, manager: JobManager | None = None, epochs: int | None = None, force: bool = False) -> Job:
    """Continue a run from its last checkpoint, in the same folder (``epochs`` may extend it).

    Works for stopped, diverged, failed and interrupted runs (a killed process: its writer lock is
    free; one killed before its first checkpoint starts over). Everything is checked first
    (``resume.plan_resume``): a refused resume raises ``ValueError`` and leaves the folder exactly as
    it was. ``force=True`` only matters for runs written before run folders had a lock. The job's
    ``resume_plan`` says where it continues from and how many records after that were dropped.
    """
    from .resume import plan_resume

    plan = plan_resume(path, epochs=epochs, force=force)
    manager = manager or default_manager()
    job = Job(plan.config, manager, resume_path=plan.path)  # takes the folder's writer lock first
    try:
        if plan.config_changed:
            atomic_write_bytes(plan.path / "config.json", plan.config.to_json().encode())
    except BaseException:
        job._folder.release()
        raise
    job.resume_plan = plan
    return manager.submit(job)


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


_TEACHER_LOCK = threading.Lock()
_TEACHERS_IN_FLIGHT: dict[str, Job] = {}  # identity (JSON) -> the job training it, from any manager


def train_teacher_cached(dataset: str = "digits", model: str = "mlp", manager: JobManager | None = None, **options: Any) -> Job:
    """A teacher run (method "ce"): reuse a finished run with the same config when one exists under
    ``runs_root``, else join the same teacher already training (in any manager), else start it.

    ``options`` are further ``TrainConfig`` fields (model_options, jitter_px, epochs, lr, ...).
    The returned job's ``path`` is what a student's ``teacher`` field takes. The look-up and the start
    happen under one lock, so callers in several threads (sessions, pages, widgets) asking at once get
    one job, never duplicate teachers (issue 13, item 13).
    """
    options.setdefault("name", f"teacher-{model}-{dataset}")
    config = TrainConfig(dataset=dataset, model=model, method=options.pop("method", "ce"), **options).validate()
    key = json.dumps(config.identity(), sort_keys=True, default=str)
    with _TEACHER_LOCK:
        for ended in [k for k, job in _TEACHERS_IN_FLIGHT.items() if job.done]:
            del _TEACHERS_IN_FLIGHT[ended]  # a finished one is found on disk; a failed one starts again
        if key in _TEACHERS_IN_FLIGHT:
            return _TEACHERS_IN_FLIGHT[key]
        found = find_finished_run(config)
        if found is not None:
            return Job.reopened(found)
        manager = manager or default_manager()
        job = manager.find_active(config.identity()) or start(config, manager)
        _TEACHERS_IN_FLIGHT[key] = job
        return job
