"""Deep mutual learning: Zhang, Xiang, Hospedales, Lu, "Deep Mutual Learning" (CVPR 2018), section 3.1.

Two networks Θ1 and Θ2 are trained together from scratch, with no teacher. Each minimises its own
cross-entropy plus the KL divergence from the other's predictions to its own:

    L_C1 = - sum_i sum_m I(y_i, m) log p1^m(x_i)                          (eq. 1)
    D_KL(p2 || p1) = sum_i sum_m p2^m(x_i) log (p2^m(x_i) / p1^m(x_i))     (eq. 2)
    L_Θ1 = L_C1 + D_KL(p2 || p1)                                           (eq. 3)
    L_Θ2 = L_C2 + D_KL(p1 || p2)                                           (eq. 4)

In each of eqs. 3-4 the other network's distribution is a target: it is treated as a constant
(detached), so D_KL(p2 || p1) moves only Θ1 and D_KL(p1 || p2) only Θ2. Summing L_Θ1 and L_Θ2 and
taking one gradient step then updates each network by its own equation. (Algorithm 1 of the paper
alternates: Θ1 steps first and p1 is recomputed before Θ2's step; the sum here is the simultaneous
variant most implementations use, e.g. Knowledge-Distillation-Zoo's ``kd_losses/dml.py`` with its
peer's outputs detached.)

Scale: the paper sums over the N samples; here, as the cross-entropy, every term is a batch mean.
At a temperature T (the paper has none, i.e. T = 1), p = softmax(z / T) and the KL is multiplied by
T^2 as in Hinton et al.'s loss (``kd_loss.soft_target_loss``), so its gradient keeps its size as T
changes; ``weight`` scales the KL term (the paper: 1).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .kd_loss import check_logit_pair, check_targets, kl_rows
from .soft_targets import check_temperature


def _checked_pair(logits: torch.Tensor, peer_logits: torch.Tensor, T: float) -> float:
    T = check_temperature(T)
    check_logit_pair(logits, peer_logits, ("logits", "peer logits"), prefix="mutual learning: ")
    return T


def mutual_kl_per_sample(logits: torch.Tensor, peer_logits: torch.Tensor, T: float = 1.0) -> torch.Tensor:
    """T^2 KL(p_peer || p) per sample, shape (B,): eq. 2's inner sum over classes, with
    p = softmax(logits / T) and the peer's p_peer = softmax(peer_logits / T) detached (a constant
    target), so only ``logits`` receives a gradient."""
    T = _checked_pair(logits, peer_logits, T)
    log_p = F.log_softmax(logits / T, dim=1)
    log_target = F.log_softmax(peer_logits.detach() / T, dim=1)
    return kl_rows(log_target, log_p) * T * T


def mutual_kl(logits: torch.Tensor, peer_logits: torch.Tensor, T: float = 1.0) -> torch.Tensor:
    """T^2 mean_b KL(p_peer || p) (eq. 2 as a batch mean); the peer side is detached."""
    return mutual_kl_per_sample(logits, peer_logits, T).mean()


@dataclass(frozen=True)
class MutualTerms:
    """The terms of eqs. 3-4 for one batch (0-d tensors, batch means): ``ce`` and ``peer_ce`` (eq. 1
    for each network), ``kl`` = weight T^2 KL(p_peer || p) (trains the first network only) and
    ``peer_kl`` = weight T^2 KL(p || p_peer) (trains the peer only)."""

    ce: torch.Tensor
    kl: torch.Tensor
    peer_ce: torch.Tensor
    peer_kl: torch.Tensor

    @property
    def loss(self) -> torch.Tensor:
        """L_Θ1 = L_C1 + D_KL(p2 || p1) (eq. 3)."""
        return self.ce + self.kl

    @property
    def peer_loss(self) -> torch.Tensor:
        """L_Θ2 = L_C2 + D_KL(p1 || p2) (eq. 4)."""
        return self.peer_ce + self.peer_kl


def check_weight(weight: float) -> float:
    """``weight`` as a float if finite and >= 0; a ``ValueError`` naming it otherwise."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        raise ValueError(f"mutual learning: weight must be a number >= 0, got {weight!r}")
    if not (float(weight) >= 0.0 and float(weight) < float("inf")):
        raise ValueError(f"mutual learning: weight must be finite and >= 0, got {weight!r}")
    return float(weight)


def mutual_terms(logits: torch.Tensor, peer_logits: torch.Tensor, targets: torch.Tensor, weight: float = 1.0,
                 T: float = 1.0) -> MutualTerms:
    """Both networks' DML losses (eqs. 1-4) on one batch: ``logits`` and ``peer_logits`` are (B, K),
    ``targets`` (B,) class indices; each KL treats the other network's side as a constant."""
    T = _checked_pair(logits, peer_logits, T)
    weight = check_weight(weight)
    check_targets(targets, *logits.shape)
    return MutualTerms(ce=F.cross_entropy(logits, targets), kl=weight * mutual_kl(logits, peer_logits, T),
                       peer_ce=F.cross_entropy(peer_logits, targets),
                       peer_kl=weight * mutual_kl(peer_logits, logits, T))


__all__ = ["MutualTerms", "check_weight", "mutual_kl", "mutual_kl_per_sample", "mutual_terms"]
