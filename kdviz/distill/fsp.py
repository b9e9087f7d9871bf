"""The FSP ("flow of solution procedure") matrix and loss of Yim, Joo, Bae, Kim, "A Gift from
Knowledge Distillation: Fast Optimization, Network Minimization and Transfer Learning" (CVPR 2017).

Section 3.2, eq. (1): for feature maps F1 (h x w x m) and F2 (h x w x n) of one input x,

    G_ij(x) = sum_{s=1..h} sum_{t=1..w}  F1_{s,t,i}(x) * F2_{s,t,j}(x)  /  (h * w)

an m x n matrix of inner products between the channels of two layers. Section 3.3, eq. (2):

    L_FSP = (1/N) sum_x  sum_{i=1..n}  lambda_i * || G_i^T(x) - G_i^S(x) ||_2^2

with ||.||_2^2 the squared Frobenius norm, summed over the n section pairs and averaged over the N
samples. When the two maps of a pair have different spatial sizes, the larger is max-pooled down to
the smaller (the paper's remedy). We use adaptive max pooling: where the side ratio r is an
integer (28 -> 14, 8 -> 4) it is exactly a max pool with kernel = stride = r, and where it is not
(a stride-2 conv turns 7 into 4) it still covers every position, where a fixed kernel would drop
the last row and column. Fully connected features (B, D) count as 1 x 1 maps, so an MLP's layers
have FSP matrices too (then G is the outer product of the two activation vectors).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .pairs import resolve_named_pairs


def _as_map(x: torch.Tensor, which: str) -> torch.Tensor:
    """(B, C, H, W) as is; (B, D) as a (B, D, 1, 1) map; anything else is an error."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"fsp_matrix: {which} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim not in (2, 4):
        raise ValueError(
            f"fsp_matrix: {which} must be a 4-D conv feature map (B, C, H, W) or 2-D MLP features (B, D), "
            f"got shape {tuple(x.shape)}"
        )
    if x.numel() == 0:  # an empty batch, or no channels or positions: eq. (1) would average nothing (NaN)
        raise ValueError(f"fsp_matrix: {which} is empty (shape {tuple(x.shape)}); it needs at least one sample, "
                         "channel and position")
    return x if x.ndim == 4 else x[:, :, None, None]


def fsp_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """FSP matrices G (B, C1, C2) between maps ``a`` (B, C1, H, W) and ``b`` (B, C2, H', W').

    Yim et al. 2017, eq. (1): G_ij = sum_{s,t} a_i(s, t) b_j(s, t) / (h w), where (h, w) is the
    common size after adaptive max pooling of the larger map(s) to (min(H, H'), min(W, W')).
    2-D inputs (B, D) are treated as (B, D, 1, 1).
    """
    a, b = _as_map(a, "a"), _as_map(b, "b")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"fsp_matrix: batch sizes differ: a has {a.shape[0]} samples, b has {b.shape[0]}")
    h, w = min(a.shape[2], b.shape[2]), min(a.shape[3], b.shape[3])
    if tuple(a.shape[2:]) != (h, w):
        a = F.adaptive_max_pool2d(a, (h, w))
    if tuple(b.shape[2:]) != (h, w):
        b = F.adaptive_max_pool2d(b, (h, w))
    return torch.einsum("bihw,bjhw->bij", a, b) / (h * w)


def _as_list(matrices: torch.Tensor | Sequence[torch.Tensor], which: str) -> list[torch.Tensor]:
    if isinstance(matrices, torch.Tensor):
        matrices = [matrices]
    if not isinstance(matrices, (list, tuple)) or not matrices:
        raise TypeError(f"fsp_loss: {which} must be a non-empty list of (B, C1, C2) tensors")
    for i, g in enumerate(matrices):
        if not isinstance(g, torch.Tensor) or g.ndim != 3:
            shape = tuple(g.shape) if isinstance(g, torch.Tensor) else type(g).__name__
            raise ValueError(f"fsp_loss: {which}[{i}] must be a (B, C1, C2) FSP matrix, got {shape}")
        if g.shape[0] == 0:
            raise ValueError(f"fsp_loss: {which}[{i}] has an empty batch (shape {tuple(g.shape)}); "
                             "the mean over no samples is NaN")
    return list(matrices)


