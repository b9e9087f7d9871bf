"""The Ray Tune trainable: one trial = one ordinary kdviz run, its evaluations reported to Tune.

Tune runs ``train_trial`` in a worker process (an actor) per trial. It runs the trial's ``TrainConfig``
as an ordinary engine ``Job`` in a one-slot ``JobManager`` whose CPU share is the trial's CPUs (one
torch thread per trial unless it asked for more), so the trial writes a normal run folder under the
runs root. The job's live store is a ``ReportingStore``: as the trainer records each evaluation, the
store passes it to ``ray.tune.report`` (Ray 2.x function API: ``tune.report(metrics)``; one report is
one ``training_iteration``, ASHA's clock here) *in the training thread*, so training waits while Tune
decides and ASHA stops a trial at its rung, not some steps later. (Tune's session is per process, so
reporting from the job's thread is what it expects of the trainable's thread.)

When Tune stops the trial (ASHA cut it at a rung, or the sweep was stopped), ``tune.report`` does not
return: the session raises ``SystemExit`` (``ray.train._internal.session._report_training_result``).
We catch it and stop the job after this step with the reason, so the run folder ends "stopped", its
last checkpoint kept and its status saying who stopped it. A stop the user asks for also reaches a
trial between evaluations (the sweep folder's stop file). The trainable imports nothing from Ray at
module level, so this module (and ``kdviz.sweep``) imports without Ray.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..engine import Job, JobManager, LiveStore, TrainConfig

STOP_POLL_S = 0.25
REUSE_WAIT_S = 30.0
STOP_REQUEST_FILE = "stop-requested"  # written in the sweep folder when the user stops the sweep
SCHEDULER_REASON = "stopped early by the ASHA scheduler: its test accuracy was below the rung's cutoff"
USER_REASON = "stopped because the sweep was stopped"
TUNE_REASON = "stopped by Ray Tune"


def wants_gpu(config: dict[str, Any]) -> bool:
    """A trial asks Ray for a GPU when its device is ``cuda``, or ``auto`` and this machine has one."""
    device = str(config.get("device", "auto"))
    return device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())


def trial_resources(config: dict[str, Any], cpus_per_trial: float) -> dict[str, float]:
    """The resources one trial asks Ray for (``tune.with_resources``)."""
    return {"cpu": float(cpus_per_trial), "gpu": 1.0 if wants_gpu(config) else 0.0}


def threads_for(cpus_per_trial: float) -> int:
    """Torch threads of a trial: one, or its whole CPUs when it asked for more than one."""
    return max(1, int(cpus_per_trial))


def train_trial(tune_config: dict[str, Any], configs: dict[str, dict], cpus_per_trial: float = 1.0,
                sweep_folder: str = "", asha: bool = False) -> None:
    """Tune's function trainable (``tune.with_parameters`` binds ``configs`` and the rest).

    ``tune_config["trial"]`` is the trial's key; ``configs[key]`` its full ``TrainConfig`` dict."""
    from ray import tune

    config = TrainConfig.from_dict(configs[tune_config["trial"]])
    threads = threads_for(cpus_per_trial)
    os.environ["OMP_NUM_THREADS"] = str(threads)  # for libraries that read it later; Ray sets it for the worker too
    # Tune reuses this worker for the next trial once this function returns, waiting this long for it
    # (default 2 s, read in this process at reuse): a stopped run first finishes its step and checkpoint.
    os.environ["TUNE_FUNCTION_THREAD_TIMEOUT_S"] = str(int(REUSE_WAIT_S))
    torch.set_num_threads(threads)
    manager = JobManager(max_concurrent=1, cpu_threads=threads)
    job = Job(config, manager)
    reporter = _TrialReporter(job, tune.report, _stop_reason(sweep_folder, asha))
    job.store = ReportingStore(reporter.report)
    manager.submit(job)
    stop_file = Path(sweep_folder) / STOP_REQUEST_FILE if sweep_folder else None
    while not job.wait(STOP_POLL_S).done:  # the user's stop reaches a trial between evaluations too
        if stop_file is not None and stop_file.exists():
            job.stop(reason=USER_REASON)
    status = job.status()
    if status.state not in ("finished", "stopped"):
        raise RuntimeError(f"run {job.path} ended {status.state}: {status.message}")
    if reporter.stopped:
        # End as Tune's own report would have ended this thread: returning would make Tune's wrapper
        # report once more and wait for an answer that never comes (the worker could not be reused).
        raise SystemExit(0)


class ReportingStore(LiveStore):
    """The job's live store, calling ``on_evaluation(record)`` in the training thread as each
    evaluation is recorded: training waits while Tune decides, so ASHA stops a trial at the rung."""

    def __init__(self, on_evaluation: Callable[[dict[str, Any]], None]) -> None:
        super().__init__()
        self._on_evaluation = on_evaluation

    def add_metric(self, record: dict[str, Any], seq: int | None = None) -> dict[str, Any]:
        stored = super().add_metric(record, seq=seq)
        if stored.get("kind") == "eval":
            self._on_evaluation(stored)
        return stored


class _TrialReporter:
    """Reports a job's evaluations to Tune; when Tune stops the trial (``SystemExit`` from ``report``),
    stops the job after this step with the reason, so its folder ends "stopped" and says why."""

    def __init__(self, job: Job, report: Callable[[dict], None], reason: Callable[[], str]) -> None:
        self.job, self._report, self._reason = job, report, reason
        self.stopped = False

    def report(self, record: dict[str, Any]) -> None:
        if self.stopped:
            return  # Tune has stopped the trial: nothing more to tell it
        try:
            self._report(evaluation_metrics(record, self.job.path))
        except SystemExit:
            self.stopped = True
            self.job.stop(reason=self._reason())


def evaluation_metrics(record: dict[str, Any], run_path: Path) -> dict[str, Any]:
    """What Tune receives for one evaluation: the engine's numbers (floats), the step and the run folder."""
    metrics = {k: float(v) for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
               and k not in ("seq", "kind")}
    metrics["step"] = int(record.get("step", 0))
    metrics["run"] = str(run_path)
    return metrics


def _stop_reason(sweep_folder: str, asha: bool) -> Callable[[], str]:
    """Why Tune stopped the trial, decided when it happens: the user stopped the sweep (its stop file
    exists), else ASHA when the sweep has it."""
    def reason() -> str:
        if sweep_folder and (Path(sweep_folder) / STOP_REQUEST_FILE).exists():
            return USER_REASON
        return SCHEDULER_REASON if asha else TUNE_REASON
    return reason
