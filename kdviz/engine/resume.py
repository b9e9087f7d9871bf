"""Checking a resume before it writes anything: ``plan_resume`` reads, ``api.resume`` then writes.

A failed ``kdviz resume`` used to rewrite the run first (a finished teacher came out "failed" with a
changed config). Here every reason to refuse is found with the folder only read: a live writer (the
folder's lock, ``lock.py``), a finished run without more epochs, ``epochs`` that do not go past the
checkpoint, a missing, corrupt or untrusted checkpoint, a checkpoint whose ``step``/``epoch`` do not
agree with the run's records or whose tensors do not fit the model, an unreadable reference file, a
teacher that cannot be loaded. Only a plan that passes all of them lets the caller write.

Records are dropped on resume only when they are strictly after the checkpoint's step, and the
plan says how many. A run killed before its first checkpoint restarts from scratch, allowed only
while it recorded nothing past step 0.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

from .config import TrainConfig
from .lock import RunFolderLocked, describe_holder, lock_holder, writer_alive
from .run_folder import checkpoint_file, inside_run, load_checkpoint, load_npz, read_config, scan_log
from .run_reader import read_status
from .setup import build_run, steps_per_epoch

STALE_AFTER_S = 60.0  # runs without a lock file (written before locks): status.json this old means the writer died
LIVE_STATES = ("queued", "running", "paused")


@dataclass
class ResumePlan:
    """What a resume will do: the config to train (``epochs`` applied), the checkpoint step it
    continues from (None: no checkpoint, start over) and the records it drops."""

    path: Path
    config: TrainConfig
    config_changed: bool
    checkpoint_step: int | None
    total_steps: int
    dropped_metrics: int
    dropped_snapshots: int

    def describe(self) -> str:
        start = (f"resuming from the checkpoint at step {self.checkpoint_step} of {self.total_steps}"
                 if self.checkpoint_step is not None else f"no checkpoint yet: restarting from step 0 of {self.total_steps}")
        dropped = (f"dropping {self.dropped_metrics} metric record(s) and {self.dropped_snapshots} snapshot(s) recorded after it"
                   if self.dropped_metrics or self.dropped_snapshots else "no records dropped")
        return f"{start}; {dropped}"


def total_steps_of(config: TrainConfig) -> int:
    total = config.epochs * steps_per_epoch(config)
    return min(total, config.max_steps) if config.max_steps is not None else total


def plan_resume(path: str | os.PathLike, epochs: int | None = None, force: bool = False) -> ResumePlan:
    """Validate a resume of the run folder ``path``; raise ``ValueError`` naming the problem.

    Reads only: nothing in the folder changes, whatever the outcome. ``force`` resumes a run
    written before run folders had a lock whose status.json still looks fresh."""
    path = Path(path)
    config = read_config(path)
    _check_writer(path, force)
    status = read_status(path)
    if status.get("state") == "finished" and epochs is None:
        raise ValueError(f"run {path} already finished ({config.epochs} epochs); pass epochs (more than {config.epochs}) to train longer")
    new_config = _with_epochs(config, epochs)
    state = _checkpoint_or_none(path)
    step = None if state is None else check_checkpoint(state, path, config, force)
    total = total_steps_of(new_config)
    _check_length(path, config, new_config, step, total, epochs)
    _check_reference(path, state is not None)
    _check_fits(new_config, total, state, path)
    metrics = scan_log(path / "metrics.jsonl", "seq", step)
    snapshots = scan_log(path / "snapshots" / "index.jsonl", "version", step)
    return ResumePlan(path, new_config, new_config.epochs != config.epochs, step, total, metrics.dropped, snapshots.dropped)


def _check_writer(path: Path, force: bool) -> None:
    alive = writer_alive(path)
    if alive:
        raise RunFolderLocked(f"run {path} is being written by {describe_holder(lock_holder(path))}; stop it first")
    if alive is None:  # no lock file: judge by the age of status.json, as before locks
        status = read_status(path)
        updated = status.get("updated")
        state, age = status.get("state"), time.time() - (updated if isinstance(updated, (int, float)) else 0.0)
        if state in LIVE_STATES and age < STALE_AFTER_S and not force:
            raise ValueError(f"run {path} is {state} (status updated {age:.0f} s ago); stop it first. If its process "
                             f"was killed, wait {STALE_AFTER_S:.0f} s or use --force (force=True)")


def _with_epochs(config: TrainConfig, epochs: int | None) -> TrainConfig:
    if epochs is None:
        return config
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    return replace(config, epochs=epochs).validate()


def _checkpoint_or_none(path: Path) -> dict | None:
    """The last checkpoint; None when there is none and the run recorded nothing past step 0
    (killed before its first checkpoint: it restarts); a ``ValueError`` otherwise."""
    ckpt = checkpoint_file(path)  # last.safetensors, or an older kdviz's last.pt
    if ckpt.exists() or ckpt.is_symlink():
        inside_run(path, ckpt.relative_to(path))
        return load_checkpoint(ckpt)
    last = max(scan_log(path / "metrics.jsonl", "seq", None).last_step_seen,
               scan_log(path / "snapshots" / "index.jsonl", "version", None).last_step_seen)
    if last > 0:
        raise ValueError(f"run {path} has no checkpoint ({ckpt} is missing) but recorded training up to step {last}; "
                         f"resuming would start over and drop those records, so it was not resumed")
    return None


def check_checkpoint(state: dict, path: Path, config: TrainConfig, force: bool = False) -> int:
    """The checkpoint's step, checked against the run: an integer within the run's length, its
    epoch (when saved) matching, and the run's records reaching it. Returns the step."""
    where = f"checkpoint {checkpoint_file(path)}"
    step = state.get("step")
    if isinstance(step, bool) or not isinstance(step, int):
        raise ValueError(f"{where} has no integer step (got {step!r}); it was not used")
    own_total = total_steps_of(config)
    if not 0 <= step <= own_total:
        raise ValueError(f"{where} says step {step}, outside this run's 0..{own_total} steps; it was not used")
    spe = steps_per_epoch(config)
    epoch = state.get("epoch")
    if epoch is not None and (isinstance(epoch, bool) or not isinstance(epoch, (int, float)) or not math.isclose(epoch, step / spe, abs_tol=1e-6)):
        raise ValueError(f"{where} says epoch {epoch!r}, which does not match its step {step} "
                         f"({step / spe:.4g} epochs at {spe} steps per epoch); it was not used")
    metrics = scan_log(path / "metrics.jsonl", "seq", step)
    seq = state.get("metric_seq")
    if seq is not None:
        if isinstance(seq, bool) or not isinstance(seq, int) or seq > metrics.top:
            raise ValueError(f"{where} was saved after metric record {seq!r}, but the run's metrics.jsonl ends at record "
                             f"{metrics.top}: the checkpoint does not belong to these records; it was not used")
        before = [s for k, s in metrics.steps_by_counter.items() if k <= seq]
        if before and max(before) > step:
            raise ValueError(f"{where} says step {step}, but the records written before it reach step {max(before)}: "
                             f"its step is wrong, so it was not used")
    log_every = max(1, config.log_every)
    if not force and step >= log_every and metrics.last_step < step - log_every + 1:
        raise ValueError(f"{where} is at step {step} but the run's records before it stop at step {metrics.last_step}: "
                         f"records between them are missing, so it was not used (force=True resumes anyway)")
    return step


