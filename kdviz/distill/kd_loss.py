"""The knowledge-distillation loss of Hinton, Vinyals, Dean 2015, section 2:

    L = alpha * T^2 * KL( softmax(t / T) || softmax(s / T) )  +  (1 - alpha) * CE(s, y)

averaged over the batch. The T^2 factor keeps the soft part's gradient magnitude independent of T
(section 2: "it is important to multiply them by T^2"); we keep it for every alpha, including
alpha = 1 (soft targets only), where other tools drop it. Its gradient with respect to the student
logits is T * (q - p) / B, with q = softmax(s / T), p = softmax(t / T) (section 2.1, eq. 2 times T^2).

Convention against torchdistill's ``KDLoss`` (torchdistill/losses/mid_level.py), whose ``alpha``
weights the *hard* cross-entropy: L = alpha' CE + (1 - alpha') T^2 KL. kdviz's ``alpha = a`` is
torchdistill's ``alpha' = 1 - a``, and the two losses agree for every a < 1. At kdviz's alpha = 1,
torchdistill's alpha' = 0, torchdistill returns the bare KL without T^2 (T^2 times smaller than
ours); so do tools that compute KL(soft) alone when no labels are given.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from .soft_targets import check_temperature, log_soften


class KDLossParts(NamedTuple):
    """The total loss and its two weighted parts (each a 0-d tensor), for plotting."""

    total: torch.Tensor
    soft: torch.Tensor
    hard: torch.Tensor


def check_logits(logits: object, which: str = "student logits") -> torch.Tensor:
    """``logits`` if it is a 2-D (B, K) floating tensor with B >= 1 and K >= 1; a ``ValueError``
    (``TypeError`` for a non-tensor) naming ``which`` and the shape otherwise.

    1-D logits are refused rather than read as one sample: the soft part's batch mean would divide
    by K instead of B and silently shrink the loss K times."""
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"{which} must be a torch.Tensor, got {type(logits).__name__}")
    if logits.ndim != 2:
        raise ValueError(f"{which} must be 2-D (batch, classes), got shape {tuple(logits.shape)}")
    if logits.shape[0] == 0:
        raise ValueError(f"{which}: the batch is empty (shape {tuple(logits.shape)}); the batch mean of nothing is NaN")
    if logits.shape[1] == 0:
        raise ValueError(f"{which} have no classes (shape {tuple(logits.shape)})")
    if not torch.is_floating_point(logits):
        raise ValueError(f"{which} must be floating point, got {logits.dtype}")
    return logits


def check_targets(targets: object, batch: int, classes: int) -> torch.Tensor:
    """``targets`` if it is a (B,) integer tensor of class indices in 0..K-1; a ``ValueError`` otherwise."""
    if not isinstance(targets, torch.Tensor):
        raise TypeError(f"targets must be a torch.Tensor of class indices, got {type(targets).__name__}")
    if tuple(targets.shape) != (batch,):
        raise ValueError(f"targets must have shape ({batch},), one class index per sample, got {tuple(targets.shape)}")
    if targets.dtype.is_floating_point or targets.dtype.is_complex or targets.dtype == torch.bool:
        raise ValueError(f"targets must be integer class indices, got {targets.dtype}")
    low, high = int(targets.min()), int(targets.max())
    if low < 0 or high >= classes:
        raise ValueError(f"targets must be class indices in 0..{classes - 1}, got values from {low} to {high}")
    return targets


def check_logit_pair(first: object, second: object, names: tuple[str, str] = ("student logits", "teacher logits"),
                     prefix: str = "") -> None:
    """Both are logits (``check_logits``) of the same shape (B, K); a ``ValueError`` naming both
    (``names``, after ``prefix``, e.g. ``"dkd: "``) otherwise."""
    check_logits(first, names[0])
    check_logits(second, names[1])
    if first.shape != second.shape:
        raise ValueError(f"{prefix}{names[0]} {tuple(first.shape)} and {names[1]} {tuple(second.shape)} "
                         f"must have the same shape")


def kl_rows(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) per row from log-probabilities, (B, K) -> (B,): sum_k p_k (log p_k - log q_k) over the
    classes with p_k > 0 (0 log 0 = 0), so a probability that underflows to exactly 0 adds 0, not NaN."""
    p = log_p.exp()
    return torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p)).sum(dim=1)


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float) -> torch.Tensor:
    """T^2 * KL(softmax(t/T) || softmax(s/T)), averaged over the batch (unweighted by alpha).

    Both logits are (B, K) with B >= 1 (``check_logits``). The KL is summed as
    sum_k p_k (log p_k - log q_k) over the classes with p_k > 0 (0 log 0 = 0), so a tiny T, where
    some probabilities underflow to exactly 0, gives the one-hot limit rather than 0 * inf = NaN."""
    T = check_temperature(T)
    check_logit_pair(student_logits, teacher_logits)
    log_q = log_soften(student_logits, T)
    log_p = log_soften(teacher_logits.detach(), T)
    return kl_rows(log_p, log_q).sum() / student_logits.shape[0] * (T * T)


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    targets: torch.Tensor | None,
    T: float,
    alpha: float,
) -> KDLossParts:
    """Hinton et al. 2015's distillation loss; returns ``KDLossParts(total, soft, hard)``.

    Shapes: logits (B, K) with B >= 1, targets (B,) integer class indices; anything else (1-D logits,
    an empty batch, mismatched shapes, out-of-range labels) is a ``ValueError`` naming the problem. ``alpha`` in [0, 1] weights the soft part;
    ``alpha = 1`` uses soft targets only (``targets`` may be None), ``alpha = 0`` hard labels only
    (``teacher_logits`` may be None). ``soft`` and ``hard`` are already multiplied by their weights,
    so ``total == soft + hard``.
    """
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    check_logits(student_logits, "student logits")
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
        check_targets(targets, *student_logits.shape)
        hard = (1.0 - alpha) * F.cross_entropy(student_logits, targets)
    else:
        hard = zero
    return KDLossParts(soft + hard, soft, hard)
