"""Teachers and baselines: trained once per process, reused from disk, shared by every viewer.

A teacher (for KD, FSP, hints) or a dense baseline (for pruning, quantization, Deep Compression)
is a plain cross-entropy run that many pages, widgets and sessions need at once. ``shared_run``
asks the engine (``train_teacher_cached``): a finished run with the same config under the runs
folder is reused at once; otherwise one job trains it, and every caller that asks while it trains
gets that same job. A failed or stopped run is restarted only when ``retry`` is true (a Retry
button), so a broken config does not restart on every refresh.
"""
from __future__ import annotations

import threading
from typing import Any

from ..engine import Job, JobManager, train_teacher_cached

_JOBS: dict[str, Job] = {}
_LOCK = threading.Lock()


def shared_run(options: dict[str, Any], manager: JobManager | None = None, retry: bool = False) -> Job:
    """The run for ``options`` (``TrainConfig`` fields, ``dataset`` and ``model`` included): reused
    from disk, joined while it trains, else started in ``manager``."""
    key = repr(sorted(options.items()))
    with _LOCK:
        job = _JOBS.get(key)
        failed = job is not None and job.done and job.status().state != "finished"
        if job is None or (failed and retry):
            opts = dict(options)
            job = train_teacher_cached(opts.pop("dataset"), opts.pop("model"), manager=manager, **opts)
            _JOBS[key] = job
        return job


def forget_shared_runs() -> None:
    """Drop the cache of jobs (tests; a runs folder that was deleted)."""
    with _LOCK:
        _JOBS.clear()
