"""The lab's teachers and baselines: short ones start by themselves, long ones only on request.

``teacher_job(settings)`` (and ``shared_run_job(options)``, which the FSP, attention, pruning,
quantization and Deep Compression pages use for their own teachers and baselines) asks for a plain
cross-entropy run that many pages and sessions share (``kdviz.present.shared_run``, i.e.
``kdviz.engine.train_teacher_cached``): a finished run with the same config under the runs folder is
reused at once, one already training is joined.

Otherwise the run's duration is estimated first (``estimate_run``: its steps times a time per step
recorded by an earlier run of the same model on the same data, or measured just now). A run
estimated under ``auto_start_limit_s()`` (60 s; ``$KDVIZ_AUTO_START_S``) starts by itself, as the
digits teachers always have (a few seconds). A longer one (a ResNet-20 on MNIST: 10-14 minutes on
two cores) waits for its button, beside its estimate and how it was made; while it trains a Cancel
button stops it after the current step and keeps its checkpoint (its slot is freed), and a stopped or
interrupted run of the same config (a Cancel, a server restart) is offered as "Continue (from step k
of n)" (``kdviz.engine.resume``, in its own folder) rather than a start from zero.
"""
from __future__ import annotations

import json
import math
import os
import statistics
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from ..engine import Job, TrainConfig, find_finished_run, list_runs, load_trained_model, resume
from ..engine.evaluation import predict_logits
from ..engine.resume import plan_resume, total_steps_of
from ..engine.run_folder import checkpoint_file, read_config
from ..engine.run_reader import read_status
from ..engine.setup import dataset_for, steps_per_epoch
from ..models import build_model
from ..present import shared_run
from ..present.status import format_duration
from .components import show_run_status
from .session import lab_manager, runs_root
from .sidebar import LabSettings, load_bundle

# Teacher epochs per dataset: digits trains in seconds, 28x28 sets in a few minutes on 2 cores.
TEACHER_EPOCHS: dict[str, int] = {"digits": 20, "synthetic": 10, "mnist": 3, "fashion-mnist": 3}
TEACHER_LR = 0.05
# Runs estimated under this start by themselves. A minute: the digits ResNet-20 teacher measured
# 15-40 ms a step on a busy 2-core machine (10-26 s for its 660 steps), the MNIST MLP teacher 2-10 ms
# (6-30 s), so both keep starting at once; the MNIST ResNet-20 (about 0.2 s a step, 2,814 steps) waits.
AUTO_START_S = 60.0
RESUMABLE = ("stopped", "interrupted")  # a run that ended early with a checkpoint worth continuing
MIN_RECORDED_STEPS = 100  # fewer steps say little about a run's pace (its step-0 evaluation weighs too much)

_SEEN: dict[str, Job] = {}  # options -> the job this process last returned for them
_ESTIMATED_S: dict[str, float] = {}  # options -> the run's estimated duration from step 0 (seconds)
_SEEN_LOCK = threading.Lock()


def teacher_epochs(dataset: str, defaults: dict[str, int] = TEACHER_EPOCHS) -> int:
    """``$KDVIZ_TEACHER_EPOCHS`` if set (tests use 2), else the per-dataset default (``defaults``: the
    MLP teachers' ``TEACHER_EPOCHS`` unless a page's teacher has its own, as the FSP page's ResNet)."""
    raw = os.environ.get("KDVIZ_TEACHER_EPOCHS", "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"KDVIZ_TEACHER_EPOCHS must be a positive integer, got {raw!r}")
        return int(raw)
    return defaults.get(dataset, TEACHER_EPOCHS.get(dataset, 3))


def auto_start_limit_s() -> float:
    """``$KDVIZ_AUTO_START_S`` if set (seconds, >= 0; 0 gates every run), else ``AUTO_START_S``."""
    raw = os.environ.get("KDVIZ_AUTO_START_S", "").strip()
    if not raw:
        return AUTO_START_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"KDVIZ_AUTO_START_S must be a number of seconds >= 0, got {raw!r}")
    return value


