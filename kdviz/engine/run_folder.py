"""Run folders on disk: what a job writes, so a run can be reopened, compared and resumed.

Layout (docs/architecture.md)::

    <runs_root>/<run name>/
        config.json             TrainConfig
        status.json             state, message, progress (rewritten as the run goes)
        metrics.jsonl           one JSON record per line, flushed per line
        snapshots/index.jsonl   one line per snapshot: version, step, epoch, meta, file
        snapshots/000001.npz    the snapshot's arrays (np.load(..., allow_pickle=False))
        snapshots/reference.npz arrays recorded once (probe set, teacher soft targets, bins)
        checkpoints/last.safetensors  the last good checkpoint: tensors in a safetensors file, the rest
                                (step, optimizer settings, hooks' numbers) as JSON in its metadata
                                (``models.checkpoint_io``); loading it unpickles nothing
        checkpoints/last.pt     the checkpoint as kdviz wrote it before safetensors (torch.save of plain
                                tensors and dicts): still read, with torch.load(weights_only=True), when
                                no last.safetensors exists; a resumed old run writes last.safetensors beside it
        writer.lock             flock'ed by the one process writing the run (pid, host, start time inside)

Whole files are written to a temp file in the same folder and renamed (``os.replace``), so a
reader or a killed process never sees half a file; appended logs are flushed line by line, so a
killed process loses at most the line being written.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..models.checkpoint_io import CheckpointUnreadable, atomic_write, read_state, state_to_bytes
from .config import TrainConfig
from .npz import MAX_NPZ_MEMBER_BYTES, load_npz  # noqa: F401  (re-exported: readers import it from here)
from .lock import WriterLock

CHECKPOINT_FORMAT = 1  # the checkpoint's entries ("model", "optimizer", "hooks", "step", ...), in either file format
CHECKPOINT_FILE = "last.safetensors"
LEGACY_CHECKPOINT_FILE = "last.pt"  # written by kdviz before checkpoints were safetensors
FINAL_STATES = ("finished", "failed", "stopped", "diverged")
FINAL_WRITE_WAIT_S = 10.0  # the final status waits this long for a write in flight (a checkpoint) to end


def atomic_write_bytes(path: Path, data: bytes, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and ``os.replace``.

    The rename is atomic for readers and against a killed process; ``fsync`` also survives a power
    cut (used for checkpoints, where it is worth the milliseconds)."""
    atomic_write(path, data, fsync=fsync)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, json.dumps(data, indent=2, sort_keys=True, default=_json_default).encode())


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An uncompressed .npz of plain numeric arrays (no object arrays, so no pickling on load)."""
    buf = io.BytesIO()
    clean = {}
    for key, value in arrays.items():
        arr = np.asarray(value)
        if arr.dtype == object:
            raise TypeError(f"snapshot array {key!r} has dtype object; only numeric arrays are stored")
        clean[key] = arr
    np.savez(buf, **clean)
    return buf.getvalue()


def unique_run_path(runs_root: str | os.PathLike, name: str) -> Path:
    """``runs_root/<yyyymmdd-hhmmss>-<name>``, with a numeric suffix if that folder exists."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "run"
    base = Path(runs_root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{safe}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


class RunFolderClosed(RuntimeError):
    """A write to a run folder that already let go of its writer lock (its final status is written)."""


class RunFolder:
    """The writer side of a run folder (one per running job).

    Opening one takes the folder's exclusive writer lock (``lock.WriterLock``): a second writer,
    in this process or another, gets ``RunFolderLocked`` naming the first. The lock is let go when
    a final status ("finished", "failed", "stopped", "diverged") is written, on ``release()``, or
    by the OS when the process dies.

    Once the lock is let go the folder accepts no more writes: each one raises ``RunFolderClosed``
    and touches nothing. Writes and the final status are serialised, so a training thread still
    mid-step when its job was marked stopped (the exit wait ran out, ``Job._abandon``) cannot write
    a checkpoint, a record or a status after the lock is gone, when another process may own the
    folder. Only a write that outlasts ``FINAL_WRITE_WAIT_S`` can still end after the lock is let go."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.snapshot_dir = self.path / "snapshots"
        self.checkpoint_dir = self.path / "checkpoints"
        self._metrics_file = None
        self._index_file = None
        self._write_mutex = threading.RLock()
        self._ended = ""  # why writes are refused ("" while this folder holds its writer lock)
        self._lock = WriterLock(self.path).acquire()

    @classmethod
    def create(cls, config: TrainConfig, path: str | os.PathLike | None = None) -> "RunFolder":
        """Make a new folder (under ``config.runs_root`` unless ``path`` is given) and write config.json."""
        if path is not None:
            path = Path(path).absolute()
            path.mkdir(parents=True, exist_ok=False)
        else:
            while True:  # two jobs with the same name started in the same second: the second gets "-2"
                path = unique_run_path(config.runs_root, config.display_name()).absolute()
                try:
                    path.mkdir(parents=True, exist_ok=False)
                    break
                except FileExistsError:
                    continue
        folder = cls(path)
        folder.snapshot_dir.mkdir()
        folder.checkpoint_dir.mkdir()
        atomic_write_bytes(path / "config.json", config.to_json().encode())
        return folder

    @contextlib.contextmanager
    def _writing(self, what: str, wait_s: float = -1):
        """Hold the write mutex (up to ``wait_s`` seconds; -1: as long as it takes) and refuse the
        write once the folder let go of its lock."""
        got = self._write_mutex.acquire(timeout=wait_s)
        try:
            if self._ended:
                raise RunFolderClosed(f"{self.path}: {what} not written: {self._ended}")
            yield
        finally:
            if got:
                self._write_mutex.release()

    @property
    def closed(self) -> bool:
        """True once the folder let go of its writer lock (every write is refused from then on)."""
        return bool(self._ended)

    def write_status(self, status: dict[str, Any]) -> None:
        """Rewrite status.json; a final state is the writer's last word, so the lock goes with it."""
        final = status.get("state") in FINAL_STATES
        with self._writing("status", FINAL_WRITE_WAIT_S if final else -1):
            try:
                atomic_write_json(self.path / "status.json", status)
            finally:
                if final:
                    self._end(f"the run already ended ({status['state']}) and let go of its writer lock")

    def release(self) -> None:
        """Let go of the writer lock (another process may then resume the run); no writes after it."""
        with self._write_mutex:
            self._end("this writer let go of the run folder's lock")

    def _end(self, why: str) -> None:
        self._ended = self._ended or why
        self.close()
        self._lock.release()

    def append_metric(self, record: dict[str, Any]) -> None:
        with self._writing("metric record"):
            self._append_metric(record)

    def _append_metric(self, record: dict[str, Any]) -> None:
        if self._metrics_file is None:
            self._metrics_file = open(self.path / "metrics.jsonl", "a", encoding="utf-8")
        self._metrics_file.write(json.dumps(record, default=_json_default) + "\n")
        self._metrics_file.flush()

    def write_snapshot(self, version: int, step: int, epoch: float, meta: dict, arrays: dict) -> None:
        """The arrays first (atomically), then the index line that points at them."""
        with self._writing("snapshot"):
            self._write_snapshot(version, step, epoch, meta, arrays)

    def _write_snapshot(self, version: int, step: int, epoch: float, meta: dict, arrays: dict) -> None:
        file = f"{version:06d}.npz"
        atomic_write_bytes(self.snapshot_dir / file, npz_bytes(arrays))
        if self._index_file is None:
            self._index_file = open(self.snapshot_dir / "index.jsonl", "a", encoding="utf-8")
        line = {"version": version, "step": step, "epoch": epoch, "meta": meta, "file": file}
        self._index_file.write(json.dumps(line, default=_json_default) + "\n")
        self._index_file.flush()

    def write_reference(self, arrays: dict[str, np.ndarray]) -> None:
        data = npz_bytes(arrays)
        with self._writing("reference file"):
            atomic_write_bytes(self.snapshot_dir / "reference.npz", data)

    def save_checkpoint(self, state: dict[str, Any], name: str = "last") -> Path:
        """Write ``checkpoints/<name>.safetensors`` (atomically, fsync'ed); an older ``<name>.pt``
        beside it is left as it is (a user's file) and no longer read."""
        path = self.checkpoint_dir / f"{name}.safetensors"
        data = state_to_bytes({"format": CHECKPOINT_FORMAT, **state})  # serialised outside the mutex
        with self._writing("checkpoint"):
            atomic_write_bytes(path, data, fsync=True)
        return path

    def truncate_after(self, step: int | None) -> "Truncation":
        """Drop the metric and snapshot records made after the checkpoint at ``step`` (``None``: no
        checkpoint, restart from scratch and drop every record), before resuming from it.

        Only records whose ``step`` is strictly greater are dropped (and a last line a killed
        writer left half-written, which is no record); every other line is kept byte for byte. A
        log is rewritten only when something goes. The largest metric ``seq`` and snapshot
        ``version`` seen, kept or not, are returned so numbering after the resume keeps growing."""
        with self._writing("truncation"):
            return self._truncate_after(step)

    def _truncate_after(self, step: int | None) -> "Truncation":
        self.close()
        counts = []
        for path, counter in ((self.path / "metrics.jsonl", "seq"), (self.snapshot_dir / "index.jsonl", "version")):
            scan = scan_log(path, counter, step)
            if scan.dropped or scan.partial:
                atomic_write_bytes(path, b"".join(scan.kept))
            counts.append(scan)
        metrics, snapshots = counts
        return Truncation(metrics.top, snapshots.top, metrics.dropped, snapshots.dropped)

    def close(self) -> None:
        for f in (self._metrics_file, self._index_file):
            if f is not None:
                f.close()
        self._metrics_file = self._index_file = None


@dataclass
class Truncation:
    """What ``truncate_after`` did: the largest ``seq`` and ``version`` seen, records dropped."""

    top_seq: int
    top_version: int
    dropped_metrics: int
    dropped_snapshots: int

    def describe(self) -> str:
        if not (self.dropped_metrics or self.dropped_snapshots):
            return "no records were dropped"
        return (f"dropped {self.dropped_metrics} metric record(s) and {self.dropped_snapshots} snapshot(s) "
                f"recorded after that checkpoint")


@dataclass
class LogScan:
    """One append-only log read for a resume: the lines to keep, how many records go."""

    kept: list
    top: int = 0
    dropped: int = 0
    partial: bool = False
    last_step: int = 0  # the largest step of a kept record
    last_step_seen: int = 0  # the largest step of any record
    steps_by_counter: dict | None = None  # counter value -> step, of every record


def scan_log(path: Path, counter: str, step: int | None) -> LogScan:
    """Split ``path``'s lines into kept ones and records after ``step`` (all records when None)."""
    scan = LogScan(kept=[], steps_by_counter={})
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return scan
    lines = data.split(b"\n")
    scan.partial = lines[-1] != b""  # no newline at the end: a writer was killed mid-line
    for raw in lines[:-1]:
        try:
            record = json.loads(raw.decode("utf-8"))
            scan.top = max(scan.top, int(record[counter]))
            record_step = record["step"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            scan.kept.append(raw + b"\n")  # not a record we understand: keep it, readers skip it
            continue
        if not isinstance(record_step, (int, float)) or isinstance(record_step, bool):
            scan.kept.append(raw + b"\n")
            continue
        scan.steps_by_counter[int(record[counter])] = record_step
        scan.last_step_seen = max(scan.last_step_seen, int(record_step))
        if step is None or record_step > step:
            scan.dropped += 1
            continue
        scan.last_step = max(scan.last_step, int(record_step))
        scan.kept.append(raw + b"\n")
    return scan


_CONTROL_CHARS = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")


def plain_text(text: str) -> str:
    """``text`` without ANSI escape sequences or control characters (for messages shown to users)."""
    return _CONTROL_CHARS.sub("", text)


def checkpoint_file(run_path: str | os.PathLike) -> Path:
    """The run's last checkpoint: ``checkpoints/last.safetensors``, or the ``last.pt`` an older kdviz
    wrote when there is no safetensors one. Neither existing: the safetensors path (for messages)."""
    folder = Path(run_path) / "checkpoints"
    current, legacy = folder / CHECKPOINT_FILE, folder / LEGACY_CHECKPOINT_FILE
    if not (current.exists() or current.is_symlink()) and (legacy.exists() or legacy.is_symlink()):
        return legacy
    return current


def has_checkpoint(run_path: str | os.PathLike) -> bool:
    """True when the run folder holds a last checkpoint (either format)."""
    return checkpoint_file(run_path).is_file()


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint (a file, or a run folder: its last checkpoint) without unpickling anything:
    safetensors, or an old ``torch.save`` file with ``weights_only=True``. A missing or corrupt file
    raises ``ValueError`` naming it. A run's ``checkpoints/last.pt`` or ``last.safetensors`` that
    does not exist means the run's last checkpoint in the other format."""
    path = Path(path)
    if path.is_dir():
        path = checkpoint_file(path)
    elif not path.exists() and path.parent.name == "checkpoints" and path.name in (CHECKPOINT_FILE, LEGACY_CHECKPOINT_FILE):
        path = checkpoint_file(path.parent.parent)
    if not path.is_file():
        raise ValueError(f"checkpoint {path} does not exist (has the run saved one yet?)")
    try:
        state = read_state(path, map_location=map_location)
    except CheckpointUnreadable as exc:
        if exc.kind == "code":
            raise ValueError(f"checkpoint {path}: this file is not a plain-tensor checkpoint and was not loaded") from None
        raise ValueError(f"checkpoint {exc}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT or "model" not in state:
        raise ValueError(f"checkpoint {path} is not a kdviz checkpoint (format {CHECKPOINT_FORMAT} with a 'model' entry)")
    return state


class OutsideRunFolder(ValueError):
    """A file a run folder names (a symlink, an absolute or ``../`` path) that lies outside it."""


def inside_run(run_path: str | os.PathLike, relative: str | os.PathLike) -> Path:
    """``run_path / relative`` resolved (symlinks followed), or :class:`OutsideRunFolder` when
    that lands outside the resolved run folder: a run folder's files never lead a reader elsewhere."""
    root = Path(run_path).resolve()
    target = (root / relative).resolve()
    if target != root and root not in target.parents:
        raise OutsideRunFolder(f"refused {os.fspath(relative)!r}: it points outside the run folder {root} "
                               f"(a symlink, an absolute path or '..'); it was not read")
    return target


def read_config(path: str | os.PathLike) -> TrainConfig:
    """The ``TrainConfig`` of a run folder."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise ValueError(f"{path} is not a run folder (no config.json)")
    return TrainConfig.load(inside_run(path, "config.json"))
