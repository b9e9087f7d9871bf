"""Decoupled knowledge distillation: Zhao, Cui, Song, Qiu, Liang, "Decoupled Knowledge Distillation"
(CVPR 2022), section 3.1.

For one sample of target class t and logits z, p = softmax(z / T). The paper splits p into

* the binary distribution b = [p_t, p_\\t] with p_\\t = sum_{i != t} p_i = 1 - p_t (eq. 2), and
* the non-target distribution p-hat over the K - 1 other classes, p-hat_i = p_i / p_\\t, which is
  softmax(z / T) taken over the non-target logits alone (eq. 3).

Since p_i = p_\\t p-hat_i for i != t, Hinton's KL(p^T || p^S) (T for teacher, S for student) splits
exactly into (eqs. 4-7)

    KD = KL(b^T || b^S) + (1 - p_t^T) KL(p-hat^T || p-hat^S) = TCKD + (1 - p_t^T) NCKD,

with p_t^T the TEACHER's target-class probability: the more confident the teacher, the less of the
non-target knowledge NCKD reaches the student through KD. DKD trains with CE + alpha TCKD + beta NCKD
instead (eq. 8), so beta sets NCKD's weight whatever the teacher's confidence.

Scale: as Hinton's loss (``kd_loss.soft_target_loss``) and mdistiller's ``dkd_loss``
(megvii-research/mdistiller, mdistiller/distillers/DKD.py), TCKD and NCKD here are multiplied by
T^2 and averaged over the batch (a sum over the batch divided by B), so the identity above holds
with every term times T^2 and ``alpha * tckd + beta * nckd`` is mdistiller's ``dkd_loss``.
(mdistiller computes p-hat as softmax(z / T - 1000 * onehot(t)); we take the K - 1 non-target
logits out instead, and log(1 - p_t) as logsumexp over them, which stays exact when p_t is near 1.)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .kd_loss import check_logit_pair, check_targets, kl_rows
from .soft_targets import check_temperature


def _checked(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor, T: float) -> float:
    T = check_temperature(T)
    check_logit_pair(student_logits, teacher_logits, prefix="dkd: ")
    if student_logits.shape[1] < 2:
        raise ValueError(f"dkd: decoupling needs at least 2 classes (a target and a non-target), got "
                         f"{student_logits.shape[1]}")
    check_targets(targets, *student_logits.shape)
    return T


def _non_target(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The K - 1 non-target logits of each row, in class order: (B, K) -> (B, K - 1)."""
    keep = torch.ones_like(logits, dtype=torch.bool).scatter_(1, targets.long().unsqueeze(1), False)
    return logits[keep].reshape(logits.shape[0], logits.shape[1] - 1)


def binary_log_probs(logits: torch.Tensor, targets: torch.Tensor, T: float) -> torch.Tensor:
    """log b = [log p_t, log p_\\t] at temperature T (eq. 2): (B, K) -> (B, 2).

    log p_\\t is logsumexp of the non-target logits / T minus logsumexp of all of them, so it keeps
    its precision where 1 - p_t would round to 0."""
    z = logits / T
    log_all = torch.logsumexp(z, dim=1)
    log_target = z.gather(1, targets.long().unsqueeze(1)).squeeze(1) - log_all
    log_rest = torch.logsumexp(_non_target(z, targets), dim=1) - log_all
    return torch.stack([log_target, log_rest], dim=1)


def non_target_log_probs(logits: torch.Tensor, targets: torch.Tensor, T: float) -> torch.Tensor:
    """log p-hat: log softmax over the non-target classes only, at temperature T (eq. 3): (B, K) -> (B, K - 1)."""
    return torch.log_softmax(_non_target(logits, targets) / T, dim=1)


