"""Run a sweep on Ray Tune: this machine's cores by default, or an existing Ray cluster.

``start_sweep(spec)`` plans and checks every trial (``spec.plan_trials``), writes the sweep folder
(``record.new_sweep_folder``) and returns a :class:`Sweeping` at once; a thread connects to Ray
(``connect_ray``: ``ray.init`` with the machine's cores, or ``address`` / ``$RAY_ADDRESS``) and runs
``tune.Tuner(...).fit()``: a grid over the planned trials' keys, ``trials_at_once`` at a time, each
asking for its CPUs (and a GPU when its device wants one), with ASHA when asked. A Tune callback
updates the record at every trial start, result, completion and error and rewrites ``sweep.json``, so
the Sweeps page and ``SweepMonitor`` draw the heatmap while trials report. ``run_sweep`` waits.

Ray stays up after a sweep (the next one starts at once); ``shutdown_ray()`` ends a Ray this module
started. Without Ray installed, every entry point raises :class:`SweepUnavailable` naming the install
command.
"""
from __future__ import annotations

import logging
import os
import platform
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..engine import FINAL_STATES, TrainConfig
from ..engine.run_folder import read_config, unique_run_path
from ..engine.manager import available_cores
from ..engine.run_reader import read_status
from ..paths import runs_root as default_runs_root
from .record import SweepRecord, new_sweep_folder
from .spec import METRIC, SweepSpec, plan_trials
from .trainable import STOP_REQUEST_FILE, train_trial, trial_resources

INSTALL_COMMAND = "pip install 'kdviz[sweep]'"
INSTALL_MESSAGE = f"Sweeps run on Ray Tune, which is not installed here. Install it with `{INSTALL_COMMAND}`."
FINAL_STATUS_WAIT_S = 20.0  # a stopped trial's worker writes its run's last status just after Tune ends
_RAY_LOCK = threading.Lock()
_STARTED_BY_US = False


class SweepUnavailable(RuntimeError):
    """Ray Tune is not installed (the message names ``pip install 'kdviz[sweep]'``)."""


def require_ray():
    """The ``ray`` module with Tune, or :class:`SweepUnavailable` with the install command."""
    try:
        import ray
        from ray import tune  # noqa: F401
    except ImportError:
        raise SweepUnavailable(INSTALL_MESSAGE) from None
    return ray


def ray_available() -> bool:
    try:
        require_ray()
    except SweepUnavailable:
        return False
    return True


def connect_ray(address: str | None = None, num_cpus: int | None = None, temp_dir: str | None = None) -> str:
    """Join the Ray cluster at ``address`` (or ``$RAY_ADDRESS``), else start Ray on this machine with
    ``num_cpus`` (default: its usable cores). Reuses a Ray already started in this process. Returns
    where trials run, in words."""
    global _STARTED_BY_US
    ray = require_ray()
    for name in ("ray", "ray.tune", "ray.train", "ray.air"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with _RAY_LOCK:
        if not ray.is_initialized():
            address = address or os.environ.get("RAY_ADDRESS") or None
            quiet = dict(log_to_driver=False, logging_level=logging.ERROR, configure_logging=True)
            if address:
                ray.init(address=address, **quiet)
            else:
                ray.init(num_cpus=num_cpus or available_cores(), include_dashboard=False, _temp_dir=temp_dir, **quiet)
            _STARTED_BY_US = True
        cpus = int(ray.cluster_resources().get("CPU", 0))
        gpus = int(ray.cluster_resources().get("GPU", 0))
        nodes = len([n for n in ray.nodes() if n.get("Alive")])
        return f"{nodes} Ray node{'s' if nodes != 1 else ''}, {cpus} CPUs" + (f", {gpus} GPUs" if gpus else "")


def shutdown_ray() -> None:
    """Stop the Ray this module started (a cluster joined with an address is only disconnected)."""
    global _STARTED_BY_US
    ray = require_ray()
    with _RAY_LOCK:
        if ray.is_initialized():
            ray.shutdown()
        _STARTED_BY_US = False


class Sweeping:
    """A sweep in progress: ``record`` (live), ``done``, ``stop()``, ``wait()``; ``error`` when it failed."""

    def __init__(self, record: SweepRecord, run: Callable[["Sweeping"], None]) -> None:
        self.record = record
        self.error = ""
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(run,), name=f"kdviz-sweep-{record.name}", daemon=True)

    def _main(self, run) -> None:
        t0 = time.perf_counter()
        try:
            run(self)
        except BaseException as exc:  # noqa: BLE001 - the thread ends with the error in the record
            self.error = f"{type(exc).__name__}: {exc}"
            self.record.state, self.record.message = "failed", self.error
        finally:
            self.record.wall_s = time.perf_counter() - t0
            _final_states(self.record)
            try:
                self.record.save()
            finally:
                self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def path(self) -> Path | None:
        return self.record.path

    def stop(self) -> None:
        """Stop every running trial after its current step (each run folder says so) and start no more."""
        if self.done:
            return
        if self.record.path is not None:
            (self.record.path / STOP_REQUEST_FILE).write_text("stopped by the user\n")
        self._stop.set()

    def wait(self, timeout: float | None = None) -> SweepRecord:
        self._done.wait(timeout)
        return self.record


