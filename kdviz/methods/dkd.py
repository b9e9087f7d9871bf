"""The ``"dkd"`` training hook and method: Zhao, Cui, Song, Qiu, Liang, "Decoupled Knowledge
Distillation" (CVPR 2022), eq. 7 (KD = TCKD + (1 - p_t^T) NCKD) trained as eq. 8:
CE + alpha TCKD + beta NCKD.

Config entry (plain JSON, see ``kdviz.engine.hooks``)::

    {"name": "dkd", "alpha": 1.0, "beta": 8.0, "T": 4.0, "warmup_epochs": 0}

The hook needs a teacher in the run config (the engine then passes the teacher's logits of each
batch) and adds ``{"tckd": alpha w TCKD, "nckd": beta w NCKD}`` to the base loss ``"ce"``, with
TCKD and NCKD times T^2 and batch means as in mdistiller's ``dkd_loss``
(``kdviz.distill.dkd``). The defaults alpha 1, beta 8, T 4 are the paper's and mdistiller's for
CIFAR-100 (mdistiller/engine/cfg.py). ``w`` is mdistiller's linear warm-up
``min(epoch / warmup_epochs, 1)`` with epochs counted from 1 (20 epochs there, of 240): at the
default ``warmup_epochs = 0`` the terms have their full weight from the first step, which suits
kdviz's runs of a few epochs; with ``warmup_epochs = 4`` the first epoch uses 1/4 of them.

At each evaluation the hook logs, on a fixed probe batch of test images (the first ``probe_size``),
the unweighted ``tckd`` and ``nckd``, Hinton's KD at the same T (``hinton_kd``: T^2 KL, eq. 7's left
side), the teacher's mean target probability ``teacher_target_prob`` (p_t^T), the mean NCKD weight
``nckd_weight`` (1 - p_t^T), the mean ``nckd_in_kd`` ((1 - p_t^T) NCKD, what KD keeps of NCKD, so
``hinton_kd == tckd + nckd_in_kd`` holds on the logged numbers) and the warm-up weight ``warmup``.
Snapshots hold the same per probe image (``DKDSnapshot``). Student probe forwards run in eval mode,
as the test accuracy does.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from ..distill.dkd import DKDParts, check_weight, dkd_parts, tckd_and_nckd
from ..distill.soft_targets import check_temperature
from ..engine.config import TrainConfig
from ..engine.evaluation import evaluating
from ..engine.hooks import HOOKS, StepBatch, TrainContext, TrainingHook, hook_options
from ..palette import OKABE_ITO
from ._features import probe_images, require_teacher
from .base import MethodSpec, register_method, uses_hook

NAME = "dkd"
# The curves of the parts chart, by series name, and the metric each is read from.
SERIES_METRICS = {"tckd": "tckd", "nckd": "nckd", "hinton": "hinton_kd", "nckd_in_kd": "nckd_in_kd",
                  "p_t": "teacher_target_prob"}


@HOOKS.register(NAME)
class DKDHook(TrainingHook):
    """Adds Zhao et al.'s decoupled terms alpha TCKD + beta NCKD (eq. 8) to cross-entropy."""

    def __init__(self, alpha: float = 1.0, beta: float = 8.0, T: float = 4.0, warmup_epochs: int = 0,
                 probe_size: int = 64) -> None:
        self.alpha, self.beta = check_weight(alpha, "alpha"), check_weight(beta, "beta")
        try:
            self.T = check_temperature(T)
        except ValueError as exc:
            raise ValueError(f"dkd: {exc}") from None
        if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, int) or warmup_epochs < 0:
            raise ValueError(f"dkd: warmup_epochs must be a whole number of epochs >= 0 (0: no warm-up), "
                             f"got {warmup_epochs!r}")
        if isinstance(probe_size, bool) or not isinstance(probe_size, int) or probe_size < 1:
            raise ValueError(f"dkd: probe_size (test images measured at each evaluation) must be at least 1, "
                             f"got {probe_size!r}")
        self.warmup_epochs, self.probe_size = warmup_epochs, probe_size
        self._probe: torch.Tensor | None = None
        self._probe_labels: torch.Tensor | None = None
        self._teacher_probe: torch.Tensor | None = None

    def warmup_weight(self, epoch: int) -> float:
        """mdistiller's min(e / warmup_epochs, 1) for the 0-based ``epoch`` (e = epoch + 1); 1 without warm-up."""
        return 1.0 if self.warmup_epochs == 0 else min((int(epoch) + 1) / self.warmup_epochs, 1.0)

    def setup(self, ctx: TrainContext) -> None:
        """Keep the probe batch, its labels and the teacher's logits on it (the teacher is fixed)."""
        teacher = require_teacher(ctx, NAME)
        self._probe = probe_images(ctx, self.probe_size)
        self._probe_labels = torch.as_tensor(ctx.dataset.test_labels[: len(self._probe)], dtype=torch.long,
                                             device=ctx.device)
        with evaluating(teacher):
            self._teacher_probe = teacher(self._probe)

    def loss_terms(self, ctx: TrainContext, batch: StepBatch) -> dict[str, torch.Tensor]:
        if batch.teacher_logits is None:
            raise ValueError(f"the {NAME!r} hook got no teacher logits; set 'teacher' in the run config")
        w = self.warmup_weight(ctx.epoch)
        tckd, nckd = tckd_and_nckd(batch.logits, batch.teacher_logits, batch.labels, self.T)
        return {"tckd": self.alpha * w * tckd, "nckd": self.beta * w * nckd}

    def probe_parts(self, ctx: TrainContext) -> DKDParts:
        """KD, TCKD, NCKD and p_t^T per probe image for the student as it is now (eq. 7)."""
        if self._probe is None or self._teacher_probe is None or self._probe_labels is None:
            raise RuntimeError("dkd: setup(ctx) must run before metrics or snapshots")
        with evaluating(ctx.model):
            student = ctx.model(self._probe)
        return dkd_parts(student, self._teacher_probe, self._probe_labels, self.T)

    def metrics(self, ctx: TrainContext) -> dict[str, float]:
        parts = self.probe_parts(ctx)
        return {"tckd": float(parts.tckd.mean()), "nckd": float(parts.nckd.mean()), "hinton_kd": float(parts.kd.mean()),
                "teacher_target_prob": float(parts.teacher_target.mean()),
                "nckd_weight": float(parts.nckd_weight.mean()),
                "nckd_in_kd": float((parts.nckd_weight * parts.nckd).mean()),
                "warmup": self.warmup_weight(ctx.epoch)}

    def snapshot(self, ctx: TrainContext) -> dict[str, np.ndarray]:
        parts = self.probe_parts(ctx)
        as_array = lambda t: t.detach().cpu().numpy().astype(np.float32)  # noqa: E731
        assert self._probe_labels is not None
        return {"teacher_target_prob": as_array(parts.teacher_target), "nckd_weight": as_array(parts.nckd_weight),
                "tckd": as_array(parts.tckd), "nckd": as_array(parts.nckd), "hinton_kd": as_array(parts.kd),
                "labels": self._probe_labels.cpu().numpy().astype(np.int64),
                "T": np.asarray(self.T, dtype=np.float32)}


