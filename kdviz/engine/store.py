"""``LiveStore``: the thread-safe, versioned in-memory record of one run that the UIs poll.

The trainer appends metric records and snapshots; readers ask for "everything since version k"
(``metrics_since(k) -> (records, new_k)``) and get only what is new, so a UI refresh costs as much as
the new data. Versions are the records' sequence numbers (``seq``), which only grow.

Memory stays bounded on long runs: when more than ``max_step_points`` per-step records are held,
every other step record in the older half is dropped (evaluation records are always kept), and
snapshots are thinned the same way above ``max_snapshots``. A reader that already fetched a thinned
point keeps it; a new reader gets the thinned history.
"""
from __future__ import annotations

import threading
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Snapshot:
    """What the visuals need at one step: scalars in ``meta``, arrays (numpy) in ``arrays``."""

    version: int
    step: int
    epoch: float
    meta: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def _thin(items: list, keep) -> list:
    """Drop every other droppable item in the older half of ``items`` (``keep(item)`` protects one)."""
    droppable = [i for i, item in enumerate(items) if not keep(item)]
    older = droppable[: len(droppable) // 2]
    drop = set(older[1::2])
    return [item for i, item in enumerate(items) if i not in drop]


class LiveStore:
    """Metric records (dicts with ``seq``, ``kind`` "step" or "eval", ``step``, ...) and snapshots."""

    def __init__(self, max_step_points: int = 5000, max_snapshots: int = 400) -> None:
        if max_step_points < 4 or max_snapshots < 4:
            raise ValueError("max_step_points and max_snapshots must be at least 4")
        self.max_step_points = int(max_step_points)
        self.max_snapshots = int(max_snapshots)
        self._lock = threading.Lock()
        self._records: list[dict] = []
        self._seqs: list[int] = []
        self._n_step = 0
        self._metric_version = 0
        self._snapshots: list[Snapshot] = []
        self._snapshot_version = 0
        self._reference: dict[str, np.ndarray] = {}

    # ---- writing (the trainer, or a RunReader replaying a folder) -----------------------------
    def add_metric(self, record: dict[str, Any], seq: int | None = None) -> dict[str, Any]:
        """Append a record; it gets the next ``seq`` (or the given one, which must grow). Returns it."""
        with self._lock:
            seq = self._metric_version + 1 if seq is None else int(seq)
            if seq <= self._metric_version:
                raise ValueError(f"metric seq must grow: {seq} after {self._metric_version}")
            record = {**record, "seq": seq}
            self._records.append(record)
            self._seqs.append(seq)
            self._metric_version = seq
            if record.get("kind") == "step":
                self._n_step += 1
                if self._n_step > self.max_step_points:
                    self._thin_records()
            return record

    def _thin_records(self) -> None:
        first_step = next(i for i, r in enumerate(self._records) if r.get("kind") == "step")
        kept = _thin(self._records, lambda r: r.get("kind") != "step" or r is self._records[first_step])
        self._records = kept
        self._seqs = [r["seq"] for r in kept]
        self._n_step = sum(1 for r in kept if r.get("kind") == "step")

    def add_snapshot(self, step: int, epoch: float, meta: dict, arrays: dict, version: int | None = None) -> Snapshot:
        with self._lock:
            version = self._snapshot_version + 1 if version is None else int(version)
            if version <= self._snapshot_version:
                raise ValueError(f"snapshot version must grow: {version} after {self._snapshot_version}")
            snap = Snapshot(version, int(step), float(epoch), dict(meta), dict(arrays))
            self._snapshots.append(snap)
            self._snapshot_version = version
            if len(self._snapshots) > self.max_snapshots:
                first = self._snapshots[0]
                self._snapshots = _thin(self._snapshots, lambda s: s is first or s is snap)
            return snap

    def set_reference(self, arrays: dict[str, np.ndarray]) -> None:
        """Arrays recorded once per run: probe indices and labels, the teacher's soft targets, bins."""
        with self._lock:
            self._reference = dict(arrays)

    # ---- reading (both UIs) -------------------------------------------------------------------
    def metrics_since(self, version: int = 0) -> tuple[list[dict], int]:
        """Records with ``seq > version`` (oldest first) and the version to ask from next time."""
        with self._lock:
            start = bisect_right(self._seqs, int(version))
            return list(self._records[start:]), self._metric_version

    def snapshots_since(self, version: int = 0) -> tuple[list[Snapshot], int]:
        with self._lock:
            new = [s for s in self._snapshots if s.version > version]
            return new, self._snapshot_version

    def latest_snapshot(self) -> Snapshot | None:
        with self._lock:
            return self._snapshots[-1] if self._snapshots else None

    def reference(self) -> dict[str, np.ndarray]:
        with self._lock:
            return dict(self._reference)

    def metrics(self, kind: str | None = None) -> list[dict]:
        """Every held record, or only those of one ``kind`` ("step" or "eval")."""
        with self._lock:
            return [r for r in self._records if kind is None or r.get("kind") == kind]

    @property
    def metric_version(self) -> int:
        return self._metric_version

    @property
    def snapshot_version(self) -> int:
        return self._snapshot_version
