"""``RunReader``: a run folder read back with the same API as a live ``LiveStore``.

Both UIs render a finished, reopened or still-running run (started from the CLI, say) exactly like
a live job: ``metrics_since``, ``snapshots_since``, ``latest_snapshot``, ``reference``, plus
``status()`` and ``config``. Each call reads only the bytes appended since the last call, and only
complete lines (a line being written is picked up next time). A malformed line is skipped with a
warning, never an exception, and the folder is never modified.

Reads are confined to the run folder: a log, snapshot or reference file that resolves outside it (a
symlink, an absolute or ``../`` entry in ``snapshots/index.jsonl``) is refused, never opened, and
the refusal is kept in ``RunReader.notes`` for the UI to show. ``read_status`` tells a live run from
one whose writer died (``lock.writer_alive``): a "running", "queued" or "paused" run nobody holds
reads as "interrupted", so it can be resumed.
"""
from __future__ import annotations

import json
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..paths import runs_root as default_runs_root
from .config import TrainConfig
from .lock import describe_holder, lock_holder, writer_alive
from .run_folder import OutsideRunFolder, inside_run, load_npz, read_config
from .store import LiveStore, Snapshot

LIVE_STATES = ("queued", "running", "paused")


class _LineTail:
    """Complete new lines of an append-only text file, parsed as JSON."""

    def __init__(self, path: Path, run_path: Path, note) -> None:
        self.path = path
        self.run_path = run_path
        self.note = note
        self.offset = 0
        self.lineno = 0

    def read_new(self) -> tuple[list[dict], bool]:
        """(new records, whether the file was rewritten and must be reread from the start)."""
        try:
            inside_run(self.run_path, self.path.relative_to(self.run_path))
            size = self.path.stat().st_size
        except FileNotFoundError:
            return [], False
        except OutsideRunFolder as exc:
            self.note(str(exc))
            return [], False
        rewritten = size < self.offset
        if rewritten:
            self.offset = self.lineno = 0
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        records = []
        for raw in data[:end].splitlines():
            self.lineno += 1
            try:
                record = json.loads(raw.decode("utf-8"))
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
            except (ValueError, UnicodeDecodeError) as exc:
                warnings.warn(f"{self.path}: skipping malformed line {self.lineno}: {exc}", RuntimeWarning, stacklevel=3)
                continue
            records.append(record)
        return records, rewritten


class RunReader:
    """Read-only view of a run folder with the ``LiveStore`` reading API."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.config: TrainConfig = read_config(self.path)
        self.notes: list[str] = []  # files refused or skipped, in words, for the UI to show
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._store = LiveStore()
        self._metrics = _LineTail(self.path / "metrics.jsonl", self.path, self._note)
        self._index = _LineTail(self.path / "snapshots" / "index.jsonl", self.path, self._note)
        self._reference_mtime: float | None = None

    def _note(self, message: str) -> None:
        """Warn once per distinct problem and keep it in ``notes``."""
        if message not in self.notes:
            self.notes.append(message)
            warnings.warn(message, RuntimeWarning, stacklevel=3)

    def refresh(self) -> None:
        """Pick up whatever the writer appended since the last call."""
        with self._lock:
            if not self._read_new():  # a resume truncated the logs: start over
                self._reset()
                self._read_new()
            self._refresh_reference()

    def _read_new(self) -> bool:
        """Add new records and snapshots; False if a log was rewritten (nothing added then)."""
        records, rewritten = self._metrics.read_new()
        entries, rewritten_index = self._index.read_new()
        if rewritten or rewritten_index:
            return False
        for record in records:
            seq = record.get("seq")
            if not isinstance(seq, int) or seq <= self._store.metric_version:
                warnings.warn(f"{self._metrics.path}: skipping record without a growing seq: {record!r:.80}", RuntimeWarning)
                continue
            self._store.add_metric(record, seq=seq)
        for entry in entries:
            self._add_snapshot(entry)
        return True

    def _add_snapshot(self, entry: dict) -> None:
        try:
            version, file = int(entry["version"]), str(entry["file"])
            if version <= self._store.snapshot_version:
                raise ValueError("version does not grow")
            arrays = load_npz(inside_run(self.path, Path("snapshots") / file))
            meta = entry.get("meta", {})
            self._store.add_snapshot(int(entry["step"]), float(entry["epoch"]), meta if isinstance(meta, dict) else {}, arrays, version=version)
        except OutsideRunFolder as exc:
            self._note(f"{self.path}: snapshot {entry.get('version')!r} skipped: {exc}")
        except (KeyError, TypeError, ValueError, OSError) as exc:
            warnings.warn(f"{self.path}: skipping snapshot entry {entry!r:.80}: {exc}", RuntimeWarning)

    def _refresh_reference(self) -> None:
        try:
            path = inside_run(self.path, Path("snapshots") / "reference.npz")
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return
        except OutsideRunFolder as exc:
            self._note(str(exc))
            return
        if mtime != self._reference_mtime:
            try:
                self._store.set_reference(load_npz(path))
                self._reference_mtime = mtime
            except (OSError, ValueError) as exc:
                warnings.warn(f"{path}: cannot read reference arrays: {exc}", RuntimeWarning)

    # ---- the LiveStore reading API --------------------------------------------------------------
    def metrics_since(self, version: int = 0) -> tuple[list[dict], int]:
        self.refresh()
        return self._store.metrics_since(version)

    def snapshots_since(self, version: int = 0) -> tuple[list[Snapshot], int]:
        self.refresh()
        return self._store.snapshots_since(version)

    def latest_snapshot(self) -> Snapshot | None:
        self.refresh()
        return self._store.latest_snapshot()

    def reference(self) -> dict[str, np.ndarray]:
        self.refresh()
        return self._store.reference()

    def metrics(self, kind: str | None = None) -> list[dict]:
        self.refresh()
        return self._store.metrics(kind)

    def status(self) -> dict[str, Any]:
        """The last status the writer recorded (``{"state": "unknown"}`` if none yet), with this
        reader's ``notes`` (files it refused) under "notes" when there are any."""
        status = read_status(self.path)
        if self.notes:
            status["notes"] = list(self.notes)
        return status

    @property
    def name(self) -> str:
        return self.path.name

    def __repr__(self) -> str:
        return f"RunReader({str(self.path)!r})"


