"""The lab's teacher: trained in the background on first use, cached on disk, reused after.

``teacher_job(settings)`` asks the engine for a teacher run with the sidebar's teacher size
(``kdviz.engine.train_teacher_cached``): a finished run with the same config under the runs folder
is reused at once; otherwise one job trains it (shared by every session that asks while it runs).
Pages show its progress with ``show_teacher_status`` while the rest of the page is already usable.
"""
from __future__ import annotations

import os

import numpy as np
import streamlit as st

from ..engine import Job, load_trained_model
from ..engine.evaluation import predict_logits
from ..present import shared_run
from .components import show_run_status
from .session import lab_manager, runs_root
from .sidebar import LabSettings, load_bundle

# Teacher epochs per dataset: digits trains in seconds, 28x28 sets in a few minutes on 2 cores.
TEACHER_EPOCHS: dict[str, int] = {"digits": 20, "synthetic": 10, "mnist": 3, "fashion-mnist": 3}
TEACHER_LR = 0.05

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
    """The teacher-like run for ``options`` in the lab's job manager (``present.shared_run``)."""
    return shared_run(options, lab_manager(), retry)


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


def _teacher_name(job: Job) -> str:
    cfg = job.config
    widths = "-".join(str(w) for w in cfg.model_options.get("hidden", [])) or cfg.model_options.get("channels", "")
    return f"teacher ({cfg.model.upper()} {widths}".rstrip() + f", {cfg.dataset})"


def show_teacher_status(job: Job, settings: LabSettings, key: str) -> bool:
    """Draw the teacher's status; True when it is ready to use (see ``show_run_status``)."""
    return show_run_status(job, _teacher_name(job), lambda: teacher_job(settings, retry=True), key)
