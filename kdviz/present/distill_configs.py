"""The configs of the distillation experiment: a KD student beside a scratch student.

Hinton, Vinyals, Dean 2015 (section 2): the KD student minimises
``alpha * T^2 * KL(p_T || q_T) + (1 - alpha) * CE(y, q_1)`` against a finished teacher; the
scratch student is the same model with the same seed, data and batches, trained on the labels
alone (section 3's baseline). Both UIs start the pair from here, so the page holds no batch size,
no step arithmetic and no method name: the base losses and the job names come from the specs.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..engine import TrainConfig
from ..methods.kd import KD
from ..methods.scratch import SCRATCH

KD_JOB, SCRATCH_JOB = KD.label, SCRATCH.label  # the experiment's job names: "KD student", "scratch student"
EVALS_PER_EPOCH = 4  # evaluations (and snapshots) per epoch, so a short run still draws a curve
PROBE_COUNT = 10  # probe images whose soft targets each snapshot keeps


def run_name(label: str) -> str:
    """A run-folder name from a legend label: ``"KD student"`` -> ``"kd-student"``."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def evaluation_interval(train_size: int, batch_size: int, per_epoch: int = EVALS_PER_EPOCH) -> int:
    """Optimizer steps between evaluations for about ``per_epoch`` evaluations per epoch (at least 1)."""
    for name, value in (("train_size", train_size), ("batch_size", batch_size), ("per_epoch", per_epoch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    steps_per_epoch = -(-train_size // batch_size)
    return max(1, steps_per_epoch // per_epoch)


def student_pair_configs(
    *, teacher: str, T: float, alpha: float, dataset: str, model: str, model_options: Mapping[str, Any],
    epochs: int, lr: float, seed: int, train_size: int, runs_root: str, data_root: str | None = None,
    batch_size: int | None = None, evals_per_epoch: int = EVALS_PER_EPOCH, probe_count: int = PROBE_COUNT,
) -> dict[str, TrainConfig]:
    """``{KD_JOB: kd_config, SCRATCH_JOB: scratch_config}``, validated: identical but for the base
    loss, the teacher, T and alpha. ``train_size`` (training images) sets the evaluation interval;
    ``batch_size`` defaults to ``TrainConfig``'s. Probe soft targets are kept at T = 1 and at ``T``."""
    batch = TrainConfig().batch_size if batch_size is None else batch_size
    every = evaluation_interval(train_size, batch, evals_per_epoch)
    common = dict(dataset=dataset, data_root=data_root, model=model, model_options=dict(model_options), epochs=epochs,
                  lr=lr, seed=seed, batch_size=batch, eval_every=every, snapshot_every=every, probe_count=probe_count,
                  probe_temperatures=sorted({1.0, float(T)}), runs_root=runs_root)
    kd = TrainConfig(method=KD.loss, teacher=str(teacher), T=float(T), alpha=float(alpha), name=run_name(KD_JOB), **common)
    scratch = TrainConfig(method=SCRATCH.loss, name=run_name(SCRATCH_JOB), **common)
    return {KD_JOB: kd.validate(), SCRATCH_JOB: scratch.validate()}


__all__ = ["KD_JOB", "SCRATCH_JOB", "EVALS_PER_EPOCH", "PROBE_COUNT", "run_name", "evaluation_interval",
           "student_pair_configs"]