@dataclass(frozen=True)
class DKDSnapshot:
    """What one snapshot of the ``dkd`` hook holds, per probe image (arrays of shape (n,)): the
    teacher's target-class probability p_t^T, the NCKD weight 1 - p_t^T, the unweighted TCKD and
    NCKD and Hinton's KD (all times T^2), the labels; and the temperature T."""

    teacher_target_prob: np.ndarray
    nckd_weight: np.ndarray
    tckd: np.ndarray
    nckd: np.ndarray
    kd: np.ndarray
    labels: np.ndarray
    T: float

    @property
    def nckd_in_kd(self) -> np.ndarray:
        """(1 - p_t^T) NCKD per image: the part of NCKD that Hinton's KD keeps (eq. 7)."""
        return self.nckd_weight * self.nckd

    @property
    def suppressed_fraction(self) -> float:
        """The share of the probe batch's NCKD that the teacher's confidence removes from KD:
        1 - sum (1 - p_t^T) NCKD / sum NCKD (0 when NCKD is 0)."""
        total = float(self.nckd.sum())
        return 0.0 if total <= 0 else 1.0 - float(self.nckd_in_kd.sum()) / total


def read_dkd_snapshot(arrays: Mapping[str, np.ndarray], label: str) -> DKDSnapshot:
    """The typed reader of the ``dkd`` hook's arrays stored under ``label`` (``""``: the hook's own dict)."""
    pre = f"{label}/" if label else ""
    if f"{pre}teacher_target_prob" not in arrays:
        raise ValueError(f"these snapshot arrays have no decoupled-KD parts under {pre!r} "
                         f"(was the {NAME!r} hook in the run config?)")
    get = lambda key: np.asarray(arrays[f"{pre}{key}"], dtype=np.float64)  # noqa: E731
    return DKDSnapshot(get("teacher_target_prob"), get("nckd_weight"), get("tckd"), get("nckd"), get("hinton_kd"),
                       np.asarray(arrays[f"{pre}labels"], dtype=np.int64), float(arrays[f"{pre}T"]))


def dkd_options(config: Any) -> dict[str, Any]:
    """The ``dkd`` hook's options in a run config, defaults filled in (the first use of the hook)."""
    values = {name: option.default for name, option in hook_options(DKDHook).items()}
    entries = [h for h in (getattr(config, "hooks", None) or []) if h.get("name") == NAME]
    if entries:
        values.update({k: v for k, v in entries[0].items() if k != "name"})
    return values


def dkd_series_keys(config: Any) -> dict[str, str]:
    """``{series: record key}`` of the parts chart's curves for a run with ``config`` (``"dkd/tckd"``...)."""
    return {name: DKD.metric_key(config, key) for name, key in SERIES_METRICS.items()}


def dkd_config(base: TrainConfig, alpha: float = 1.0, beta: float = 8.0, T: float = 4.0,
               warmup_epochs: int = 0) -> TrainConfig:
    """``base`` (with ``teacher`` set) as a DKD student: base loss cross-entropy plus the ``dkd`` hook."""
    if not base.teacher:
        raise ValueError("decoupled KD needs a teacher: set 'teacher' in the base config")
    hook = {"name": NAME, "alpha": float(alpha), "beta": float(beta), "T": float(T),
            "warmup_epochs": int(warmup_epochs)}
    return replace(base, method=DKD.loss, hooks=[*base.hooks, hook])


def _label(config: Any) -> str:
    options = dkd_options(config)
    return f"DKD α={float(options['alpha']):g} β={float(options['beta']):g}"


# Reddish purple is also FSP / FitNets stage 1's, runs never raced beside the distillation family; every
# Okabe-Ito colour is taken (RKD and logit matching chose yellow), and Hinton's KD is vermillion.
DKD = register_method(MethodSpec(
    name=NAME, label="DKD student", colour=OKABE_ITO["reddish purple"],
    summary="decoupled knowledge distillation: CE + alpha TCKD + beta NCKD, KD = TCKD + (1 - p_t^T) NCKD "
            "(Zhao et al. 2022, eqs. 7-8)",
    hook=DKDHook, loss="ce", claims=uses_hook(NAME), priority=40,
    label_run=_label, reader=read_dkd_snapshot,
    widgets={"DKDMonitor": NAME},
))