def teacher_options(settings: LabSettings) -> dict:
    """The TrainConfig fields of the teacher run for these settings."""
    choice = settings.teacher_model
    return {
        "dataset": settings.dataset, "model": choice.model, "model_options": dict(choice.options),
        "epochs": teacher_epochs(settings.dataset), "lr": TEACHER_LR, "data_root": settings.data_root,
        "runs_root": runs_root(), "name": f"teacher-{choice.model}-{settings.dataset}",
    }


# ---- how long a run will take ---------------------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    """A run's expected duration and, in words, how it was estimated."""

    seconds: float
    steps: int
    how: str

    @property
    def text(self) -> str:
        return f"about {format_duration(self.seconds)}"


def config_of(options: dict) -> TrainConfig:
    """The ``TrainConfig`` that ``shared_run(options)`` trains (as ``train_teacher_cached`` builds it)."""
    opts = dict(options)
    dataset, model = opts.pop("dataset"), opts.pop("model")
    opts.setdefault("name", f"teacher-{model}-{dataset}")
    return TrainConfig(dataset=dataset, model=model, method=opts.pop("method", "ce"), **opts).validate()


def recorded_rate(config: TrainConfig) -> tuple[float, str] | None:
    """(seconds per step, where from) of the newest run under the runs root that trained the same
    model (same options, batch size, loss, no hooks or teacher) on the same data for at least
    ``MIN_RECORDED_STEPS`` steps: its elapsed time over its steps, evaluations and checkpoints included."""
    same = (config.model_options, config.batch_size, config.method, config.hooks, config.teacher)
    for row in list_runs(config.runs_root):
        if row["model"] != config.model or row["dataset"] != config.dataset:
            continue
        try:
            other = read_config(row["path"])
        except (ValueError, TypeError, OSError):
            continue
        if (other.model_options, other.batch_size, other.method, other.hooks, other.teacher) != same:
            continue
        status = read_status(row["path"])
        step, elapsed = int(status.get("step") or 0), float(status.get("elapsed_s") or 0.0)
        if step >= MIN_RECORDED_STEPS and elapsed > 0:
            return elapsed / step, f"recorded by the run {row['name']} ({step:,} steps in {format_duration(elapsed)})"
    return None