def _check_length(path: Path, old: TrainConfig, new: TrainConfig, step: int | None, total: int, epochs: int | None) -> None:
    done = step or 0
    if done < total:
        return
    spe = steps_per_epoch(old)
    trained = f"{done / spe:g} epoch(s) (step {done})"
    if epochs is not None and new.max_steps is not None and new.max_steps <= done:
        raise ValueError(f"run {path} has trained {trained} and stops at max_steps={new.max_steps}; it was not resumed")
    need = math.floor(done / spe) + 1
    raise ValueError(f"run {path} has already trained {trained}; epochs must be at least {need} to continue "
                     f"(got {new.epochs}); it was not resumed")


def _check_reference(path: Path, has_checkpoint: bool) -> None:
    """A resumed run reuses snapshots/reference.npz (probe set, histogram bins): it must load."""
    ref = path / "snapshots" / "reference.npz"
    if not has_checkpoint or not (ref.exists() or ref.is_symlink()):
        return  # started over, or missing: the trainer writes a new one
    try:
        load_npz(inside_run(path, "snapshots/reference.npz"))
    except Exception as exc:  # noqa: BLE001 - numpy raises many types for a bad .npz
        raise ValueError(f"reference file {ref} cannot be read ({type(exc).__name__}); it is needed to resume, so "
                         f"the run was not resumed") from None


def _check_fits(config: TrainConfig, total: int, state: dict | None, path: Path) -> None:
    """Build the run's parts as the trainer will (data, model, teacher, hooks) and load the
    checkpoint into them: every error a resumed job would meet at its start, met now."""
    try:
        build_run(config, total, state)
    except (ValueError, KeyError, TypeError, RuntimeError, OSError) as exc:
        raise ValueError(f"run {path} cannot be resumed: {' '.join(str(exc).split())[:400]}") from None