def start_sweep(spec: SweepSpec, runs_root: str | os.PathLike | None = None, address: str | None = None,
                num_cpus: int | None = None, temp_dir: str | None = None) -> Sweeping:
    """Plan ``spec`` (a bad value raises ``ValueError`` here, before anything is written), write its
    sweep folder and start it in a background thread; returns at once."""
    require_ray()
    root = Path(runs_root or default_runs_root()).absolute()
    trials = plan_trials(spec, runs_root=str(root))
    folder = new_sweep_folder(root, spec.name)
    record = SweepRecord.planned(folder.name, spec.to_dict(), trials, path=folder)
    record.machine = f"{os.cpu_count()} cores, {platform.machine()}, torch {torch.__version__}"
    record.save()
    sweeping = Sweeping(record, lambda s: _fit(s, spec, address, num_cpus, temp_dir))
    sweeping._thread.start()
    return sweeping


def run_sweep(spec: SweepSpec, runs_root: str | os.PathLike | None = None, address: str | None = None,
              num_cpus: int | None = None, temp_dir: str | None = None) -> SweepRecord:
    """``start_sweep`` and wait for it to end; returns the record (also in ``sweep.json``)."""
    return start_sweep(spec, runs_root, address, num_cpus, temp_dir).wait()


def _fit(sweeping: Sweeping, spec: SweepSpec, address: str | None, num_cpus: int | None, temp_dir: str | None) -> None:
    """Connect to Ray and run the Tuner over the planned trials (in the sweep's thread)."""
    record = sweeping.record
    record.cluster = connect_ray(address, num_cpus, temp_dir)
    record.save()
    from ray import tune

    from . import tune_parts

    os.environ["RAY_CHDIR_TO_TRIAL_DIR"] = "0"  # trials keep the driver's working directory (propagated by Tune)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the quiet console reporter: verbose=0 prints nothing
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # kdviz's run folders hold the records
    configs = {key: trial.config for key, trial in record.trials.items()}
    first = next(iter(configs.values()))
    trainable = tune.with_resources(
        tune.with_parameters(train_trial, configs=configs, cpus_per_trial=spec.cpus_per_trial,
                             sweep_folder=str(record.path), asha=spec.asha is not None),
        trial_resources(first, spec.cpus_per_trial))
    sweep_id = tune_parts.register(sweeping)
    try:
        tuner = tune.Tuner(
            trainable,
            param_space={"trial": tune.grid_search(list(configs))},
            tune_config=tune.TuneConfig(metric=METRIC, mode="max", scheduler=tune_parts.scheduler(spec, sweep_id),
                                        max_concurrent_trials=spec.trials_at_once, reuse_actors=True,
                                        trial_name_creator=tune_parts.trial_name, trial_dirname_creator=tune_parts.trial_name),
            run_config=tune.RunConfig(name="tune", storage_path=str(record.path), verbose=0,
                                      callbacks=[tune_parts.Recorder(sweep_id)], stop=tune_parts.UserStop(sweep_id),
                                      failure_config=tune.FailureConfig(max_failures=0)),
        )
        tuner.fit()
    finally:
        tune_parts.unregister(sweep_id)
    record.state = "stopped" if sweeping.stop_requested else "finished"


def _final_states(record: SweepRecord, settle_s: float = FINAL_STATUS_WAIT_S) -> None:
    """Once Tune has ended: each started trial's state from its run folder (the truth on disk; a worker
    may still be writing a stopped run's last status, so wait up to ``settle_s`` for it), a finished
    run's final test accuracy, and trials that never started marked as not run."""
    deadline = time.monotonic() + settle_s
    for key, trial in record.trials.items():
        if not trial.run and trial.state == "running":  # started, stopped before its first report
            found = find_trial_run(trial.config)
            if found is not None:
                record.update_trial(key, run=str(found))
                trial = record.trials[key]
        if not (trial.run and Path(trial.run).is_dir()):
            if trial.state in ("pending", "running"):
                record.update_trial(key, state="pending" if trial.state == "pending" else "stopped",
                                    message="not run: the sweep ended first")
            continue
        status = read_status(trial.run)
        while status.get("state") not in FINAL_STATES and time.monotonic() < deadline:
            time.sleep(0.2)
            status = read_status(trial.run)
        state = status.get("state")
        if state not in FINAL_STATES:
            continue  # still running on disk: keep what Tune said
        changes: dict[str, Any] = {"state": state, "message": "" if state == "finished" else status.get("message", "")}
        if state == "finished":
            changes["stopped_by_scheduler"] = False  # the stop came after the run's last step
            if status.get("test_acc") is not None:
                changes["last"] = {**trial.last, METRIC: status["test_acc"], "step": status.get("step", 0)}
        record.update_trial(key, **changes)


def find_trial_run(config: dict[str, Any]) -> Path | None:
    """The run folder under the config's runs root that holds exactly ``config`` (a trial that Tune
    stopped before its first report never told the sweep its folder)."""
    root = Path(config["runs_root"])
    suffix = unique_run_path(root, TrainConfig.from_dict(config).display_name()).name.split("-", 2)[-1]
    for folder in sorted(root.glob(f"*-{suffix}*"), reverse=True):
        try:
            if read_config(folder).to_dict() == config:
                return folder
        except (OSError, ValueError, TypeError):
            continue
    return None