def fsp_pair_losses(
    student_matrices: torch.Tensor | Sequence[torch.Tensor],
    teacher_matrices: torch.Tensor | Sequence[torch.Tensor],
) -> torch.Tensor:
    """Per pair, (1/N) sum_x ||G_i^T(x) - G_i^S(x)||_F^2 (unweighted); a tensor of shape (n_pairs,).

    The teacher is fixed (Yim et al., section 3.3: only the student is trained), so its matrices
    are detached.
    """
    students = _as_list(student_matrices, "student_matrices")
    teachers = _as_list(teacher_matrices, "teacher_matrices")
    if len(students) != len(teachers):
        raise ValueError(f"fsp_loss: {len(students)} student matrices but {len(teachers)} teacher matrices")
    losses = []
    for i, (gs, gt) in enumerate(zip(students, teachers)):
        if gs.shape != gt.shape:
            raise ValueError(
                f"fsp_loss: pair {i} has student FSP matrix {tuple(gs.shape)} but teacher {tuple(gt.shape)}; "
                "an FSP pair needs the same channel counts in student and teacher at both of its layers "
                "(give the student the teacher's per-stage channels, or map the student's features "
                "through a 1x1 conv adapter first)"
            )
        losses.append((gt.detach() - gs).pow(2).sum(dim=(1, 2)).mean())
    return torch.stack(losses)


def fsp_loss(
    student_matrices: torch.Tensor | Sequence[torch.Tensor],
    teacher_matrices: torch.Tensor | Sequence[torch.Tensor],
    weights: Sequence[float] | None = None,
) -> torch.Tensor:
    """Yim et al. 2017, eq. (2): sum_i lambda_i (1/N) sum_x ||G_i^T(x) - G_i^S(x)||_F^2, a 0-d tensor.

    ``student_matrices`` and ``teacher_matrices`` are lists (one entry per section pair) of
    (N, C1, C2) matrices from ``fsp_matrix``; ``weights`` are the lambda_i, all 1.0 by default
    (the paper weights its pairs equally).
    """
    per_pair = fsp_pair_losses(student_matrices, teacher_matrices)
    if weights is None:
        return per_pair.sum()
    lam = [float(w) for w in weights]
    if len(lam) != per_pair.numel():
        raise ValueError(f"fsp_loss: {len(lam)} weights for {per_pair.numel()} FSP pairs")
    if any(not (w >= 0.0 and w < float("inf")) for w in lam):
        raise ValueError(f"fsp_loss: weights must be finite and non-negative, got {lam}")
    return (per_pair * per_pair.new_tensor(lam)).sum()


def section_pairs(feature_names: Sequence[str]) -> list[tuple[str, str]]:
    """The FSP pairs a model offers, in forward order.

    Models with sections (``stageK_in`` / ``stageK_out``, see ``kdviz.models.resnet``) give one
    pair per section, the first and last map of it (Yim et al., figure 3). Other models give
    consecutive feature pairs, e.g. ``("fc1", "fc2")`` for an MLP.
    """
    names = list(feature_names)
    sections = [(n, n[: -len("_in")] + "_out") for n in names if n.endswith("_in")]
    sections = [(i, o) for i, o in sections if o in names]
    if sections:
        return sections
    return list(zip(names[:-1], names[1:]))


def resolve_pairs(
    pairs: str | Sequence[Sequence[str]],
    student_names: Sequence[str],
    teacher_names: Sequence[str],
) -> list[tuple[str, str]]:
    """``"auto"`` -> the student's ``section_pairs`` that the teacher also has; a list of
    ``[in_name, out_name]`` is checked against both models' feature names."""
    return resolve_named_pairs(
        pairs, "FSP", "[in_name, out_name]",
        auto=lambda: [p for p in section_pairs(student_names) if p[0] in teacher_names and p[1] in teacher_names],
        owners=lambda pair: [(who, name, names) for name in pair
                             for who, names in (("student", student_names), ("teacher", teacher_names))],
        none_found=(f"no FSP pair is shared by the student (features {list(student_names)}) and the teacher "
                    f"(features {list(teacher_names)}); name the pairs explicitly"),
    )