@lru_cache(maxsize=16)
def measured_rates(model: str, options_json: str, shape: tuple[int, ...], classes: int, batch: int,
                   threads: int = 1) -> tuple[float, float]:
    """(seconds per SGD step on a batch of ``batch`` images of ``shape``, seconds per image evaluated)
    for a fresh ``model`` on ``threads`` CPU threads (a job's share): the median of 3 timed steps after
    a warm-up, on random inputs (the time does not depend on the values). Measured once per model and
    shape in this process; the global random state and this thread's thread count are left as they were
    (with torch's OpenMP backend the count is per calling thread, ``engine.trainer``)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _time_steps(model, json.loads(options_json), shape, classes, batch)
    finally:
        torch.set_num_threads(previous)


def _time_steps(model: str, options: dict, shape: tuple[int, ...], classes: int, batch: int) -> tuple[float, float]:
    with torch.random.fork_rng():
        net = build_model(model, input_shape=shape, num_classes=classes, **options)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        images, labels = torch.rand(batch, *shape), torch.randint(0, classes, (batch,))
        times = []
        net.train()
        for _ in range(4):
            start = time.perf_counter()
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(net(images), labels).backward()
            optimizer.step()
            times.append(time.perf_counter() - start)
        net.eval()
        probe = torch.rand(4 * batch, *shape)
        with torch.no_grad():
            start = time.perf_counter()
            net(probe)
            per_image = (time.perf_counter() - start) / len(probe)
    return statistics.median(times[1:]), per_image


def evaluations_between(config: TrainConfig, first: int, total: int) -> int:
    """How many whole evaluations a run makes from step ``first`` to ``total`` (one at step 0, then every
    ``eval_every`` steps or at each epoch's end, and at the last step)."""
    every = config.eval_every or steps_per_epoch(config)
    count = total // every - first // every + (1 if first == 0 else 0)
    return count + (1 if total % every else 0)


def estimate_run(config: TrainConfig, from_step: int = 0) -> Estimate:
    """How long ``config`` takes from ``from_step`` to its end: the steps left times the time per
    step recorded by an earlier run of the same model on the same data (``recorded_rate``), else
    measured here (``measured_rates``) plus its evaluations of the test set and the train subset."""
    total = total_steps_of(config)
    steps = max(0, total - from_step)
    recorded = recorded_rate(config)
    if recorded is not None:
        rate, source = recorded
        return Estimate(steps * rate, steps, f"{steps:,} steps x {1000 * rate:.0f} ms per step, the pace {source}")
    data = dataset_for(config)
    shape = tuple(int(n) for n in data.train_images.shape[1:])
    threads = lab_manager().cpu_threads
    step_s, image_s = measured_rates(config.model, json.dumps(config.model_options, sort_keys=True), shape,
                                     len(data.class_names), config.batch_size, threads)
    evals = evaluations_between(config, from_step, total)
    images = len(data.test_labels) + min(len(data.train_labels), config.eval_train_samples)
    side = "x".join(str(n) for n in shape[1:])
    how = (f"{steps:,} steps x {1000 * step_s:.0f} ms per step, measured just now on this machine (training steps "
           f"of this model on a batch of {config.batch_size} {side} images, {threads} CPU thread{'s' if threads > 1 else ''} "
           f"as a job gets), plus {evals} evaluations of {images:,} images")
    return Estimate(steps * step_s + evals * images * image_s, steps, how)


# ---- which run, and whether it may start --------------------------------------------------------
def _remember(key: str, job: Job) -> Job:
    with _SEEN_LOCK:
        _SEEN[key] = job
    return job


@lru_cache(maxsize=32)
def _resume_plan(path: str, status_mtime: float, checkpoint_mtime: float) -> tuple[object | None, str]:
    """(``plan_resume(path)``, "") or (None, why it was refused); cached until the folder changes."""
    try:
        return plan_resume(path), ""
    except (ValueError, OSError) as exc:
        return None, str(exc)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def resumable_run(config: TrainConfig) -> tuple[str, object | None, str, str] | None:
    """(path, resume plan or None, why not, its state) of the newest stopped or interrupted run of
    exactly ``config`` under the runs root; None when there is none."""
    identity = config.identity()
    for row in list_runs(config.runs_root):
        if row["state"] not in RESUMABLE or row["model"] != config.model or row["dataset"] != config.dataset:
            continue
        try:
            if read_config(row["path"]).identity() != identity:
                continue
        except (ValueError, TypeError, OSError):
            continue
        path = Path(row["path"])
        plan, why = _resume_plan(str(path), _mtime(path / "status.json"), _mtime(checkpoint_file(path)))
        return str(path), plan, why, row["state"]
    return None


def _known_job(key: str, options: dict, config: TrainConfig) -> Job | None:
    """The run for ``options`` when it is finished or under way (this process's, or on disk)."""
    with _SEEN_LOCK:
        job = _SEEN.get(key)
    if job is not None and (not job.done or job.status().state == "finished"):
        return job
    active = lab_manager().find_active(config.identity())
    if active is not None:
        return _remember(key, active)
    found = find_finished_run(config)
    return _remember(key, Job.reopened(found)) if found is not None else None


def _what(options: dict) -> str:
    return "baseline" if str(options.get("name", "")).startswith("baseline") else "teacher"


def widget_key(options: dict) -> str:
    """The prefix of the Start, Continue and Cancel buttons' keys of the run ``options`` describe."""
    return f"run-{options.get('name') or options['model'] + '-' + options['dataset']}"


def known_run_job(options: dict) -> Job | None:
    """The run for ``options`` when it is finished or under way, drawing nothing: for a second view of
    a run whose Start and Cancel buttons another part of the page draws (two would share their keys)."""
    return _known_job(repr(sorted(options.items())), options, config_of(options))


def shared_run_job(options: dict, retry: bool = False) -> Job | None:
    """The teacher-like run for ``options`` in the lab's job manager (``present.shared_run``): the
    finished or training one; else started now when it is short (``auto_start_limit_s``) or
    ``retry`` asks; else None, with its estimate and Start (or Continue) buttons drawn here. A long
    run under way gets a Cancel button."""
    key = repr(sorted(options.items()))
    config = config_of(options)
    job = _known_job(key, options, config)
    if job is None:
        estimate = estimate_run(config)
        _ESTIMATED_S[key] = estimate.seconds
        if estimate.seconds >= auto_start_limit_s() and not retry:
            return offer_long_run(key, options, config, estimate)
        job = _remember(key, shared_run(options, lab_manager(), retry))
    if not job.done:
        if key not in _ESTIMATED_S:  # joined a run another session started
            _ESTIMATED_S[key] = estimate_run(config).seconds
        if _ESTIMATED_S[key] >= auto_start_limit_s():
            cancel_button(job, widget_key(options), _what(options))
    return job


def offer_long_run(key: str, options: dict, config: TrainConfig, estimate: Estimate) -> Job | None:
    """A long run that is neither finished nor training: its estimate, and buttons to start it (or to
    continue a stopped or interrupted run of it from its checkpoint); a press starts it and reruns the
    page. None: nothing was pressed."""
    what, button = _what(options), widget_key(options)
    found = resumable_run(config)
    plan = found[1] if found else None
    lead = f"The {what} `{config.name}` ({config.model} on {config.dataset}, {config.epochs} epochs) is not trained yet"
    if plan is not None:
        left = estimate_run(config, plan.checkpoint_step or 0)
        ended = "stopped" if found[3] == "stopped" else "was interrupted (its process ended); its checkpoint is"
        st.info(f"{lead}. A run of it {ended} at step {plan.checkpoint_step or 0:,} of {plan.total_steps:,}: continuing "
                f"takes {left.text} ({left.how}). Training it from step 0 would take {estimate.text}.",
                icon=":material/schedule:")
    else:
        st.info(f"{lead}: training it takes {estimate.text} ({estimate.how}), so it starts only when you ask. "
                "You can cancel it while it trains and continue it later from its checkpoint.", icon=":material/schedule:")
        if found:
            st.caption(f"A stopped run of it (`{found[0]}`) cannot be continued: {found[2]}")
    left_col, right_col = st.columns(2)
    if plan is not None and left_col.button(f"Continue (from step {plan.checkpoint_step or 0:,} of {plan.total_steps:,})",
                                            key=f"{button}-continue", type="primary", icon=":material/resume:",
                                            width="stretch", help=f"Resume `{found[0]}` from its last checkpoint, in its own folder."):
        _remember(key, resume(found[0], manager=lab_manager()))
        st.rerun()  # redrawn as a run under way: its progress and Cancel, without the offer
    label = "Start over from step 0" if plan is not None else f"Start training the {what} ({estimate.text})"
    if (right_col if plan is not None else left_col).button(
            label, key=f"{button}-start", type="secondary" if plan is not None else "primary", width="stretch",
            icon=":material/play_arrow:", help="Takes one of the lab's run slots until it ends or you cancel it."):
        _remember(key, shared_run(options, lab_manager(), retry=True))
        st.rerun()
    return None


def cancel_button(job: Job, key: str, what: str) -> None:
    """Cancel a long teacher-like run: it stops after the current step, saves its checkpoint and frees its
    run slot; the page then offers to continue it."""
    def cancel() -> None:
        job.stop("cancelled from the page")
        job.wait(30)

    st.button(f"Cancel training the {what}", key=f"{key}-cancel", icon=":material/cancel:", on_click=cancel,
              help="Stops it after the current step and keeps its checkpoint; Continue picks up from there.")


def teacher_job(settings: LabSettings, retry: bool = False) -> Job | None:
    """The teacher job for ``settings`` (``shared_run_job`` of the sidebar's teacher size); None while a
    long one waits for its Start button. An imported teacher (Your model page) is its run, as it is."""
    if settings.teacher_model.run:
        return Job.reopened(settings.teacher_model.run)
    return shared_run_job(teacher_options(settings), retry)


@st.cache_resource(show_spinner=False, max_entries=4)
def _test_logits(run_path: str, dataset: str, data_root: str | None, download: bool) -> np.ndarray:
    bundle = load_bundle(LabSettings(dataset=dataset, data_root=data_root, download=download))
    model = load_trained_model(run_path, device="auto")  # the GPU when there is one
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
