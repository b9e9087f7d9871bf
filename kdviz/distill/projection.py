"""Neural projections: Ravi, "ProjectionNet: Learning Efficient On-Device Deep Networks Using Neural
Projections" (arXiv:1708.00630, 2017).

**The projection P (section 3.3).** T locality-sensitive hash functions P^1 .. P^T, each made of d
random hyperplanes w_{k,1} .. w_{k,d} in the input space R^D, map an input x to T*d bits::

    P^k_j(x) = sgn(<w_{k,j}, x>),        P(x) = [P^1(x), .., P^T(x)]  in {-1, +1}^{T d}

Two inputs at angle phi disagree on one bit with probability phi / pi (Charikar's random-hyperplane
LSH, which section 3.3 builds on), so nearby digits get nearby bit vectors. P is fixed: it is drawn
once from a seed and never trained, so a deployed model stores the seed, not the T*d*D floats
(``lsh_planes`` regenerates it bit for bit). We draw w from N(0, I) (any symmetric law gives the
same hash family) and read sgn(0) as -1 (bit 0), so a blank input maps to all zeros.

**The joint objective (section 3.1, eq. 1).** A full *trainer* network h_theta and a small
*projection network* h_p (fully connected layers on P(x)) are trained together on::

    L(theta, p) = lambda1 * L_theta + lambda2 * L_p + lambda3 * L_p_hat              (eq. 1)
    L_theta = sum_n D(h_theta(x_n), y_n)      the trainer on the labels
    L_p     = sum_n D(h_p(x_n), h_theta(x_n)) the projection net on the trainer's soft predictions
    L_p_hat = sum_n D(h_p(x_n), y_n)          the projection net on the labels

with D the cross-entropy. As everywhere in kdviz the sums are batch means. In L_p the trainer's
prediction is the target, treated as a constant (detached): the projection net learns from the
trainer "similar to apprenticeship learning" (abstract), while the trainer learns from the labels
through L_theta. Only h_p is deployed.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .kd_loss import check_logit_pair, check_targets


def _whole(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"projection: {name} must be a whole number >= 1, got {value!r}")
    return value


def lsh_planes(input_dim: int, num_hashes: int, bits_per_hash: int, seed: int = 0) -> torch.Tensor:
    """The T*d random hyperplanes of P as a (T*d, D) float32 tensor, row k*d + j being w_{k,j}
    (section 3.3), drawn from N(0, 1) by a generator seeded with ``seed`` alone (torch's global
    generator is untouched), so the same seed gives the same P on every machine."""
    input_dim, t, d = _whole(input_dim, "input_dim"), _whole(num_hashes, "T (hash functions)"), \
        _whole(bits_per_hash, "d (bits per hash function)")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"projection: seed must be a whole number >= 0, got {seed!r}")
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(t * d, input_dim, generator=generator, dtype=torch.float32)


def projection_bits(x: torch.Tensor, planes: torch.Tensor) -> torch.Tensor:
    """The bits of P(x) (section 3.3) as a (B, T*d) float tensor of 0s and 1s: bit k*d + j is 1 where
    <w_{k,j}, x> > 0. ``x`` is (B, ...) and is flattened to (B, D); ``planes`` is (T*d, D)."""
    flat = x.flatten(1).to(planes.dtype)
    if flat.shape[1] != planes.shape[1]:
        raise ValueError(f"projection: inputs have {flat.shape[1]} values each but the hyperplanes have "
                         f"{planes.shape[1]}")
    return (flat @ planes.T > 0).to(planes.dtype)


def projection_signs(x: torch.Tensor, planes: torch.Tensor) -> torch.Tensor:
    """P(x) in {-1, +1} (section 3.3's sgn), (B, T*d): what the projection network reads."""
    return 2.0 * projection_bits(x, planes) - 1.0


def check_lambda(value: object, name: str) -> float:
    """``value`` as a float if finite and >= 0; a ``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not (float(value) >= 0.0 and float(value) < float("inf")):
        raise ValueError(f"projection: {name} must be a finite number >= 0, got {value!r}")
    return float(value)


def soft_cross_entropy(logits: torch.Tensor, target_logits: torch.Tensor) -> torch.Tensor:
    """D(h_p, h_theta) of L_p as a batch mean: -mean_n sum_c softmax(target)_c log softmax(logits)_c,
    the target side detached (a constant)."""
    target = F.softmax(target_logits.detach(), dim=1)
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


@dataclass(frozen=True)
class ProjectionLossParts:
    """The three weighted terms of eq. 1 for one batch (0-d tensors): ``trainer`` = lambda1 L_theta,
    ``distill`` = lambda2 L_p, ``label`` = lambda3 L_p_hat; ``total`` is their sum."""

    trainer: torch.Tensor
    distill: torch.Tensor
    label: torch.Tensor

    @property
    def total(self) -> torch.Tensor:
        return self.trainer + self.distill + self.label


def projection_joint_loss(trainer_logits: torch.Tensor, projection_logits: torch.Tensor, targets: torch.Tensor,
                          lambda1: float = 1.0, lambda2: float = 1.0, lambda3: float = 1.0) -> ProjectionLossParts:
    """Eq. 1 on one batch: ``trainer_logits`` (h_theta) and ``projection_logits`` (h_p) are (B, K),
    ``targets`` (B,) class indices. L_theta trains the trainer only, L_p and L_p_hat the projection
    net only (L_p's trainer side is detached)."""
    weights = [check_lambda(v, n) for v, n in ((lambda1, "lambda1"), (lambda2, "lambda2"), (lambda3, "lambda3"))]
    check_logit_pair(projection_logits, trainer_logits, ("projection logits", "trainer logits"), prefix="projection: ")
    check_targets(targets, *projection_logits.shape)
    return ProjectionLossParts(trainer=weights[0] * F.cross_entropy(trainer_logits, targets),
                               distill=weights[1] * soft_cross_entropy(projection_logits, trainer_logits),
                               label=weights[2] * F.cross_entropy(projection_logits, targets))


__all__ = ["ProjectionLossParts", "check_lambda", "lsh_planes", "projection_bits", "projection_joint_loss",
           "projection_signs", "soft_cross_entropy"]
