"""Job managers and finished runs for tests that train through the engine."""
from __future__ import annotations

import time
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


def slow_step_hook(seconds: float) -> dict:
    """A hook entry that makes every training step take ``seconds`` longer (a big model's step, on a
    tiny one); the hook is registered as ``"test-slow-step"`` on first use."""
    from kdviz.engine import HOOKS, TrainingHook

    if "test-slow-step" not in HOOKS:
        class SlowStep(TrainingHook):
            def __init__(self, seconds: float) -> None:
                self.seconds = seconds

            def after_step(self, ctx):
                time.sleep(self.seconds)

        HOOKS.register("test-slow-step")(SlowStep)
    return {"name": "test-slow-step", "seconds": seconds}

