"""The lab's teacher: trained in the background on first use, cached on disk, reused after.

``teacher_job(settings)`` asks the engine for a teacher run with the sidebar's teacher size
(``kdviz.engine.train_teacher_cached``): a finished run with the same config under the runs folder
is reused at once; otherwise one job trains it (shared by every session that asks while it runs).
Pages show its progress with ``show_teacher_status`` while the rest of the page is already usable.
"""
from __future__ import annotations

import os
import threading
from typing import Callable

import numpy as np
import streamlit as st

from ..engine import Job, load_trained_model, train_teacher_cached
from ..engine.evaluation import predict_logits
from .session import lab_manager, runs_root
from .sidebar import LabSettings, load_bundle

# Teacher epochs per dataset: digits trains in seconds, 28x28 sets in a few minutes on 2 cores.
TEACHER_EPOCHS: dict[str, int] = {"digits": 20, "synthetic": 10, "mnist": 3, "fashion-mnist": 3}
TEACHER_LR = 0.05

_JOBS: dict[str, Job] = {}
_LOCK = threading.Lock()


def teacher_epochs(dataset: str) -> int:
    """``$KDVIZ_TEACHER_EPOCHS`` if set (tests use 2), else the per-dataset default."""
    raw = os.environ.get("KDVIZ_TEACHER_EPOCHS", "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"KDVIZ_TEACHER_EPOCHS must be a positive integer, got {raw!r}")
        return int(raw)
    return TEACHER_EPOCHS.get(dataset, 3)


def teacher_options(settings: LabSettings) -> dict:
    """The TrainConfig fields of the teacher run for these settings."""
    choice = settings.teacher_model
    return {
        "dataset": settings.dataset, "model": choice.model, "model_options": dict(choice.options),
        "epochs": teacher_epochs(settings.dataset), "lr": TEACHER_LR, "data_root": settings.data_root,
        "runs_root": runs_root(), "name": f"teacher-{choice.model}-{settings.dataset}",
    }


def shared_run_job(options: dict, retry: bool = False) -> Job:
    """The teacher-like run for ``options`` (TrainConfig fields): reused from disk, joined while it
    trains (one job for every session that asks), else started. A failed or stopped run is only
    restarted when ``retry`` is true (a page's Retry button). Teachers and baselines use it."""
    key = repr(sorted(options.items()))
    with _LOCK:
        job = _JOBS.get(key)
        failed = job is not None and job.done and job.status().state != "finished"
        if job is None or (failed and retry):
            opts = dict(options)
            job = train_teacher_cached(opts.pop("dataset"), opts.pop("model"), manager=lab_manager(), **opts)
            _JOBS[key] = job
        return job


def teacher_job(settings: LabSettings, retry: bool = False) -> Job:
    """The teacher job for ``settings`` (``shared_run_job`` of the sidebar's teacher size)."""
    return shared_run_job(teacher_options(settings), retry)


@st.cache_resource(show_spinner=False, max_entries=4)
def _test_logits(run_path: str, dataset: str, data_root: str | None, download: bool) -> np.ndarray:
    bundle = load_bundle(LabSettings(dataset=dataset, data_root=data_root, download=download))
    model = load_trained_model(run_path)
    return predict_logits(model, bundle.test_images, next(model.parameters()).device).cpu().numpy().astype(np.float64)


def teacher_test_logits(job: Job, settings: LabSettings) -> np.ndarray:
    """The finished teacher's logits (N_test, K) on the test set, computed once per run folder."""
    return _test_logits(str(job.path), settings.dataset, settings.data_root, settings.download)


def run_status_line(job: Job, name: str) -> str:
    """One sentence about a teacher-like run called ``name``, for a caption."""
    s = job.status()
    if s.state == "finished":
        acc = f" · {s.test_acc:.1%} test accuracy" if s.test_acc is not None else ""
        return f"**:material/check_circle:** {name} ready{acc} · cached in `{job.path}`"
    if s.state == "queued":
        return f":material/hourglass_top: {name} waits in the queue (place {s.queue_position or '?'}): other runs use the free slots"
    if s.state in ("running", "paused"):
        pct = s.step / s.total_steps if s.total_steps else 0.0
        eta = f", about {s.eta_s:.0f} s left" if s.eta_s else ""
        return f":material/model_training: Training the {name} in the background: {pct:.0%}{eta}"
    return f":material/error: {name} {s.state}: {s.message}"


def _teacher_name(job: Job) -> str:
    cfg = job.config
    widths = "-".join(str(w) for w in cfg.model_options.get("hidden", [])) or cfg.model_options.get("channels", "")
    return f"teacher ({cfg.model.upper()} {widths}".rstrip() + f", {cfg.dataset})"


def show_run_status(job: Job, name: str, retry: Callable[[], object], key: str, what: str = "teacher") -> bool:
    """Draw a teacher-like run's status; True when it is ready to use. A failed run gets a
    "Retry training the {what}" button that calls ``retry``; while it trains, a fragment refreshes
    the progress every second (no user action needed) and reruns the page once it is done."""
    from . import session  # late: keeps this module importable in tests without a script run

    s = job.status()
    if s.state == "finished":
        st.caption(run_status_line(job, name))
        return True
    if s.done:
        st.error(run_status_line(job, name), icon=":material/error:")
        if st.button(f"Retry training the {what}", key=f"{key}-retry"):
            retry()
            st.rerun()
        return False

    @st.fragment(run_every=1.0)
    def poll() -> None:
        session.touch()
        s = job.status()
        if s.done:
            st.rerun(scope="app")
        st.info(run_status_line(job, name))
        st.progress(s.step / s.total_steps if s.total_steps else 0.0)

    poll()
    return False


def show_teacher_status(job: Job, settings: LabSettings, key: str) -> bool:
    """Draw the teacher's status; True when it is ready to use (see ``show_run_status``)."""
    return show_run_status(job, _teacher_name(job), lambda: teacher_job(settings, retry=True), key)
