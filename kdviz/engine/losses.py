"""The training methods' base losses, looked up by name (``config.method``) in ``METHODS``.

Each returns ``KDLossParts(total, soft, hard)`` so every run logs the same three curves:

* ``"ce"``: cross-entropy on the hard labels (a teacher, or a student trained from scratch);
  ``hard = total``, ``soft = 0``.
* ``"kd"``: Hinton, Vinyals, Dean 2015, section 2: ``alpha * T^2 * KL(p_T || q_T) + (1 - alpha) * CE``
  (``kdviz.distill.kd_loss``), with the teacher's logits for the same (un-augmented or jittered) batch.
* ``"none"``: zero; the loss comes only from hooks (FSP stage 1, Yim et al. 2017, section 3.3).

Hooks add their own terms on top of these.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch.nn.functional as F

from ..distill import KDLossParts, kd_loss
from ..registry import Registry
from .hooks import StepBatch, TrainContext


@dataclass(frozen=True)
class Method:
    """A base loss and whether it needs a teacher's logits."""

    loss: Callable[[TrainContext, StepBatch], KDLossParts]
    needs_teacher: bool
    description: str


METHODS: Registry = Registry("training method")


def _ce(ctx: TrainContext, batch: StepBatch) -> KDLossParts:
    hard = F.cross_entropy(batch.logits, batch.labels)
    return KDLossParts(hard, hard.new_zeros(()), hard)


def _kd(ctx: TrainContext, batch: StepBatch) -> KDLossParts:
    cfg = ctx.config
    return kd_loss(batch.logits, batch.teacher_logits, batch.labels, T=cfg.T, alpha=cfg.alpha)


def _none(ctx: TrainContext, batch: StepBatch) -> KDLossParts:
    zero = batch.logits.new_zeros(())
    return KDLossParts(zero, zero, zero)


METHODS.register("ce")(Method(_ce, False, "cross-entropy on hard labels (teacher or scratch student)"))
METHODS.register("kd")(Method(_kd, True, "knowledge distillation, Hinton et al. 2015"))
METHODS.register("none")(Method(_none, False, "no base loss: hook loss terms only"))
