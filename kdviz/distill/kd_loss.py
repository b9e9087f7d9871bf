"""The knowledge-distillation loss of Hinton, Vinyals, Dean 2015, section 2:

    L = alpha * T^2 * KL( softmax(t / T) || softmax(s / T) )  +  (1 - alpha) * CE(s, y)

averaged over the batch. The T^2 factor keeps the soft part's gradient magnitude independent of T
(section 2: "it is important to multiply them by T^2"); we keep it for every alpha, including 0,
where other tools drop it. Its gradient with respect to the student logits is T * (q - p) / B,
with q = softmax(s / T), p = softmax(t / T) (section 2.1, eq. 2 times T^2).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from .soft_targets import check_temperature


class KDLossParts(NamedTuple):
    """The total loss and its two weighted parts (each a 0-d tensor), for plotting."""

    total: torch.Tensor
    soft: torch.Tensor
    hard: torch.Tensor


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float) -> torch.Tensor:
    """T^2 * KL(softmax(t/T) || softmax(s/T)), averaged over the batch (unweighted by alpha)."""
    T = check_temperature(T)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student logits {tuple(student_logits.shape)} and teacher logits "
            f"{tuple(teacher_logits.shape)} must have the same shape"
        )
    log_q = F.log_softmax(student_logits / T, dim=-1)
    log_p = F.log_softmax(teacher_logits.detach() / T, dim=-1)
    kl = F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)
    return kl * (T * T)


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    targets: torch.Tensor | None,
    T: float,
    alpha: float,
) -> KDLossParts:
    """Hinton et al. 2015's distillation loss; returns ``KDLossParts(total, soft, hard)``.

    Shapes: logits (B, K), targets (B,) int64. ``alpha`` in [0, 1] weights the soft part;
    ``alpha = 1`` uses soft targets only (``targets`` may be None), ``alpha = 0`` hard labels only
    (``teacher_logits`` may be None). ``soft`` and ``hard`` are already multiplied by their weights,
    so ``total == soft + hard``.
    """
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    zero = student_logits.new_zeros(())
    if alpha > 0:
        if teacher_logits is None:
            raise ValueError("teacher_logits are required when alpha > 0")
        soft = alpha * soft_target_loss(student_logits, teacher_logits, T)
    else:
        check_temperature(T)
        soft = zero
    if alpha < 1:
        if targets is None:
            raise ValueError("targets are required when alpha < 1")
        hard = (1.0 - alpha) * F.cross_entropy(student_logits, targets)
    else:
        hard = zero
    return KDLossParts(soft + hard, soft, hard)