def _decoupled(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
               T: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(TCKD, NCKD) per sample without T^2, and the teacher's log b (B, 2), sharing one pass over
    the logits (a training step needs both parts: computing them apart took twice the time)."""
    idx = targets.long().unsqueeze(1)
    rows, classes = student_logits.shape
    keep = torch.ones_like(student_logits, dtype=torch.bool).scatter_(1, idx, False)
    sides = []
    for logits in (student_logits, teacher_logits.detach()):
        z = logits / T
        rest = z[keep].reshape(rows, classes - 1)
        log_all, log_rest = torch.logsumexp(z, dim=1), torch.logsumexp(rest, dim=1)
        log_b = torch.stack([z.gather(1, idx).squeeze(1) - log_all, log_rest - log_all], dim=1)
        sides.append((log_b, rest - log_rest.unsqueeze(1)))
    (b_student, hat_student), (b_teacher, hat_teacher) = sides
    return kl_rows(b_teacher, b_student), kl_rows(hat_teacher, hat_student), b_teacher


def tckd_per_sample(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
                    T: float) -> torch.Tensor:
    """T^2 KL(b^T || b^S) per sample, the target-class knowledge distillation of eq. 7: a (B,) tensor.
    The teacher's side is detached (only the student learns)."""
    T = _checked(student_logits, teacher_logits, targets, T)
    return _decoupled(student_logits, teacher_logits, targets, T)[0] * (T * T)


def nckd_per_sample(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
                    T: float) -> torch.Tensor:
    """T^2 KL(p-hat^T || p-hat^S) per sample, the non-target-class knowledge distillation of eq. 7: (B,)."""
    T = _checked(student_logits, teacher_logits, targets, T)
    return _decoupled(student_logits, teacher_logits, targets, T)[1] * (T * T)


def tckd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor, T: float) -> torch.Tensor:
    """TCKD averaged over the batch (0-d), times T^2 (mdistiller's ``tckd_loss``)."""
    return tckd_per_sample(student_logits, teacher_logits, targets, T).mean()


def nckd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor, T: float) -> torch.Tensor:
    """NCKD averaged over the batch (0-d), times T^2 (mdistiller's ``nckd_loss``)."""
    return nckd_per_sample(student_logits, teacher_logits, targets, T).mean()


def tckd_and_nckd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
                  T: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(TCKD, NCKD), batch means times T^2, in one pass: what a training step needs."""
    T = _checked(student_logits, teacher_logits, targets, T)
    tc, nc, _ = _decoupled(student_logits, teacher_logits, targets, T)
    return tc.mean() * (T * T), nc.mean() * (T * T)


def check_weight(value: float, name: str) -> float:
    """``value`` as a float if finite and >= 0; a ``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"dkd: {name} must be a number >= 0, got {value!r}")
    if not (float(value) >= 0.0 and float(value) < float("inf")):
        raise ValueError(f"dkd: {name} must be finite and >= 0, got {value!r}")
    return float(value)


def dkd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor, alpha: float,
             beta: float, T: float) -> torch.Tensor:
    """alpha TCKD + beta NCKD (eq. 8 without its cross-entropy), both times T^2, batch means (0-d)."""
    alpha, beta = check_weight(alpha, "alpha"), check_weight(beta, "beta")
    tc, nc = tckd_and_nckd(student_logits, teacher_logits, targets, T)
    return alpha * tc + beta * nc


@dataclass(frozen=True)
class DKDParts:
    """Per-sample parts of Hinton's loss at one temperature (each a (B,) tensor, all times T^2):
    ``kd`` = T^2 KL(p^T || p^S), ``tckd``, ``nckd`` and the teacher's target-class probability
    ``teacher_target`` = p_t^T. Eq. 7 says ``kd == tckd + nckd_weight * nckd``; ``residual`` is the
    difference (zero up to rounding)."""

    kd: torch.Tensor
    tckd: torch.Tensor
    nckd: torch.Tensor
    teacher_target: torch.Tensor
    nckd_weight: torch.Tensor  # 1 - p_t^T = p_\t^T, from logsumexp (exact where p_t^T is near 1)

    @property
    def residual(self) -> torch.Tensor:
        """KD - (TCKD + (1 - p_t^T) NCKD) per sample: the identity of eq. 7 checked."""
        return self.kd - (self.tckd + self.nckd_weight * self.nckd)


def dkd_parts(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
              T: float) -> DKDParts:
    """Hinton's KD, TCKD, NCKD and p_t^T per sample at temperature ``T`` (eq. 7), for plots and checks."""
    T = _checked(student_logits, teacher_logits, targets, T)
    teacher = teacher_logits.detach()
    kd = kl_rows(torch.log_softmax(teacher / T, dim=1), torch.log_softmax(student_logits / T, dim=1)) * (T * T)
    tc, nc, log_b_teacher = _decoupled(student_logits, teacher, targets, T)
    b_teacher = log_b_teacher.exp()
    return DKDParts(kd=kd, tckd=tc * (T * T), nckd=nc * (T * T), teacher_target=b_teacher[:, 0],
                    nckd_weight=b_teacher[:, 1])
