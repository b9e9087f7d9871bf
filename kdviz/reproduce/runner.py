"""Run a reproduction through the engine and keep its table in a folder of its own.

``run_reproduction("hinton-mnist", seeds=3, quick=True)`` plans the runs, starts them as background
jobs of one ``Experiment`` (a reused teacher is adopted, students that need it start once it has
finished), waits, and after every run that ends rewrites
``<runs root>/reproductions/<name>-<yyyymmdd-hhmmss>/result.json`` (atomically: temp file + rename,
``engine.run_folder.atomic_write_json``) with the table so far, the paper's numbers beside ours.
``on_progress(result)`` is called at the same moments, so a page can show the table filling in.
``load_result(path)`` reopens a result (a folder or its result.json). Each training run keeps its
ordinary run folder under the runs root; the result names them. ``start_reproduction`` returns a
:class:`Reproducing` at once instead, for a UI that polls (and draws ``jobs`` live) on its own clock.
"""
from __future__ import annotations

import json
import os
import platform
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ..engine import JobManager, TrainConfig, train_teacher_cached
from ..engine.experiment import Experiment
from ..engine.manager import available_cores
from ..engine.run_folder import atomic_write_json
from ..engine.config import DEVICES
from ..engine.setup import dataset_for, resolve_device
from ..paths import data_root as default_data_root
from ..paths import runs_root as default_runs_root
from .base import REPRODUCTIONS, FinishedRun, PlannedRun, Reproduction, Row, seed_list

_MANAGERS: dict[str, JobManager] = {}
RESULT_FILE = "result.json"
RESULT_FORMAT = 1
FOLDER = "reproductions"  # under the runs root
PROGRESS_POLL_S = 0.5


@dataclass
class ReproductionResult:
    """A reproduction's table (``rows``) and what produced it; ``state`` is "running" until every run
    has ended, then "finished" (every run finished), "failed" (some did not) or "stopped"."""

    name: str
    title: str
    citation: str
    seeds: list[int]
    quick: bool
    settings: str
    rows: list[Row]
    state: str = "running"
    started: str = ""
    wall_s: float = 0.0
    runs: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> {"path", "state", "message"}, once ended
    planned: list[str] = field(default_factory=list)  # every planned run's key
    machine: str = ""  # cores, load, torch version when it started: wall times depend on them
    path: Path | None = None  # the result's folder

    def to_dict(self, relative_to: Path | None = None) -> dict[str, Any]:
        """The result as JSON data; with ``relative_to`` (the result's folder) run folders are written
        relative to it, so the runs root can move with its results."""
        where = (lambda p: _relative_path(p, relative_to)) if relative_to is not None else str
        runs = {key: {**run, "path": where(run["path"]) if run.get("path") else ""} for key, run in self.runs.items()}
        rows = [{**row.to_dict(), "runs": [where(p) for p in row.runs]} for row in self.rows]
        return {"format": RESULT_FORMAT, "name": self.name, "title": self.title, "citation": self.citation,
                "seeds": self.seeds, "quick": self.quick, "settings": self.settings, "state": self.state,
                "started": self.started, "wall_s": self.wall_s, "runs": runs, "planned": self.planned,
                "machine": self.machine, "rows": rows}

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path | None = None) -> "ReproductionResult":
        """The result in ``data``; relative run folders are resolved against ``path`` (the result's folder)."""
        if data.get("format") != RESULT_FORMAT:
            raise ValueError(f"{path or 'result'} is not a kdviz reproduction result (format {data.get('format')!r})")
        names = ("name", "title", "citation", "seeds", "quick", "settings", "state", "started", "wall_s", "runs", "planned")
        result = cls(**{k: data[k] for k in names}, rows=[Row.from_dict(r) for r in data["rows"]],
                     machine=str(data.get("machine", "")), path=path)
        if path is not None:
            resolve = lambda p: str(Path(path, p).resolve()) if p and not Path(p).is_absolute() else p  # noqa: E731
            result.runs = {key: {**run, "path": resolve(run.get("path", ""))} for key, run in result.runs.items()}
            for row in result.rows:
                row.runs = [resolve(p) for p in row.runs]
        return result

    def row(self, label: str) -> Row:
        for row in self.rows:
            if row.label == label:
                return row
        raise KeyError(f"no row {label!r} (rows: {', '.join(r.label for r in self.rows)})")


