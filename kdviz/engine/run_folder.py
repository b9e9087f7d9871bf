"""Run folders on disk: what a job writes, so a run can be reopened, compared and resumed.

Layout (docs/architecture.md)::

    <runs_root>/<run name>/
        config.json             TrainConfig
        status.json             state, message, progress (rewritten as the run goes)
        metrics.jsonl           one JSON record per line, flushed per line
        snapshots/index.jsonl   one line per snapshot: version, step, epoch, meta, file
        snapshots/000001.npz    the snapshot's arrays (np.load(..., allow_pickle=False))
        snapshots/reference.npz arrays recorded once (probe set, teacher soft targets, bins)
        checkpoints/last.pt     the last good checkpoint: plain tensors and dicts, torch.load(weights_only=True)

Whole files are written to a temp file in the same folder and renamed (``os.replace``), so a
reader or a killed process never sees half a file; appended logs are flushed line by line, so a
killed process loses at most the line being written.
"""
from __future__ import annotations

import io
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import TrainConfig

CHECKPOINT_FORMAT = 1


def atomic_write_bytes(path: Path, data: bytes, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and ``os.replace``.

    The rename is atomic for readers and against a killed process; ``fsync`` also survives a power
    cut (used for checkpoints, where it is worth the milliseconds)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def unique_run_path(runs_root: str | os.PathLike, name: str) -> Path:
    """``runs_root/<yyyymmdd-hhmmss>-<name>``, with a numeric suffix if that folder exists."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "run"
    base = Path(runs_root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{safe}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


class RunFolder:
    """The writer side of a run folder (one per running job)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.snapshot_dir = self.path / "snapshots"
        self.checkpoint_dir = self.path / "checkpoints"
        self._metrics_file = None
        self._index_file = None

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

    def write_status(self, status: dict[str, Any]) -> None:
        atomic_write_json(self.path / "status.json", status)

    def append_metric(self, record: dict[str, Any]) -> None:
        if self._metrics_file is None:
            self._metrics_file = open(self.path / "metrics.jsonl", "a", encoding="utf-8")
        self._metrics_file.write(json.dumps(record, default=_json_default) + "\n")
        self._metrics_file.flush()

    def write_snapshot(self, version: int, step: int, epoch: float, meta: dict, arrays: dict) -> None:
        """The arrays first (atomically), then the index line that points at them."""
        file = f"{version:06d}.npz"
        atomic_write_bytes(self.snapshot_dir / file, npz_bytes(arrays))
        if self._index_file is None:
            self._index_file = open(self.snapshot_dir / "index.jsonl", "a", encoding="utf-8")
        line = {"version": version, "step": step, "epoch": epoch, "meta": meta, "file": file}
        self._index_file.write(json.dumps(line, default=_json_default) + "\n")
        self._index_file.flush()

    def write_reference(self, arrays: dict[str, np.ndarray]) -> None:
        atomic_write_bytes(self.snapshot_dir / "reference.npz", npz_bytes(arrays))

    def save_checkpoint(self, state: dict[str, Any], name: str = "last") -> Path:
        path = self.checkpoint_dir / f"{name}.pt"
        buf = io.BytesIO()
        torch.save({"format": CHECKPOINT_FORMAT, **state}, buf)
        atomic_write_bytes(path, buf.getvalue(), fsync=True)
        return path

    def truncate_after(self, step: int) -> tuple[int, int]:
        """Drop metric and snapshot lines past ``step`` (before resuming from a checkpoint at ``step``).

        Returns the largest metric ``seq`` and snapshot ``version`` seen, kept or not, so numbering
        after the resume keeps growing."""
        self.close()
        largest = []
        for path, counter in ((self.path / "metrics.jsonl", "seq"), (self.snapshot_dir / "index.jsonl", "version")):
            kept, top = [], 0
            if path.exists():
                for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                    try:
                        record = json.loads(line)
                        top = max(top, int(record[counter]))
                        if record["step"] <= step:
                            kept.append(line + "\n")
                    except (ValueError, KeyError, TypeError):
                        continue
                atomic_write_bytes(path, "".join(kept).encode())
            largest.append(top)
        return largest[0], largest[1]

    def close(self) -> None:
        for f in (self._metrics_file, self._index_file):
            if f is not None:
                f.close()
        self._metrics_file = self._index_file = None


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; a missing or corrupt file raises ``ValueError``
    naming it."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoints" / "last.pt"
    if not path.is_file():
        raise ValueError(f"checkpoint {path} does not exist (has the run saved one yet?)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise ValueError(f"checkpoint {path} is corrupt or not a kdviz checkpoint: {type(exc).__name__}: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT or "model" not in state:
        raise ValueError(f"checkpoint {path} is not a kdviz checkpoint (format {CHECKPOINT_FORMAT} with a 'model' entry)")
    return state


def read_config(path: str | os.PathLike) -> TrainConfig:
    """The ``TrainConfig`` of a run folder."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise ValueError(f"{path} is not a run folder (no config.json)")
    return TrainConfig.load(path / "config.json")