def _status_file(path: str | os.PathLike) -> dict[str, Any]:
    """status.json as a dict, or ``{"state": "unknown", "message": why}``."""
    try:
        status = json.loads(inside_run(path, "status.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"state": "unknown", "message": "no status.json yet"}
    except OutsideRunFolder as exc:
        return {"state": "unknown", "message": str(exc)}
    except ValueError as exc:
        return {"state": "unknown", "message": f"status.json is unreadable: {exc}"}
    return status if isinstance(status, dict) else {"state": "unknown", "message": "status.json is not an object"}


def read_status(path: str | os.PathLike) -> dict[str, Any]:
    """status.json of a run folder as a dict (``{"state": "unknown", ...}`` if missing or unreadable).

    A run recorded as queued, running or paused whose writer lock nobody holds lost its process
    (killed, crashed, machine rebooted): it reads as ``"interrupted"``, with ``recorded_state``
    holding what status.json says and a message saying how to continue it.

    The writer writes its final status before it lets go of the lock, so a status read just before a
    run ended is read again once the lock is found free: a run that finished in between reads
    "finished", not "interrupted"."""
    status = _status_file(path)
    recorded = status.get("state")
    if recorded in LIVE_STATES and writer_alive(path) is False:
        status = _status_file(path)  # the writer may have ended between the read and the lock check
        recorded = status.get("state")
    if recorded in LIVE_STATES and writer_alive(path) is False:
        step = status.get("step", 0)
        who = describe_holder(lock_holder(path))
        status = {**status, "state": "interrupted", "recorded_state": recorded, "eta_s": None,
                  "message": f"interrupted: {who} stopped writing this run at step {step} without finishing it; "
                             f"resume it (kdviz resume {path}) to continue from its last checkpoint"}
    return status


def list_runs(runs_root: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """One summary per run folder under ``runs_root`` (newest first): path, name, method, model,
    dataset, state, step, total_steps, last test accuracy. Folders without config.json are skipped.
    ``runs_root`` defaults to kdviz's one runs root (``kdviz.paths.runs_root``)."""
    root = Path(runs_root) if runs_root is not None else default_runs_root()
    if not root.is_dir():
        return []
    rows = []
    for path in sorted((p for p in root.iterdir() if (p / "config.json").is_file()), reverse=True):
        try:
            config = read_config(path)
        except (ValueError, TypeError) as exc:
            warnings.warn(f"skipping {path}: {exc}", RuntimeWarning)
            continue
        status = read_status(path)
        rows.append(
            {
                "path": str(path),
                "name": path.name,
                "method": config.method,
                "model": config.model,
                "dataset": config.dataset,
                "state": status.get("state", "unknown"),
                "step": status.get("step", 0),
                "total_steps": status.get("total_steps", 0),
                "test_acc": status.get("test_acc"),
            }
        )
    return rows
