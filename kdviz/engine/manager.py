"""``JobManager``: runs at most ``max_concurrent`` jobs at once, queues the rest, shares the CPU.

Every running job gets an equal share of the CPU threads (``torch.set_num_threads`` is per thread
with torch's OpenMP backend, and each job applies its share between steps), so a KD student and a
scratch student side by side do not oversubscribe the cores. Queued jobs start in order as slots
free up; ``status().queue_position`` tells each its place (1 = next).

A paused job keeps its slot (issue 13, item 13): Resume then continues at once, as a user pressing
Resume expects, instead of waiting behind runs started meanwhile. The status of a queued job names
the paused runs that hold slots, and a paused job's status says it keeps its slot, so nobody waits
without knowing why; stopping a paused run frees its slot.

Every manager that starts a job is watched by ``shutdown``: at interpreter exit it is closed and its
jobs are stopped and joined within a bounded wait, so a script that ends while a job trains exits
cleanly and leaves the run "stopped".
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque

from . import shutdown
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
        self._closing = ""  # why the manager starts nothing more ("" while open)

    def submit(self, job: Job) -> Job:
        """Start ``job`` now if a slot is free, else queue it. Returns the job.

        A job trains once: submitting one that was already submitted (or has ended) is a
        ``ValueError`` that says to resume it or start its config again (issue 13, item 4). While the
        manager is closing (the process is exiting) a submitted job ends "stopped" at once."""
        with self._lock:
            refusal = job.resubmit_refusal()
            if refusal:
                raise ValueError(refusal)
            if job.manager is not self:
                raise ValueError(f"job {job.name} belongs to another manager; submit a job to the manager it was created with")
            job._submitted = True
            self._jobs.append(job)
            if self._closing:
                job._finish("stopped", f"not started: {self._closing}")
                return job
            if len(self._running) < self.max_concurrent:
                self._start(job)
            else:
                self._queue.append(job)
        shutdown.watch(self)
        return job

    def _start(self, job: Job) -> None:
        """Give ``job`` a slot and start its thread (the lock held); a thread that cannot start frees the slot."""
        self._running.append(job)
        try:
            job._launch()
        except Exception as exc:  # e.g. "can't start new thread": the job fails, the slot is not lost
            job._finish("failed", f"could not start the training thread: {type(exc).__name__}: {exc}")

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
            while self._queue and len(self._running) < self.max_concurrent and not self._closing:
                self._start(self._queue.popleft())

    def paused_holders(self) -> list[str]:
        """Names of the paused jobs that hold a slot (a paused job keeps its slot until it resumes or stops)."""
        with self._lock:
            running = list(self._running)
        return [job.name for job in running if job.status().state == "paused"]

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

    def close(self, reason: str = "the job manager was closed") -> None:
        """Start nothing more and stop every job (queued ones leave the queue; running and paused ones
        stop after their current step, saving a checkpoint). Does not wait: see ``join``."""
        with self._lock:
            self._closing = reason
            jobs = [*self._queue, *self._running]
        for job in jobs:
            job.stop(reason=reason)

    def join(self, timeout: float | None = None) -> list[Job]:
        """Wait up to ``timeout`` seconds in all for the stopped jobs' threads to end; a job still
        running after that is marked stopped (its last checkpoint kept). Returns those jobs."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            jobs = list(self._jobs)
        late = []
        for job in jobs:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not job._join_thread(left):
                late.append(job)
        late = [job for job in late if job._stop.is_set()]  # only a job asked to stop is given up on
        for job in late:
            job._abandon()
        return late


_DEFAULT: JobManager | None = None
_DEFAULT_LOCK = threading.Lock()


def default_manager() -> JobManager:
    """The process-wide manager used when none is given (2 concurrent jobs)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = JobManager()
        return _DEFAULT
