"""Knowledge distillation (Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network",
2015, section 2): the base loss ``"kd"`` and the method's spec.

``alpha * T^2 * KL(p_T || q_T) + (1 - alpha) * CE(y, q_1)`` with the teacher's logits for the same
batch (``kdviz.distill.kd_loss``, which keeps the T^2 factor for every alpha). Its pages are the
soft-targets explorer and the live KD-vs-scratch run; its widgets the same two views in Jupyter.
"""
from __future__ import annotations

from ..distill import KDLossParts, kd_loss
from ..engine.hooks import StepBatch, TrainContext
from ..engine.losses import LOSSES, BaseLoss
from ..palette import ROLE_COLORS
from .base import MethodSpec, PageSpec, register_method, role_hooks, uses_loss


def kd_base_loss(ctx: TrainContext, batch: StepBatch) -> KDLossParts:
    """Hinton et al.'s loss at the run's ``T`` and ``alpha`` (config fields)."""
    cfg = ctx.config
    return kd_loss(batch.logits, batch.teacher_logits, batch.labels, T=cfg.T, alpha=cfg.alpha)


LOSSES.register("kd")(BaseLoss(kd_base_loss, True, "knowledge distillation, Hinton et al. 2015", uses_temperature=True))


def _claims(config) -> bool:
    return uses_loss("kd")(config) and not role_hooks(config)


KD = register_method(MethodSpec(
    name="kd", label="KD student", colour=ROLE_COLORS["kd student"],
    summary="knowledge distillation: soft targets at temperature T (Hinton et al. 2015, section 2)",
    loss="kd", claims=_claims, priority=10,
    label_run=lambda config: f"KD T={config.T:g}",
    pages=(PageSpec("soft_targets", "Soft targets", ":material/thermostat:", order=0, default=True),
           PageSpec("train_student", "Train a student", ":material/school:", order=10),
           PageSpec("family", "Which distillation?", ":material/compare_arrows:", order=15),
           PageSpec("generations", "Generations", ":material/family_history:", order=16)),
    widgets={"TemperatureExplorer": "temperature", "TrainingMonitor": "monitor"},
))
