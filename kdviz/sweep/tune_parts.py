"""The pieces of a sweep that Ray Tune holds: ASHA that records whom it stops, the user's stop, and the
callback that keeps ``sweep.json`` up to date. Imported only once Ray is there (it imports Ray).

Tune pickles its scheduler, stopper and callbacks with the experiment's state, so they are
module-level classes holding only the sweep's id; the live ``Sweeping`` (with its record and lock)
is looked up in ``_LIVE`` when Tune calls them, in the driver process.
"""
from __future__ import annotations

import itertools
import threading
from typing import Any

from ray import tune
from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.stopper import Stopper

from .spec import METRIC

ASHA_MAX_EVALUATIONS = 10**6  # ASHA's max_t: never reached, so only the rungs stop trials, not a time limit
RESULT_FIELDS = ("step", "epoch", "t", METRIC, "train_acc", "test_loss", "train_loss", "agreement_test",
                 "training_iteration")
_LIVE: dict[str, Any] = {}  # sweep id -> Sweeping
_IDS = itertools.count(1)
_LOCK = threading.Lock()


def register(sweeping) -> str:
    with _LOCK:
        sweep_id = f"sweep-{next(_IDS)}"
        _LIVE[sweep_id] = sweeping
    return sweep_id


def unregister(sweep_id: str) -> None:
    with _LOCK:
        _LIVE.pop(sweep_id, None)


def _record(sweep_id: str):
    return _LIVE[sweep_id].record


def trial_name(trial) -> str:
    return f"trial_{trial.trial_id}"


def scheduler(spec, sweep_id: str):
    """ASHA (Li et al. 2020, MLSys) on the evaluations' test accuracy; None without ``spec.asha``."""
    if spec.asha is None:
        return None
    return RecordingASHA(sweep_id, time_attr="training_iteration", max_t=ASHA_MAX_EVALUATIONS,
                         grace_period=spec.asha.grace_period, reduction_factor=spec.asha.reduction_factor)


class RecordingASHA(ASHAScheduler):
    """Tune's ASHA, noting in the sweep's record each trial it decides to stop."""

    def __init__(self, sweep_id: str, **options: Any) -> None:
        super().__init__(**options)
        self.sweep_id = sweep_id

    def on_trial_result(self, tune_controller, trial, result):
        decision = super().on_trial_result(tune_controller, trial, result)
        if decision == TrialScheduler.STOP and self.sweep_id in _LIVE:
            _record(self.sweep_id).update_trial(trial.config["trial"], stopped_by_scheduler=True)
        return decision


class UserStop(Stopper):
    """Stops every trial once the user stopped the sweep (``Sweeping.stop``)."""

    def __init__(self, sweep_id: str) -> None:
        self.sweep_id = sweep_id

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return self.stop_all()

    def stop_all(self) -> bool:
        sweeping = _LIVE.get(self.sweep_id)
        return sweeping is not None and sweeping.stop_requested


class Recorder(tune.Callback):
    """Keeps the sweep's record and its ``sweep.json`` up to date as trials start, report and end."""

    def __init__(self, sweep_id: str) -> None:
        self.sweep_id = sweep_id

    def _update(self, trial, **changes: Any) -> None:
        sweeping = _LIVE.get(self.sweep_id)
        if sweeping is None:
            return
        sweeping.record.update_trial(trial.config["trial"], **changes)
        sweeping.record.save()

    def on_trial_start(self, iteration, trials, trial, **info):
        self._update(trial, state="running", message="")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        last = {k: result[k] for k in RESULT_FIELDS if k in result}
        self._update(trial, run=str(result.get("run", "")), last=last,
                     history_point=[int(result.get("step", 0)), result.get(METRIC)])

    def on_trial_complete(self, iteration, trials, trial, **info):
        sweeping = _LIVE.get(self.sweep_id)
        if sweeping is not None:
            stopped = sweeping.record.trials[trial.config["trial"]].stopped_by_scheduler or sweeping.stop_requested
            self._update(trial, state="stopped" if stopped else "finished")

    def on_trial_error(self, iteration, trials, trial, **info):
        error = trial.get_error()
        lines = str(error).strip().splitlines() if error else []
        self._update(trial, state="failed", message=(lines[-1] if lines else "the trial failed")[:500])
