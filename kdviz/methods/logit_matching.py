"""The ``"logit_matching"`` training hook and method: Ba & Caruana, "Do Deep Nets Really Need to be
Deep?" (NIPS 2014, section 2.2): the student regresses the teacher's logits with an L2 loss.

Config entries (plain JSON, see ``kdviz.engine.hooks``)::

    {"name": "logit_matching"}                                   # weight 0.1, plain logits
    {"name": "logit_matching", "weight": 0.5, "center": true}    # centred logits, half the term

The hook needs a teacher in the run config and adds ``{"logit_l2": weight * 1/(2B) sum_b ||z_s - z_t||^2}``
(``kdviz.distill.logit_matching.logit_l2_loss``) to the base loss. With the base loss ``"ce"`` that is
cross-entropy on the labels plus the logit term, as seed texts on distillation show it; with ``"none"``
it is Ba & Caruana's own recipe, the logits alone (their student never sees a label).

``weight`` defaults to 0.1: the term's gradient with respect to a student logit is weight * (z_s - z_t)/B,
and a trained teacher's logits span tens of units where cross-entropy's gradient (q - y)/B stays below 1.
Measured on digits (teacher MLP 64 hidden, 91% test; student MLP 16 hidden, SGD lr 0.05, momentum 0.9,
60 steps): weight 1 collapsed to chance (10%), weight 0.1 reached 88% with the probe L2 falling 50 -> 1.7.

**Why a hook on ``"ce"`` and not a base loss ``"logit_l2"`` weighted by the config's ``alpha``.** The
engine gives per-evaluation metrics, snapshots and typed, validated options only to hooks
(``kdviz.engine.hooks``): a base loss is a function of (context, batch) with no options of its own, so
``center`` would need a new ``TrainConfig`` field, and the live probe metrics below (the whole point of
this slice) would need a second, metrics-only hook anyway. One hook holds the loss, its options and its
probe, as attention transfer does. The convex weighting is one line away:
alpha * L2 + (1 - alpha) * CE = (1 - alpha) * (CE + weight * L2) with weight = alpha / (1 - alpha),
the same loss up to a factor (1 - alpha) on the learning rate; ``config.alpha`` and ``config.T`` are
not read, so they cannot silently mean something else here than in Hinton's KD.

Evaluations log, on a fixed probe batch (the first ``probe_size`` test images): ``probe_l2`` (Ba &
Caruana's loss, plain logits, without the weight), ``probe_l2_centered``, ``probe_limit`` (the centred
one over K: the T -> inf limit of Hinton's T^2 KL, Hinton et al. 2015 section 2.1, eqs. 2-4) and, per
temperature T in ``temperatures``, ``t2kl_T<T>`` (kdviz's ``soft_target_loss``, T^2 times the batch-mean
KL) and ``ratio_T<T>`` = t2kl / probe_limit, which tends to 1 as T grows. Snapshots keep the probe
batch's student and teacher logits and labels, read back by ``read_logit_matching_snapshot``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..distill.logit_matching import hinton_limit, limit_ratios, logit_l2_loss, scaled_hinton_losses
from ..distill.soft_targets import check_temperature
from ..engine.evaluation import evaluating
from ..engine.hooks import HOOKS, StepBatch, TrainContext, TrainingHook, hook_options
from ..palette import ROLE_COLORS
from ._features import probe_images, require_teacher
from .base import MethodSpec, register_method, uses_hook

NAME = "logit_matching"
TERM = "logit_l2"  # the loss term's key: logged per step as "<hook label>/logit_l2"
LABEL_FREE_LOSS = "none"  # the engine's zero base loss: Ba & Caruana's student regresses logits only
MAX_TEMPERATURES = 8


def temperature_key(prefix: str, T: float) -> str:
    """The metric name of a per-temperature probe value: ``("ratio", 4.0)`` -> ``"ratio_T4"``."""
    return f"{prefix}_T{T:g}"


def _checked_temperatures(temperatures: Sequence[float]) -> tuple[float, ...]:
    if isinstance(temperatures, (str, bytes)) or not isinstance(temperatures, Sequence):
        raise ValueError(f"{NAME}: temperatures must be a list of numbers, got {temperatures!r}")
    if not 1 <= len(temperatures) <= MAX_TEMPERATURES:
        raise ValueError(f"{NAME}: give 1 to {MAX_TEMPERATURES} temperatures, got {len(temperatures)}")
    try:
        return tuple(check_temperature(T) for T in temperatures)
    except ValueError as exc:
        raise ValueError(f"{NAME}: {exc}") from None


@HOOKS.register(NAME)
class LogitMatchingHook(TrainingHook):
    """Adds ``weight`` times Ba & Caruana's L2 distance between the student's and the teacher's logits."""

    def __init__(self, weight: float = 0.1, center: bool = False, probe_size: int = 64,
                 temperatures: Sequence[float] = (1.0, 4.0, 20.0, 100.0)) -> None:
        if not (0.0 < float(weight) < math.inf):
            raise ValueError(f"{NAME}: weight must be a positive finite number, got {weight} "
                             f"(a zero weight trains a scratch student: use the scratch run)")
        if not isinstance(center, bool):
            raise ValueError(f"{NAME}: center must be true or false, got {center!r}")
        if int(probe_size) < 1:
            raise ValueError(f"{NAME}: probe_size must be at least 1, got {probe_size}")
        self.weight, self.center, self.probe_size = float(weight), center, int(probe_size)
        self.temperatures = _checked_temperatures(temperatures)
        self._probe: torch.Tensor | None = None
        self._probe_labels: np.ndarray | None = None
        self._teacher_probe: torch.Tensor | None = None

    def setup(self, ctx: TrainContext) -> None:
        """Fix the probe batch and keep the teacher's logits on it (eval mode, like every evaluation)."""
        teacher = require_teacher(ctx, NAME)
        self._probe = probe_images(ctx, self.probe_size)
        self._probe_labels = np.asarray(ctx.dataset.test_labels[: len(self._probe)], dtype=np.int64)
        with evaluating(teacher):
            self._teacher_probe = teacher(self._probe).detach()

    def loss_terms(self, ctx: TrainContext, batch: StepBatch) -> dict[str, torch.Tensor]:
        if batch.teacher_logits is None:
            raise ValueError(f"the {NAME!r} hook got no teacher logits: set 'teacher' in the run config")
        return {TERM: self.weight * logit_l2_loss(batch.logits, batch.teacher_logits, center=self.center)}

    def probe_logits(self, ctx: TrainContext) -> tuple[torch.Tensor, torch.Tensor]:
        """(student, teacher) logits on the probe batch, both (probe_size, K), student in eval mode."""
        if self._probe is None or self._teacher_probe is None:
            raise RuntimeError(f"{NAME}: setup(ctx) must run before metrics or snapshots")
        with evaluating(ctx.model):
            return ctx.model(self._probe).detach(), self._teacher_probe

    def metrics(self, ctx: TrainContext) -> dict[str, float]:
        return probe_values(*self.probe_logits(ctx), self.temperatures)

    def snapshot(self, ctx: TrainContext) -> dict[str, np.ndarray]:
        student, teacher = self.probe_logits(ctx)
        assert self._probe_labels is not None
        return {"student_logits": student.cpu().numpy().astype(np.float32),
                "teacher_logits": teacher.cpu().numpy().astype(np.float32),
                "labels": self._probe_labels, "temperatures": np.asarray(self.temperatures, dtype=np.float64)}


