"""N:M semi-structured sparsity: keep the N largest |w| in every group of M consecutive weights.

Mishra et al., "Accelerating Sparse Deep Neural Networks" (NVIDIA, 2021; the Ampere 2:4 pattern and
the ASP recipe: train dense, prune to 2:4 by magnitude once, fine-tune with the mask fixed) and
Zhou et al., "Learning N:M Fine-grained Structured Sparse Networks from Scratch" (ICLR 2021, eq. 1:
in every block of M consecutive weights along the input dimension at most N are non-zero).

Groups run along the **input** dimension, as NVIDIA ASP's ``m4n2_1d`` and torch's
``to_sparse_semi_structured`` (a row of a Linear weight (out, in) is cut into groups of 4 columns):

* Linear (out, in): group g of row o is ``w[o, g*M : (g+1)*M]``;
* Conv2d (out, in, kh, kw): ASP permutes to (out, kh, kw, in) so a group is M consecutive input
  channels at one output channel and kernel position.

The sparsity is exactly 1 - N/M on every pattern-pruned layer. A layer whose input dimension is
not a multiple of M cannot hold the pattern (ASP skips it); ``n_m_masks`` leaves it dense and says
why. Ties in |w| keep the earlier weight of the group (a stable sort), so masks are deterministic.

Gradual N:M (``n_at``): keep ``N_t`` of M with N_t stepping from M down to N as a sparsity schedule
(``schedule.AGPSchedule``) rises to 1 - N/M: for 2:4 the run passes 4:4, 3:4, 2:4.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from .masks import PruningMasks, prunable_weights


def check_n_m(n: object, m: object) -> tuple[int, int]:
    """(N, M) as ints with 1 <= N < M <= 64; a ``ValueError`` names a bad pair."""
    for what, value in (("N", n), ("M", m)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{what} of an N:M pattern must be an integer, got {value!r}")
    if not 1 <= n < m <= 64:
        raise ValueError(f"an N:M pattern needs 1 <= N < M <= 64 (keep N of every M weights), got {n}:{m}")
    return n, m


def n_m_sparsity(n: int, m: int) -> float:
    """The fraction of weights an N:M pattern prunes: 1 - N/M (2:4 -> 0.5, 1:4 -> 0.75)."""
    n, m = check_n_m(n, m)
    return 1.0 - n / m


def _as_groups(weight: torch.Tensor, m: int) -> torch.Tensor:
    """Rows of groups (G, M) with the input dimension last, as ASP lays a layer out."""
    w = weight.detach()
    if w.dim() == 4:
        w = w.permute(0, 2, 3, 1)
    elif w.dim() != 2:
        raise ValueError(f"N:M masks take a Linear (out, in) or Conv2d (out, in, kh, kw) weight, got shape {tuple(w.shape)}")
    if w.shape[-1] % m:
        raise ValueError(f"the input dimension {w.shape[-1]} is not a multiple of M={m}")
    return w.reshape(-1, m)


def _from_groups(keep: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    if len(shape) == 4:
        out, cin, kh, kw = shape
        return keep.reshape(out, kh, kw, cin).permute(0, 3, 1, 2).contiguous()
    return keep.reshape(shape)


def n_m_mask(weight: torch.Tensor, n: int, m: int, previous: torch.Tensor | None = None) -> torch.Tensor:
    """Bool mask (True = kept) of ``weight``'s shape keeping the ``n`` largest |w| of every ``m``
    consecutive weights along the input dimension. With ``previous``, weights it pruned rank below
    every survivor (they stay pruned while N only falls). Ties keep the earlier position."""
    n, m = check_n_m(n, m)
    groups = _as_groups(weight, m).abs().to(torch.float64)
    if previous is not None:
        if previous.shape != weight.shape:
            raise ValueError(f"previous mask has shape {tuple(previous.shape)}, the weight {tuple(weight.shape)}")
        groups = torch.where(_as_groups(previous.to(torch.bool), m), groups, torch.full_like(groups, -1.0))
    order = torch.argsort(-groups, dim=1, stable=True)
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(1, order[:, :n], True)
    return _from_groups(keep, weight.shape)


def pattern_fits(weight_shape: Iterable[int], m: int) -> str:
    """Why a weight of this shape cannot hold an M-group pattern ("" when it can)."""
    shape = tuple(weight_shape)
    cin = shape[1] if len(shape) >= 2 else 0
    if len(shape) not in (2, 4):
        return f"shape {shape} is neither Linear nor Conv2d"
    return "" if cin % m == 0 else f"{cin} inputs are not a multiple of {m}"


def n_m_masks(
    model: nn.Module, n: int, m: int, names: Iterable[str] | None = None, previous: PruningMasks | None = None,
) -> tuple[PruningMasks, dict[str, str]]:
    """N:M masks for the model's prunable weights (or ``names``) and the layers left dense with the
    reason (``{"conv1.weight": "1 inputs are not a multiple of 4"}``); naming such a layer in
    ``names`` is a ``ValueError``. The masks cover every prunable weight (dense ones all True)."""
    n, m = check_n_m(n, m)
    weights = prunable_weights(model, names)
    skipped = {name: why for name, w in weights.items() if (why := pattern_fits(w.shape, m))}
    if names is not None and skipped:
        raise ValueError(f"these layers cannot hold a {n}:{m} pattern: "
                         + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    if len(skipped) == len(weights):
        raise ValueError(f"no layer of this model can hold a {n}:{m} pattern: "
                         + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    masks = {}
    for name, w in weights.items():
        prev = previous[name] if previous is not None and name in previous else None
        masks[name] = torch.ones_like(w, dtype=torch.bool) if name in skipped else n_m_mask(w, n, m, prev)
    return PruningMasks(masks), skipped


def follows_n_m(mask: torch.Tensor, n: int, m: int) -> bool:
    """Whether every group of ``m`` consecutive inputs keeps at most ``n`` weights (N = M: always)."""
    if n == m:
        return True
    n, m = check_n_m(n, m)
    return bool((_as_groups(mask, m).sum(dim=1) <= n).all())


def n_at(sparsity: float, n: int, m: int) -> int:
    """Weights kept per group of M at a scheduled sparsity: ceil((1 - s) * M), never below N (the
    gradual path M:M -> ... -> N:M as the sparsity rises to 1 - N/M)."""
    n, m = check_n_m(n, m)
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity!r}")
    return max(n, min(m, math.ceil((1.0 - sparsity) * m - 1e-9)))


def magnitude_kept_fraction(weight: torch.Tensor, mask: torch.Tensor) -> float:
    """Share of the layer's total |w| that ``mask`` keeps (how much magnitude the pattern costs
    against the unstructured cut at the same sparsity, which keeps the most possible)."""
    total = float(weight.detach().abs().sum())
    return float(weight.detach().abs()[mask].sum()) / total if total else 1.0
