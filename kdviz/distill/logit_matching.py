"""Logit matching (Ba & Caruana, "Do Deep Nets Really Need to be Deep?", NIPS 2014, section 2.2) and
why it is the high-temperature limit of Hinton's loss (Hinton, Vinyals, Dean 2015, section 2.1).

**Ba & Caruana's loss.** The student regresses the teacher's logits z_t with an L2 loss,

    L = 1/(2B) sum_b ||z_s(b) - z_t(b)||_2^2            (their T: the number of cases, here a batch of B)

summed over the K classes and averaged over the batch (``logit_l2_loss``). ``center=True`` first
subtracts each sample's mean logit from both sides (``center_logits``): softmax ignores a shift of
all logits, so the centred distance is the part of the mismatch that changes any probability.

**Hinton's limit.** Hinton et al.'s eq. 2 gives the gradient of the soft cross-entropy with respect
to a student logit, dC/dz_i = (q_i - p_i) / T; for T large against the logits, eqs. 3-4 give
dC/dz_i ~ (z_i - v_i) / (N T^2) when the logits are zero-mean for each case (N: the number of
classes, K here). So T^2 * C, and T^2 * KL (the same up to the teacher's entropy), tends to
(1/(2K)) sum_i (z_i - v_i)^2 per sample. Precisely: KL(softmax(v/T) || softmax(z/T)) is the Bregman
divergence of logsumexp, whose Hessian at v/T is Sigma = diag(p) - p p^T, and Sigma -> (I - 11^T/K)/K
as T -> inf, hence

    T^2 KL  ->  (1/(2K)) ||c(z - v)||^2,     c(x) = x - mean(x),     relative error O(max(|z|, |v|) / T),

for *any* logits; "zero-mean" is what makes the plain distance and the centred one agree. The 1/T
term comes from the third cumulant: ratio = 1 + c1/T + O(1/T^2) with
c1 = sum (D~^2 v~ + D~^3 / 3) / sum D~^2 (D = z - v, ~: minus the mean over classes); on random logits
of scale 3 with K = 10, |c1| is 0.04 to 0.2, so the ratio is within 0.2% of 1 at T = 100.

**kdviz's normalisation.** ``kdviz.distill.kd_loss.soft_target_loss`` is T^2 * (1/B) sum_b KL_b and
``logit_l2_loss`` is (1/(2B)) sum_b ||z_s - z_t||^2, both batch means, so

    soft_target_loss(s, t, T)  ->  logit_l2_loss(s, t, center=True) / K     as T -> inf

(``hinton_limit``); ``limit_ratios`` gives the ratio of the two at several T, which tends to 1.
Peers: torchdistill configures logit matching as ``nn.MSELoss`` on the classifier outputs, whose
``reduction='mean'`` divides by B*K and has no 1/2: MSE_mean = 2/K * ``logit_l2_loss``, so T^2 KL
tends to MSE_mean / 2 on centred logits (tests/distill/test_logit_matching.py checks all three).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .kd_loss import check_logit_pair, check_logits, soft_target_loss
from .soft_targets import check_temperature


def center_logits(logits: torch.Tensor) -> torch.Tensor:
    """Each row minus its mean: (B, K) -> (B, K) with zero-mean rows (the same softmax at every T)."""
    return logits - logits.mean(dim=1, keepdim=True)


def _pair(student: Any, teacher: Any) -> tuple[torch.Tensor, torch.Tensor]:
    check_logit_pair(student, teacher)
    return student, teacher


def logit_l2_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, center: bool = False) -> torch.Tensor:
    """Ba & Caruana 2014's loss, 1/(2B) sum_b ||z_s(b) - z_t(b)||^2 (a 0-d tensor; the teacher side is detached).

    Both logits are (B, K) floating tensors of the same shape (``check_logits``). ``center``: compare
    the per-sample centred logits (``center_logits``), the distance Hinton's loss tends to."""
    student, teacher = _pair(student_logits, teacher_logits)
    teacher = teacher.detach()
    difference = center_logits(student) - center_logits(teacher) if center else student - teacher
    return (difference * difference).sum() / (2.0 * student.shape[0])


def _as_float64(logits: Any, which: str) -> torch.Tensor:
    if isinstance(logits, torch.Tensor):
        return check_logits(logits.detach(), which).to(torch.float64)
    array = np.asarray(logits)
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{which} must be floating-point numbers, got {array.dtype}")
    return check_logits(torch.from_numpy(array.astype(np.float64)), which)


def _temperatures(temperatures: Sequence[float]) -> list[float]:
    values = [check_temperature(T) for T in np.atleast_1d(np.asarray(temperatures, dtype=object)).tolist()]
    if not values:
        raise ValueError("give at least one temperature")
    return values


def hinton_limit(student_logits: Any, teacher_logits: Any, center: bool = True) -> float:
    """The limit of ``soft_target_loss`` as T -> inf: ``logit_l2_loss(center=True) / K`` (float64).

    ``center=False`` gives the plain distance over K instead: the limit only for zero-mean logits."""
    student = _as_float64(student_logits, "student logits")
    teacher = _as_float64(teacher_logits, "teacher logits")
    return float(logit_l2_loss(student, teacher, center=center)) / student.shape[1]


def scaled_hinton_losses(student_logits: Any, teacher_logits: Any, temperatures: Sequence[float]) -> np.ndarray:
    """T^2 * KL(softmax(z_t/T) || softmax(z_s/T)), batch mean, at each T (``soft_target_loss`` in float64:
    at T = 100 the KL is about 1e-4 of the logits' scale and float32 would lose its digits)."""
    student = _as_float64(student_logits, "student logits")
    teacher = _as_float64(teacher_logits, "teacher logits")
    _pair(student, teacher)
    return np.array([float(soft_target_loss(student, teacher, T)) for T in _temperatures(temperatures)])


def limit_ratios(student_logits: Any, teacher_logits: Any, temperatures: Sequence[float],
                 center: bool = True) -> np.ndarray:
    """(T^2 KL) / ``hinton_limit`` at each T: tends to 1 as T grows. With ``center=False`` it tends to
    ||c(z_s - z_t)||^2 / ||z_s - z_t||^2 <= 1 instead (1 only when the mean logits agree). NaN where
    the limit is 0 (identical centred logits)."""
    student = _as_float64(student_logits, "student logits")
    teacher = _as_float64(teacher_logits, "teacher logits")
    scaled = scaled_hinton_losses(student, teacher, temperatures)
    limit = hinton_limit(student, teacher, center=center)
    largest = max(float(student.abs().max()), float(teacher.abs().max()))
    rounding = 1e-20 * max(1.0, largest) ** 2  # float64 differences of equal logits leave ~1e-32 |z|^2
    return scaled / limit if limit > rounding else np.full_like(scaled, np.nan)


__all__ = ["center_logits", "hinton_limit", "limit_ratios", "logit_l2_loss", "scaled_hinton_losses"]
