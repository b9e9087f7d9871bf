"""This browser session's views of runs, kept between reruns so each refresh reads only what is new.

A view is ``kdviz.present.RunView`` (the one view both UIs use: incremental reading, the run's
method, label and colour). Streamlit reruns the whole script on every interaction and a live
fragment refreshes every second, so the views live in ``st.session_state`` per run, and a refresh
costs as much as the records and snapshots that arrived since the last one.
"""
from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from ..engine import Job
from ..present import RunView, as_run_view, run_label

VIEWS_KEY = "kdviz_run_views"


def _views() -> dict[str, RunView]:
    return st.session_state.setdefault(VIEWS_KEY, {})


def job_view(job: Job, label: str) -> RunView:
    """This session's view of a job (its live store), labelled ``label``, refreshed."""
    key = f"job:{job.path}"
    view = _views().get(key)
    if view is None or view.store is not job.store:
        view = _views()[key] = as_run_view(job, label)
    view.refresh()
    return view


def folder_view(path: str | os.PathLike, label: str | None = None) -> RunView:
    """This session's view of a run folder on disk (finished, stopped, or written by another
    process), refreshed; labelled ``label`` or by its method and folder time stamp
    (``present.run_label``). A folder that is not a run raises ``ValueError`` naming it."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ValueError(f"run folder {str(path)!r} does not exist")
    if not path.is_dir():
        raise ValueError(f"{str(path)!r} is a file, not a run folder")
    key = f"folder:{path.resolve()}"
    view = _views().get(key)
    if view is None:
        view = as_run_view(path)  # ValueError if config.json is missing or unreadable
        view.label = label or run_label(view.config, view.method, path.name)
        _views()[key] = view
    view.refresh()
    return view


__all__ = ["RunView", "job_view", "folder_view"]
