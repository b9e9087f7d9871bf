"""``Experiment``: named jobs started together or one after another, through one ``JobManager``.

Every multi-run story of the lab is an experiment: a KD student beside a scratch student (two jobs
at once), Yim et al.'s two-stage training (stage 2 starts from stage 1's weights once it has
finished, beside a scratch student), Deep Compression (prune, then share weights, from a trained
baseline). A method's recipe (``kdviz.methods``) adds the stages; the UIs only ``poll()``, show
``jobs`` and call ``stop()``. It lives in the engine because it is about jobs, not methods: it
never looks at what a config trains.

``poll()`` never blocks (a Streamlit rerun, a widget timer or a watcher thread calls it) and is
safe from several threads at once: each stage starts exactly once. A stage whose predecessor
ended other than "finished" does not start; ``blocked`` says why.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .api import start
from .config import TrainConfig
from .job import Job, JobStatus
from .manager import JobManager


@dataclass(frozen=True)
class Stage:
    """A job to start once the job named ``after`` has finished; ``build`` makes its config from
    the jobs so far (e.g. ``init_from`` = the previous stage's run folder)."""

    name: str
    after: str
    build: Callable[[dict[str, Job]], TrainConfig]


class Experiment:
    """Named jobs of one experiment, in the order they were added; stages start as their turn comes."""

    def __init__(self, manager: JobManager | None = None, title: str = "") -> None:
        self.manager, self.title = manager, title
        self.started = time.time()
        self._jobs: dict[str, Job] = {}
        self._stages: list[Stage] = []
        self._blocked: dict[str, str] = {}
        self._lock = threading.RLock()

    # ---- building -------------------------------------------------------------------------
    def start(self, name: str, config: TrainConfig | dict) -> Job:
        """Start (or queue) ``config`` now as the job ``name``."""
        return self.adopt(name, start(config, self.manager))

    def adopt(self, name: str, job: Job) -> Job:
        """Make an existing job (a cached teacher, a job started elsewhere) part of this experiment."""
        with self._lock:
            if name in self._jobs or any(s.name == name for s in self._stages):
                raise ValueError(f"experiment already has a job named {name!r}")
            self._jobs[name] = job
            return job

    def then(self, name: str, after: str, build: Callable[[dict[str, Job]], TrainConfig]) -> None:
        """Start ``build(jobs)`` as ``name`` once the job ``after`` has finished (checked by ``poll``)."""
        with self._lock:
            if name in self._jobs or any(s.name == name for s in self._stages):
                raise ValueError(f"experiment already has a job named {name!r}")
            if after in self._blocked:
                self._blocked[name] = f"{after} never started"
                return
            if after not in self._jobs and not any(s.name == after for s in self._stages):
                raise ValueError(f"stage {name!r} waits for {after!r}, which is not part of the experiment")
            self._stages.append(Stage(name, after, build))
        self.poll()

    # ---- running --------------------------------------------------------------------------
    def poll(self) -> list[str]:
        """Start every stage whose predecessor has finished; the names of the stages started now."""
        started = []
        with self._lock:
            for stage in list(self._stages):
                before = self._jobs.get(stage.after)
                if before is None or not before.done:
                    continue
                self._stages.remove(stage)
                state = before.status()
                if state.state != "finished":
                    self._blocked[stage.name] = f"{stage.after} ended {state.state!r}: {state.message}"
                    self._block_followers(stage.name)
                    continue
                try:
                    self._jobs[stage.name] = start(stage.build(dict(self._jobs)), self.manager)
                except (ValueError, TypeError, OSError) as exc:  # a bad config: say why, never vanish
                    self._blocked[stage.name] = f"could not start: {exc}"
                    self._block_followers(stage.name)
                    continue
                started.append(stage.name)
        return started

    def _block_followers(self, name: str) -> None:
        for stage in list(self._stages):
            if stage.after == name:
                self._stages.remove(stage)
                self._blocked[stage.name] = f"{name} never started"
                self._block_followers(stage.name)

    @property
    def jobs(self) -> dict[str, Job]:
        """The jobs started so far, by name, in order."""
        with self._lock:
            return dict(self._jobs)

    def job(self, name: str) -> Job | None:
        return self.jobs.get(name)

    @property
    def pending(self) -> list[str]:
        """Stages that have not started yet (and still may)."""
        with self._lock:
            return [s.name for s in self._stages]

    @property
    def blocked(self) -> dict[str, str]:
        """Stages that will never start, and why."""
        with self._lock:
            return dict(self._blocked)

    @property
    def done(self) -> bool:
        self.poll()
        return not self.pending and all(job.done for job in self.jobs.values())

    def stop(self) -> None:
        """Stop every job and cancel the stages not yet started."""
        with self._lock:
            for stage in self._stages:
                self._blocked[stage.name] = "stopped before it started"
            self._stages.clear()
            jobs = list(self._jobs.values())
        for job in jobs:
            if not job.done:
                job.stop()

    def pause(self) -> None:
        for job in self.jobs.values():
            if not job.done:
                job.pause()

    def resume(self) -> None:
        for job in self.jobs.values():
            if not job.done:
                job.resume()

    def wait(self, timeout: float | None = None) -> dict[str, JobStatus]:
        """Block until every job and stage has ended (``timeout`` applies to each job); their states."""
        while True:
            self.poll()
            open_jobs = [job for job in self.jobs.values() if not job.done]
            if not open_jobs and not self.pending:
                return {name: job.status() for name, job in self.jobs.items()}
            for job in open_jobs:
                if not job.wait(timeout).done:
                    raise TimeoutError(f"job {job.name!r} of the experiment did not end within {timeout} s")
