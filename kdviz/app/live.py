"""Incremental reading of a run for the live charts: only what is new since the last refresh.

A ``RunView`` wraps a job's ``LiveStore`` or a reopened folder's ``RunReader`` (same reading API)
and keeps the records and snapshots fetched so far, asking each refresh for "everything since
version k" (``metrics_since``, ``snapshots_since``). Views live in ``st.session_state`` per run
path, so a fragment that refreshes every second costs as much as the new data.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from ..engine import Job, Snapshot, open_run

VIEWS_KEY = "kdviz_run_views"


@dataclass
class RunView:
    """What has been read of one run so far."""

    source: Any  # LiveStore or RunReader
    label: str
    path: str
    metric_version: int = 0
    snapshot_version: int = 0
    steps: list[dict] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)

    def refresh(self) -> bool:
        """Fetch new records and snapshots; True if anything arrived."""
        records, self.metric_version = self.source.metrics_since(self.metric_version)
        snaps, self.snapshot_version = self.source.snapshots_since(self.snapshot_version)
        for r in records:
            (self.evals if r.get("kind") == "eval" else self.steps).append(r)
        self.snapshots.extend(snaps)
        return bool(records or snaps)

    def reference(self) -> dict[str, np.ndarray]:
        return self.source.reference()

    def eval_series(self, key: str) -> tuple[list[float], list[float]]:
        """(epochs, values) of an evaluation metric, e.g. ``"test_acc"``."""
        pts = [(r["epoch"], r[key]) for r in self.evals if key in r]
        return [p[0] for p in pts], [p[1] for p in pts]

    def step_series(self, key: str) -> tuple[list[float], list[float]]:
        pts = [(r["epoch"], r[key]) for r in self.steps if key in r]
        return [p[0] for p in pts], [p[1] for p in pts]


def _views() -> dict[str, RunView]:
    return st.session_state.setdefault(VIEWS_KEY, {})


def job_view(job: Job, label: str) -> RunView:
    """This session's view of a job (live store), refreshed."""
    key = f"job:{job.path}"
    view = _views().get(key)
    if view is None or view.source is not job.store:
        view = _views()[key] = RunView(job.store, label, str(job.path))
    view.refresh()
    return view


def folder_view(path: str | os.PathLike, label: str | None = None) -> RunView:
    """This session's view of a run folder on disk (finished, stopped, or written by another
    process), refreshed. A folder that is not a run raises ``ValueError`` naming it."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ValueError(f"run folder {str(path)!r} does not exist")
    if not path.is_dir():
        raise ValueError(f"{str(path)!r} is a file, not a run folder")
    key = f"folder:{path.resolve()}"
    view = _views().get(key)
    if view is None:
        reader = open_run(path)  # ValueError if config.json is missing or unreadable
        view = _views()[key] = RunView(reader, label or run_label(reader.config, path.name), str(path))
    view.refresh()
    return view


def run_label(config, folder_name: str) -> str:
    """A short legend label for a reopened run: method, T and the folder's time stamp."""
    kind = {"kd": f"KD T={config.T:g}", "ce": "scratch"}.get(config.method, config.method)
    if config.name.startswith("teacher"):
        kind = "teacher"
    return f"{kind} · {folder_name[:15]}"
