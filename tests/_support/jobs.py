"""Job managers and finished runs for tests that train through the engine."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


@contextmanager
def job_manager(max_concurrent: int) -> Iterator:
    """A ``JobManager`` with one CPU thread per job (tiny models, shared cores); every job stopped on exit."""
    from kdviz.engine import JobManager

    manager = JobManager(max_concurrent=max_concurrent, cpu_threads=1)
    try:
        yield manager
    finally:
        manager.stop_all(wait=True, timeout=30)


def finished_job(config, manager, timeout: float = 120.0):
    """Start ``config`` on ``manager`` and wait: the job, asserted finished (its status in the message)."""
    from kdviz.engine import start

    job = start(config, manager)
    assert job.wait(timeout).state == "finished", job.status()
    return job
