"""``JobManager``: runs at most ``max_concurrent`` jobs at once, queues the rest, shares the CPU.

Every running job gets an equal share of the CPU threads (``torch.set_num_threads`` is per thread
with torch's OpenMP backend, and each job applies its share between steps), so a KD student and a
scratch student side by side do not oversubscribe the cores. Queued jobs start in order as slots
free up; ``status().queue_position`` tells each its place (1 = next).
"""
from __future__ import annotations

import os
import threading
from collections import deque

from .job import Job


def available_cores() -> int:
    """CPU threads to share among jobs: ``$KDVIZ_NUM_THREADS`` if set, else the usable cores."""
    env = os.environ.get("KDVIZ_NUM_THREADS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"KDVIZ_NUM_THREADS must be a positive integer, got {env!r}")
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class JobManager:
    """Starts submitted jobs while fewer than ``max_concurrent`` run; queues the others."""

    def __init__(self, max_concurrent: int = 2, cpu_threads: int | None = None) -> None:
        if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or max_concurrent < 1:
            raise ValueError(f"max_concurrent must be a positive integer, got {max_concurrent!r}")
        self.max_concurrent = max_concurrent
        self.cpu_threads = int(cpu_threads) if cpu_threads else available_cores()
        self._lock = threading.RLock()
        self._running: list[Job] = []
        self._queue: deque[Job] = deque()
        self._jobs: list[Job] = []

    def submit(self, job: Job) -> Job:
        """Start ``job`` now if a slot is free, else queue it. Returns the job."""
        with self._lock:
            if job.manager is not self:
                raise ValueError("submit a job to the manager it was created with")
            self._jobs.append(job)
            if len(self._running) < self.max_concurrent:
                self._running.append(job)
                job._launch()
            else:
                self._queue.append(job)
        return job

    def queue_position(self, job: Job) -> int | None:
        with self._lock:
            for position, queued in enumerate(self._queue, start=1):
                if queued is job:
                    return position
            return None

    def cancel(self, job: Job) -> bool:
        """Remove a queued job from the queue; False if it was not queued."""
        with self._lock:
            if self.queue_position(job) is None:
                return False
            self._queue.remove(job)
            return True

    def thread_share(self) -> int:
        """CPU threads each running job may use now."""
        with self._lock:
            return max(1, self.cpu_threads // max(1, len(self._running)))

    def _job_ended(self, job: Job) -> None:
        with self._lock:
            if job in self._running:
                self._running.remove(job)
            while self._queue and len(self._running) < self.max_concurrent:
                nxt = self._queue.popleft()
                self._running.append(nxt)
                nxt._launch()

    def jobs(self) -> list[Job]:
        """Every job submitted here, oldest first."""
        with self._lock:
            return list(self._jobs)

    def running(self) -> list[Job]:
        with self._lock:
            return list(self._running)

    def queued(self) -> list[Job]:
        with self._lock:
            return list(self._queue)

    def find_active(self, identity: dict) -> Job | None:
        """A queued or running job whose config trains the same thing (``TrainConfig.identity``)."""
        with self._lock:
            for job in [*self._running, *self._queue]:
                if job.config.identity() == identity and not job.done:
                    return job
        return None

    def stop_all(self, wait: bool = True, timeout: float | None = 30.0) -> None:
        """Stop every queued and running job (and wait for the running ones to end)."""
        with self._lock:
            jobs = [*self._queue, *self._running]
        for job in jobs:
            job.stop()
        if wait:
            for job in jobs:
                job.wait(timeout)


_DEFAULT: JobManager | None = None
_DEFAULT_LOCK = threading.Lock()


def default_manager() -> JobManager:
    """The process-wide manager used when none is given (2 concurrent jobs)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = JobManager()
        return _DEFAULT
