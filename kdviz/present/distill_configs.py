"""The configs of the distillation experiment: a KD student beside a scratch student.

Hinton, Vinyals, Dean 2015 (section 2): the KD student minimises
``alpha * T^2 * KL(p_T || q_T) + (1 - alpha) * CE(y, q_1)`` against a finished teacher; the
scratch student is the same model with the same seed, data and batches, trained on the labels
alone (section 3's baseline). Both UIs start the pair from here, so the page holds no batch size,
no step arithmetic and no method name: the base losses and the job names come from the specs.

``DISTILL_DEFAULTS`` holds the experiment's defaults per dataset, chosen (and tested, 5 seeds) so
that the KD student ends above the scratch one: a tiny student trained on a small labelled
transfer set, where the teacher's soft targets carry most (Hinton et al. 2015, section 3: soft
targets let a net trained on 3 % of the speech data nearly match one trained on all of it). The
numbers per seed are in the README ("Train a student").
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..engine import TrainConfig
from ..methods.kd import KD
from ..methods.scratch import SCRATCH

KD_JOB, SCRATCH_JOB = KD.label, SCRATCH.label  # the experiment's job names: "KD student", "scratch student"
EVALS_PER_EPOCH = 4  # evaluations (and snapshots) per epoch, so a short run still draws a curve
PROBE_COUNT = 10  # probe images whose soft targets each snapshot keeps
MAX_EVALS_PER_RUN = 400  # a long run on a small transfer set evaluates less often than EVALS_PER_EPOCH
TRANSFER_FIELD = "train_subset"  # the TrainConfig field: train on this many labelled images (None: all)


@dataclass(frozen=True)
class DistillDefaults:
    """The Train-a-student settings a dataset opens with: the student, T, alpha, the transfer set
    (``transfer_size`` labelled training images, class-balanced; None: the whole training set),
    epochs over it, learning rate and batch size."""

    student_model: str
    student_options: Mapping[str, Any]
    T: float
    alpha: float
    transfer_size: int | None
    epochs: int
    lr: float
    batch_size: int
    pace_s: float | None = None  # at least this long (TrainConfig.pace_s), so a class can watch the race
    note: str = field(default="", compare=False)


# Measured with the engine, teacher = the app's default (MLP 256-256, dropout; README, "Train a student").
DISTILL_DEFAULTS: Mapping[str, DistillDefaults] = {
    "digits": DistillDefaults("mlp", {"hidden": [8]}, T=4.0, alpha=0.9, transfer_size=100, epochs=400, lr=0.01,
                              batch_size=16, pace_s=30.0,
                              note="10 labelled images per class; about 5 s of compute, paced to 30 s to watch"),
    "mnist": DistillDefaults("mlp", {"hidden": [64, 64]}, T=4.0, alpha=0.9, transfer_size=1000, epochs=50, lr=0.02,
                             batch_size=64, note="100 labelled images per class; an 8-unit student is too small here"),
}


def distill_defaults(dataset: str) -> DistillDefaults:
    """The defaults for ``dataset``: its own row, else the MNIST row (the other 28x28 sets)."""
    return DISTILL_DEFAULTS.get(dataset, DISTILL_DEFAULTS["mnist"])


def run_name(label: str) -> str:
    """A run-folder name from a legend label: ``"KD student"`` -> ``"kd-student"``."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def evaluation_interval(train_size: int, batch_size: int, per_epoch: int = EVALS_PER_EPOCH, epochs: int = 1,
                        max_evals: int = MAX_EVALS_PER_RUN) -> int:
    """Optimizer steps between evaluations: about ``per_epoch`` evaluations per epoch (at least 1
    step apart), but no more than about ``max_evals`` in the whole run of ``epochs`` epochs."""
    for name, value in (("train_size", train_size), ("batch_size", batch_size), ("per_epoch", per_epoch),
                        ("epochs", epochs), ("max_evals", max_evals)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    steps_per_epoch = -(-train_size // batch_size)
    return max(1, steps_per_epoch // per_epoch, steps_per_epoch * epochs // max_evals)


def student_pair_configs(
    *, teacher: str, T: float, alpha: float, dataset: str, model: str, model_options: Mapping[str, Any],
    epochs: int, lr: float, seed: int, train_size: int, runs_root: str, data_root: str | None = None,
    batch_size: int | None = None, evals_per_epoch: int = EVALS_PER_EPOCH, probe_count: int = PROBE_COUNT,
    transfer_size: int | None = None, pace_s: float | None = None,
) -> dict[str, TrainConfig]:
    """``{KD_JOB: kd_config, SCRATCH_JOB: scratch_config}``, validated: identical but for the base
    loss, the teacher, T and alpha. ``train_size`` (training images) sets the evaluation interval;
    ``transfer_size`` (None: all of them) trains both students on that many labelled images, the
    same class-balanced subset for both (``TrainConfig.train_subset``); ``pace_s`` makes each run last
    at least that many seconds (``TrainConfig.pace_s``; None: as fast as it can); ``batch_size`` defaults to
    ``TrainConfig``'s. Probe soft targets are kept at T = 1 and at ``T``."""
    batch = TrainConfig().batch_size if batch_size is None else batch_size
    subset = {}
    if transfer_size is not None:
        subset = {TRANSFER_FIELD: transfer_size}
        train_size = min(train_size, transfer_size) if isinstance(transfer_size, int) and transfer_size > 0 else train_size
    every = evaluation_interval(train_size, batch, evals_per_epoch, epochs if isinstance(epochs, int) and epochs > 0 else 1)
    common = dict(dataset=dataset, data_root=data_root, model=model, model_options=dict(model_options), epochs=epochs,
                  lr=lr, seed=seed, batch_size=batch, eval_every=every, snapshot_every=every, probe_count=probe_count,
                  probe_temperatures=sorted({1.0, float(T)}), runs_root=runs_root, pace_s=pace_s, **subset)
    kd = TrainConfig(method=KD.loss, teacher=str(teacher), T=float(T), alpha=float(alpha), name=run_name(KD_JOB), **common)
    scratch = TrainConfig(method=SCRATCH.loss, name=run_name(SCRATCH_JOB), **common)
    return {KD_JOB: kd.validate(), SCRATCH_JOB: scratch.validate()}


__all__ = ["DISTILL_DEFAULTS", "KD_JOB", "SCRATCH_JOB", "EVALS_PER_EPOCH", "MAX_EVALS_PER_RUN", "PROBE_COUNT",
           "TRANSFER_FIELD", "DistillDefaults", "distill_defaults", "evaluation_interval", "run_name",
           "student_pair_configs"]