def probe_values(student: Any, teacher: Any, temperatures: Sequence[float]) -> dict[str, float]:
    """The evaluation metrics of the hook from probe logits (float64 throughout)."""
    classes = np.shape(student)[1]
    limit = hinton_limit(student, teacher, center=True)
    out = {"probe_l2": hinton_limit(student, teacher, center=False) * classes, "probe_l2_centered": limit * classes,
           "probe_limit": limit}
    scaled = scaled_hinton_losses(student, teacher, temperatures)
    ratios = limit_ratios(student, teacher, temperatures)  # NaN once the centred logits agree exactly
    for T, t2kl, ratio in zip(temperatures, scaled, ratios):
        out[temperature_key("t2kl", T)] = float(t2kl)
        out[temperature_key("ratio", T)] = float(ratio)
    return out


@dataclass(frozen=True)
class LogitMatchingSnapshot:
    """One snapshot of the ``logit_matching`` hook: probe logits of student and teacher (n x K), the
    probe images' labels (n,) and the temperatures the hook logs."""

    student: np.ndarray
    teacher: np.ndarray
    labels: np.ndarray
    temperatures: np.ndarray

    def l2(self, center: bool = False) -> float:
        """Ba & Caruana's loss 1/(2n) sum ||z_s - z_t||^2 on the probe batch (``center``: centred logits)."""
        return hinton_limit(self.student, self.teacher, center=center) * self.student.shape[1]

    def ratios(self, temperatures: Sequence[float]) -> np.ndarray:
        """(T^2 KL) / (centred L2 / K) at each T (``kdviz.distill.logit_matching.limit_ratios``)."""
        return limit_ratios(self.student, self.teacher, temperatures)


def read_logit_matching_snapshot(arrays: Mapping[str, np.ndarray], label: str) -> LogitMatchingSnapshot:
    """The typed reader of the hook's arrays stored under ``label`` (``""``: the hook's own dict)."""
    pre = f"{label}/" if label else ""
    if f"{pre}student_logits" not in arrays:
        raise ValueError(f"these snapshot arrays have no probe logits under {pre!r} "
                         f"(was the {NAME!r} hook in the run config?)")
    return LogitMatchingSnapshot(np.asarray(arrays[f"{pre}student_logits"], dtype=np.float64),
                                 np.asarray(arrays[f"{pre}teacher_logits"], dtype=np.float64),
                                 np.asarray(arrays[f"{pre}labels"]), np.asarray(arrays[f"{pre}temperatures"]))


def hook_settings(config: Any) -> dict[str, Any]:
    """The first ``logit_matching`` entry's options with defaults filled in (``weight``, ``center``...)."""
    entries = [h for h in (getattr(config, "hooks", None) or []) if h.get("name") == NAME]
    settings = {name: option.default for name, option in hook_options(LogitMatchingHook).items()}
    settings.update({k: v for k, v in (entries[0] if entries else {}).items() if k != "name"})
    return settings


def _label_run(config: Any) -> str:
    settings = hook_settings(config)
    extras = (" centred" if settings["center"] else "") + (" no labels" if getattr(config, "method", "") == LABEL_FREE_LOSS else "")
    return f"logits w={float(settings['weight']):g}{extras}"


LOGIT_MATCHING = register_method(MethodSpec(
    name=NAME, label="logit-matching student", colour=ROLE_COLORS["logit matching"],
    summary="logit matching: regress the teacher's logits with L2, 1/(2B) sum ||z_s - z_t||^2 (Ba & Caruana "
            "2014), the T -> inf limit of Hinton's T^2 KL (Hinton et al. 2015, section 2.1)",
    hook=LogitMatchingHook, loss="ce", claims=uses_hook(NAME), priority=40,
    label_run=_label_run, reader=read_logit_matching_snapshot,
    widgets={"LogitMatchingMonitor": NAME},
))
