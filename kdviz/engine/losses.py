"""The base losses of a run, looked up by name (``config.method``) in ``LOSSES``.

Each returns ``KDLossParts(total, soft, hard)`` so every run logs the same three curves. The
engine registers one loss of its own, ``"none"`` (zero: the loss comes only from hooks, e.g. FSP
stage 1, Yim et al. 2017, section 3.3); every other base loss (cross-entropy, Hinton et al.'s
knowledge distillation...) is registered by its method in ``kdviz.methods`` and loaded on the
registry's first lookup. Hooks add their own terms on top.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..distill import KDLossParts
from ..registry import Registry
from .hooks import StepBatch, TrainContext
from .plugins import load_plugins


@dataclass(frozen=True)
class BaseLoss:
    """A base loss, whether it needs a teacher's logits, and whether ``config.T`` enters it
    (then a divergence message names the temperature as a likely cause)."""

    loss: Callable[[TrainContext, StepBatch], KDLossParts]
    needs_teacher: bool
    description: str
    uses_temperature: bool = False


LOSSES: Registry = Registry("training method", discover=load_plugins)


def _none(ctx: TrainContext, batch: StepBatch) -> KDLossParts:
    zero = batch.logits.new_zeros(())
    return KDLossParts(zero, zero, zero)


LOSSES.register("none")(BaseLoss(_none, False, "no base loss: hook loss terms only"))
