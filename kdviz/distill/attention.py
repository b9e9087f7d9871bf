"""Activation-based attention transfer: Zagoruyko & Komodakis, "Paying More Attention to Attention:
Improving the Performance of Convolutional Neural Networks via Attention Transfer" (ICLR 2017).

Section 3.1: a layer's activations A (C x H x W) are mapped to a spatial attention map by
F(A) = sum_{i=1..C} |A_i|^p (the paper's F^p_sum), here with p = 2, the choice of its experiments.
Section 3.1, eq. (2): with Q^j = vec(F(A^j)) for the j-th chosen pair of student and teacher
layers (the same spatial size in both), the student minimises

    L_AT = L(W_S, x) + beta/2 * sum_j || Q_S^j / ||Q_S^j||_2  -  Q_T^j / ||Q_T^j||_2 ||_p

with p = 2 in the norm of the difference as well. Only the beta/2 * sum_j ... term lives here (the
usual loss L is the engine's base loss); per sample it is averaged over the batch, as L is.

Channel counts may differ between student and teacher: F sums them away, so a thin student can
mimic a wide teacher's attention. The paper's transfer points are "at the end of each group of
residual blocks" (section 4.1), where the spatial sizes agree.

Peer implementations (the authors' code, RepDistiller, torchdistill's "code" mode) use
normalize(mean_c A_c^2) and the mean of the squared difference over batch and positions instead.
The mean over channels changes nothing after normalisation; the squared mean does: for one pair,
peer = mean_b(d_b^2) / (H W) where d_b is the paper's per-sample distance ||q_S - q_T||_2 that
this module averages (tests/distill/test_attention.py checks both).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from .pairs import resolve_named_pairs

P = 2  # the exponent of F(A) = sum_c |A_c|^p and the order of the norm of the difference (eq. 2)
EPS = 1e-12  # a floor for ||Q||_2: an all-zero map stays all zero instead of dividing by zero


def _check_map(a: torch.Tensor, which: str) -> torch.Tensor:
    if not isinstance(a, torch.Tensor):
        raise TypeError(f"attention: {which} must be a torch.Tensor, got {type(a).__name__}")
    if a.ndim != 4:
        raise ValueError(
            f"attention: {which} must be a 4-D conv feature map (B, C, H, W), got shape {tuple(a.shape)}; "
            "a fully connected layer has no spatial positions to attend to"
        )
    if a.numel() == 0:
        raise ValueError(f"attention: {which} is empty (shape {tuple(a.shape)}); it needs at least one sample, "
                         "channel and position (the mean over no samples is NaN)")
    return a


def attention_map(a: torch.Tensor) -> torch.Tensor:
    """F(A) = sum_c |A_c|^p with p = 2 (Zagoruyko & Komodakis 2017, section 3.1): (B, C, H, W) -> (B, H, W)."""
    return _check_map(a, "activations").abs().pow(P).sum(dim=1)


def attention_vector(a: torch.Tensor) -> torch.Tensor:
    """Q / ||Q||_2 with Q = vec(F(A)) (eq. 2): (B, C, H, W) -> (B, H*W), each row of unit length."""
    q = attention_map(a).flatten(1)
    return q / q.norm(p=2, dim=1, keepdim=True).clamp_min(EPS)


def at_distances(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """|| Q_S/||Q_S||_2 - Q_T/||Q_T||_2 ||_p per sample (eq. 2, one pair j): a (B,) tensor.

    The teacher is fixed (only the student is trained), so its side is detached. The two maps need
    the same batch size and spatial size; their channel counts may differ."""
    s, t = _check_map(student, "student"), _check_map(teacher, "teacher")
    if s.shape[0] != t.shape[0] or s.shape[2:] != t.shape[2:]:
        raise ValueError(
            f"attention: student activations {tuple(s.shape)} and teacher {tuple(t.shape)} must share the batch "
            "size and the spatial size (H, W); pair layers of the same resolution (the paper pairs the ends of "
            "residual groups), channel counts may differ"
        )
    return (attention_vector(s) - attention_vector(t.detach())).norm(p=P, dim=1)


def at_pair_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """One pair's term of eq. 2 without beta/2, averaged over the batch: mean_b ||q_S - q_T||_2 (0-d)."""
    return at_distances(student, teacher).mean()


def at_pair_losses(students: Sequence[torch.Tensor], teachers: Sequence[torch.Tensor]) -> torch.Tensor:
    """``at_pair_loss`` of each pair j: a (n_pairs,) tensor."""
    if isinstance(students, torch.Tensor) or isinstance(teachers, torch.Tensor):
        raise TypeError("attention: give lists of activations, one entry per layer pair")
    if len(students) != len(teachers) or not students:
        raise ValueError(f"attention: {len(students)} student maps but {len(teachers)} teacher maps "
                         "(give one of each per pair, at least one pair)")
    return torch.stack([at_pair_loss(s, t) for s, t in zip(students, teachers)])


def at_loss(students: Sequence[torch.Tensor], teachers: Sequence[torch.Tensor], beta: float) -> torch.Tensor:
    """The attention-transfer term of eq. 2: beta/2 * sum_j mean_b ||Q_S^j/||Q_S^j|| - Q_T^j/||Q_T^j||||_2."""
    beta = float(beta)
    if not (beta >= 0.0 and beta < float("inf")):
        raise ValueError(f"attention: beta must be finite and non-negative, got {beta}")
    return beta / 2.0 * at_pair_losses(students, teachers).sum()


def shared_spatial_features(student: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor]) -> list[tuple[str, str]]:
    """The ``"auto"`` pairs: features both models name alike, 4-D in both, of the same spatial size,
    in the student's forward order; a name whose tensor is the very tensor of an earlier name (a
    ResNet's ``stage2_in`` is ``stage1_out``) is left out, so no layer counts twice."""
    pairs, seen = [], []
    for name, s in student.items():
        if any(s is other for other in seen):
            continue
        seen.append(s)
        t = teacher.get(name)
        if isinstance(t, torch.Tensor) and s.ndim == 4 and t.ndim == 4 and s.shape[2:] == t.shape[2:]:
            pairs.append((name, name))
    return pairs


def resolve_at_pairs(pairs: str | Sequence[Sequence[str]], student: dict[str, torch.Tensor],
                     teacher: dict[str, torch.Tensor]) -> list[tuple[str, str]]:
    """``"auto"`` -> ``shared_spatial_features``; a list of ``[student_name, teacher_name]`` is
    checked against both models' features (one forward pass of each, ``{name: tensor}``)."""
    return resolve_named_pairs(
        pairs, "attention", "[student_layer, teacher_layer]",
        auto=lambda: shared_spatial_features(student, teacher),
        owners=lambda pair: [("student", pair[0], student), ("teacher", pair[1], teacher)],
        none_found=(f"no conv feature map of the same name and spatial size in the student ({list(student)}) and the "
                    f"teacher ({list(teacher)}); name the pairs explicitly as [student_layer, teacher_layer]"),
    )