def _relative_path(run: str, folder: Path) -> str:
    """``run`` relative to ``folder`` (``../../20261129-...-teacher``); as given where no relative path exists."""
    try:
        return os.path.relpath(Path(run).resolve(), Path(folder).resolve())
    except ValueError:  # another drive (Windows)
        return str(run)


def write_result(result: ReproductionResult) -> Path:
    """Write ``result.json`` into the result's folder, atomically; its path."""
    target = Path(result.path) / RESULT_FILE
    atomic_write_json(target, result.to_dict(relative_to=Path(result.path)))
    return target


def load_result(path: str | os.PathLike) -> ReproductionResult:
    """Reopen a result written by :func:`run_reproduction` (its folder or its result.json)."""
    path = Path(path)
    file = path / RESULT_FILE if path.is_dir() else path
    if not file.is_file():
        raise ValueError(f"{path} holds no reproduction result ({RESULT_FILE} is missing)")
    try:
        data = json.loads(file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{file} is damaged (not valid JSON: {exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{file} is not a kdviz reproduction result")
    return ReproductionResult.from_dict(data, file.parent)


def reproducible_managers() -> tuple[JobManager, JobManager]:
    """The process's two job managers for reproductions: reused runs (teachers, baselines) one at a
    time with every core, then the other runs as many at once as there are cores, one thread each.

    A rerun then gives the same numbers. Two things would break that: a job's thread count following
    how many jobs run (a different count sums floats in another order: in a hinton-mnist rerun where a
    student's thread count changed whenever another run ended, seeds 0 and 2 ended at 78 and 75
    errors instead of 77 and 77),
    so the other runs keep one thread each however many run; and dropout drawing from torch's
    global generator, which every job that starts re-seeds (``engine/setup.py``), so a teacher with
    dropout trains while no other job starts."""
    if not _MANAGERS:
        cores = available_cores()
        _MANAGERS["reused"] = JobManager(max_concurrent=1, cpu_threads=cores)
        # one thread per run, always; one run more than cores, so that when an odd number of long runs
        # is left (three distilled students on two cores) they share the cores instead of one
        # finishing alone on a single core (hinton-mnist, 3 seeds: 27.5 instead of 34.4 minutes)
        _MANAGERS["runs"] = JobManager(max_concurrent=cores + 1, cpu_threads=1)
    return _MANAGERS["reused"], _MANAGERS["runs"]


def load_note() -> str:
    """``"load average 1.9"`` (the last minute's), or "" where the system has none."""
    return f"load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""


def machine_note() -> str:
    """``"2 cores, load average 1.9 at the start, torch 2.13.0+cpu, Python 3.11.2"``: a wall time
    means little without the load it ran under (the end's load is added when the runs end)."""
    load = f"{load_note()} at the start, " if load_note() else ""
    return f"{available_cores()} cores, {load}torch {torch.__version__}, Python {platform.python_version()}"


def result_folder(runs_root: str | os.PathLike, name: str) -> Path:
    """A new ``<runs_root>/reproductions/<name>-<yyyymmdd-hhmmss>`` (numbered if that one exists)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "reproduction"
    base = Path(runs_root) / FOLDER / f"{safe}-{time.strftime('%Y%m%d-%H%M%S')}"
    base.parent.mkdir(parents=True, exist_ok=True)
    path, n = base, 1
    while True:
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1
            path = base.with_name(f"{base.name}-{n}")


def check_data(dataset: str, data_root: str | None) -> None:
    """Load ``dataset`` once (the jobs share the copy) so a missing folder is one clear error up front."""
    try:
        dataset_for(TrainConfig(dataset=dataset, data_root=data_root))
    except (OSError, ValueError) as exc:
        where = f"in {data_root}" if data_root else "(no --data-root given and KDVIZ_DATA is not set)"
        raise ValueError(f"the {dataset} files are not found {where}: pass --data-root a folder holding its four "
                         f"IDX files, or set KDVIZ_DATA ({' '.join(str(exc).split())[:200]})") from None


def with_roots(plan: Iterable[PlannedRun], runs_root: str, data_root: str | None) -> list[PlannedRun]:
    """The plan with every config's ``runs_root`` and ``data_root`` set."""
    return [replace(run, config=replace(run.config, runs_root=runs_root, data_root=data_root)) for run in plan]


def with_device(plan: Iterable[PlannedRun], device: str) -> list[PlannedRun]:
    """The plan with every config's ``device`` set: ``"auto"`` (every plan's default: the GPU when there
    is one), ``"cpu"`` or ``"cuda"`` (a ``ValueError`` without a GPU). Teachers reused across runs are
    matched with the device too, so a CPU plan and a CUDA plan each train their own."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    resolve_device(device)  # "cuda" without a GPU: the ValueError that says so, before any run starts
    return [replace(run, config=replace(run.config, device=device)) for run in plan]


def start_reused(plan: Sequence[PlannedRun], manager: JobManager) -> Experiment:
    """An experiment holding the plan's reused runs (teachers, baselines): found finished under the
    runs root, or joined while training, or started now."""
    experiment = Experiment(manager, title="reproduction")
    for run in plan:
        if run.reuse:
            options = run.config.to_dict()
            job = train_teacher_cached(options.pop("dataset"), options.pop("model"), manager=manager, **options)
            experiment.adopt(run.key, job)
    return experiment


def start_the_rest(experiment: Experiment, plan: Sequence[PlannedRun], manager: JobManager) -> None:
    """Add the plan's other runs: those that need a run (``after``) as stages that start once it has
    finished, with its folder in their ``link`` field; the rest at once."""
    experiment.manager = manager
    for run in plan:
        if run.reuse:
            continue
        if run.after is not None:
            experiment.then(run.key, run.after,
                            lambda jobs, c=run.config, a=run.after, f=run.link: replace(c, **{f: str(jobs[a].path)}))
        else:
            experiment.start(run.key, run.config)


class Reproducing:
    """A reproduction under way: its runs started (non-blocking), ``poll()`` measures the runs that
    have ended and rewrites result.json, ``jobs`` are the live jobs (for live charts), ``stop()``
    stops them and marks the result "stopped". The reused runs train first, then the others.
    Without a ``manager``, :func:`reproducible_managers` run them (reruns give the same numbers). A page polls it on each
    rerun, a widget on a timer; :func:`run_plan` polls it until every run has ended."""

    def __init__(self, reproduction: Reproduction, plan: Sequence[PlannedRun], seeds: Sequence[int], quick: bool,
                 runs_root: str | os.PathLike | None = None, data_root: str | os.PathLike | None = None,
                 manager: JobManager | None = None) -> None:
        runs_root = str(Path(runs_root or default_runs_root()).expanduser())
        data_root = data_root or default_data_root()
        data_root = str(Path(data_root).expanduser()) if data_root else None
        check_data(reproduction.dataset, data_root)  # before anything is written
        self.reproduction, self.plan = reproduction, with_roots(plan, runs_root, data_root)
        self.result = ReproductionResult(
            reproduction.name, reproduction.title, reproduction.citation, list(seeds), bool(quick),
            reproduction.settings(bool(quick)), reproduction.measure([], self.plan),
            started=time.strftime("%Y-%m-%dT%H:%M:%S%z"), planned=[run.key for run in self.plan], machine=machine_note(),
            path=result_folder(runs_root, reproduction.name))
        write_result(self.result)
        self._t0 = time.perf_counter()
        self._seen: set[str] = set()
        self._reused_manager, self._manager = (manager, manager) if manager is not None else reproducible_managers()
        self.experiment = start_reused(self.plan, self._reused_manager)
        self._rest_started = False
        self._lock = threading.RLock()  # poll and stop may come from a page, a watcher thread and the watchdog

    @property
    def jobs(self) -> dict:
        """The runs started so far, by plan key (live ``Job`` s; a reused one is a reopened folder)."""
        return self.experiment.jobs

    @property
    def done(self) -> bool:
        return self.result.state != "running"

    def poll(self) -> bool:
        """Measure the runs that ended since the last call and write result.json; True when the table
        changed (a run ended, or the whole reproduction did). Safe from several threads at once."""
        with self._lock:
            return self._poll()

    def watch(self, interval_s: float = PROGRESS_POLL_S) -> threading.Thread:
        """Poll on a daemon thread every ``interval_s`` seconds until the reproduction has ended, so the
        runs that wait for a teacher start, and result.json is rewritten, while no UI is polling (a
        page the user has left). A UI may still poll on its own clock."""
        def loop() -> None:
            while not self.done:
                self.poll()
                time.sleep(interval_s)

        thread = threading.Thread(target=loop, name=f"reproduce-{self.reproduction.name}", daemon=True)
        thread.start()
        return thread

    def _poll(self) -> bool:
        if self.done:
            return False
        if not self._rest_started and all(job.done for job in self.experiment.jobs.values()):
            start_the_rest(self.experiment, self.plan, self._manager)
            self._rest_started = True
        all_ended = self._rest_started and self.experiment.done
        ended = {key for key, job in self.experiment.jobs.items() if job.done} | set(self.experiment.blocked)
        if not (ended - self._seen or all_ended):
            return False
        self._seen |= ended
        self._update()
        if all_ended:
            ok = len(self.result.runs) == len(self.plan) and all(r["state"] == "finished" for r in self.result.runs.values())
            self.result.state = "finished" if ok else "failed"
            if load_note():
                self.result.machine += f"; {load_note()} at the end"
        write_result(self.result)
        return True

    def stop(self, timeout: float = 60.0) -> ReproductionResult:
        """Stop every run (each keeps its checkpoint) and keep the table so far, marked "stopped".
        A reproduction that has already ended is left as it is (a closed tab never rewrites it)."""
        with self._lock:
            return self._stop(timeout)

    def _stop(self, timeout: float) -> ReproductionResult:
        if self.done:
            return self.result
        self._rest_started = True  # nothing starts after a stop
        self.experiment.stop()
        for job in self.experiment.jobs.values():
            job.wait(timeout)
        self._update()
        for key in self.result.planned:
            self.result.runs.setdefault(key, {"path": "", "state": "not started", "message": "stopped before it started"})
        self.result.state = "stopped"
        write_result(self.result)
        return self.result

    def _update(self) -> None:
        """Refresh the result's run states and rows from the jobs that have ended."""
        by_key = {run.key: run for run in self.plan}
        finished = []
        for key, job in self.experiment.jobs.items():
            if not job.done:
                continue
            status = job.status()
            self.result.runs[key] = {"path": str(job.path), "state": status.state, "message": status.message}
            if status.state == "finished":
                finished.append(FinishedRun(by_key[key], Path(job.path)))
        for key, why in self.experiment.blocked.items():
            self.result.runs[key] = {"path": "", "state": "not started", "message": why}
        self.result.rows = self.reproduction.measure(finished, self.plan)
        self.result.wall_s = time.perf_counter() - self._t0


def run_plan(reproduction: Reproduction, plan: Sequence[PlannedRun], seeds: Sequence[int], quick: bool,
             runs_root: str | os.PathLike | None = None, data_root: str | os.PathLike | None = None,
             manager: JobManager | None = None,
             on_progress: Callable[[ReproductionResult], None] | None = None) -> ReproductionResult:
    """Train ``plan`` (made by ``reproduction``), calling ``on_progress(result)`` each time the table
    changes, until every run has ended; an exception (Ctrl-C) stops the runs and marks it "stopped"."""
    reproducing = Reproducing(reproduction, plan, seeds, quick, runs_root, data_root, manager)
    try:
        while not reproducing.done:
            if reproducing.poll() and on_progress is not None:
                on_progress(reproducing.result)
            if not reproducing.done:
                time.sleep(PROGRESS_POLL_S)
    except BaseException:
        reproducing.stop()
        raise
    return reproducing.result


def start_reproduction(name: str, seeds: int | Iterable[int] = 3, quick: bool = False,
                       runs_root: str | os.PathLike | None = None, data_root: str | os.PathLike | None = None,
                       manager: JobManager | None = None) -> Reproducing:
    """Start the reproduction ``name`` and return at once (poll the returned :class:`Reproducing`)."""
    reproduction = REPRODUCTIONS.get(name)
    chosen = seed_list(seeds)
    return Reproducing(reproduction, reproduction.plan(chosen, quick), chosen, quick, runs_root, data_root, manager)


def run_reproduction(name: str, seeds: int | Iterable[int] = 3, quick: bool = False,
                     runs_root: str | os.PathLike | None = None, data_root: str | os.PathLike | None = None,
                     manager: JobManager | None = None,
                     on_progress: Callable[[ReproductionResult], None] | None = None) -> ReproductionResult:
    """Plan and train the reproduction ``name`` for ``seeds`` (a count or the seeds), wait, return its
    table (also written to ``result.path / "result.json"``). ``data_root`` defaults to ``$KDVIZ_DATA``."""
    reproduction = REPRODUCTIONS.get(name)
    chosen = seed_list(seeds)
    return run_plan(reproduction, reproduction.plan(chosen, quick), chosen, quick, runs_root, data_root, manager, on_progress)
