"""Runs trained on the hard labels alone: the teacher, the scratch student, a fine-tuned student.

All three use the base loss ``"ce"`` (cross-entropy, registered here). They differ by what the
config says around it: a run named ``teacher...`` (``train_teacher_cached`` names them so), or one
another run distils from, is the teacher; a run initialised from another run (``init_from``; e.g.
stage 2 of Yim et al.'s two-stage training) is a fine-tuned student; any other is the scratch
student, the baseline of Hinton et al. 2015 (section 3) and of every comparison in the lab.
"""
from __future__ import annotations

import torch.nn.functional as F

from ..distill import KDLossParts
from ..engine.hooks import StepBatch, TrainContext
from ..engine.losses import LOSSES, BaseLoss
from ..palette import ROLE_COLORS
from .base import MethodSpec, register_method, role_hooks, uses_loss


def cross_entropy_loss(ctx: TrainContext, batch: StepBatch) -> KDLossParts:
    """Cross-entropy on the hard labels; ``hard = total``, ``soft = 0``."""
    hard = F.cross_entropy(batch.logits, batch.labels)
    return KDLossParts(hard, hard.new_zeros(()), hard)


LOSSES.register("ce")(BaseLoss(cross_entropy_loss, False, "cross-entropy on hard labels (teacher or scratch student)"))


def _plain_ce(config) -> bool:
    return uses_loss("ce")(config) and not role_hooks(config)


def _is_teacher(config) -> bool:
    return _plain_ce(config) and str(getattr(config, "name", "")).lower().startswith("teacher")


TEACHER = register_method(MethodSpec(
    name="teacher", label="teacher", colour=ROLE_COLORS["teacher"],
    summary="the large model whose soft targets the students learn from", loss="ce",
    claims=_is_teacher, priority=30,
))

SCRATCH = register_method(MethodSpec(
    name="scratch", label="scratch student", colour=ROLE_COLORS["scratch student"],
    summary="the same student trained on the hard labels alone: the baseline", loss="ce",
    claims=lambda config: _plain_ce(config) and not getattr(config, "init_from", None), priority=10,
    label_run=lambda config: "scratch",
))

FINE_TUNE = register_method(MethodSpec(
    name="fine_tune", label="fine-tuned student", colour=ROLE_COLORS["fsp student"],
    summary="cross-entropy from another run's weights (e.g. stage 2 of Yim et al. 2017, section 3.3)", loss="ce",
    claims=lambda config: _plain_ce(config) and bool(getattr(config, "init_from", None)), priority=20,
    label_run=lambda config: "fine-tuned",
))
