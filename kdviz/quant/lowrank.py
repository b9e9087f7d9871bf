"""Low-rank factorization by truncated SVD (Denton et al. 2014, "Exploiting Linear Structure Within
Convolutional Networks for Efficient Evaluation", sec. 3.2; Xue, Li, Gong 2013).

A weight matrix W (m, n) (a conv weight (out, in, kh, kw) is read as (out, in*kh*kw)) has the SVD
W = U S V^T. Keeping the r largest singular values gives the best rank-r approximation
(Eckart-Young), W_r = U_r S_r V_r^T, whose error is

    ||W - W_r||_F = sqrt(sum_{i > r} s_i^2).

The layer is replaced by two smaller ones: x -> V_r^T x (r outputs, no bias) -> U_r S_r (.) + b.
For a conv layer the first is a conv with r filters of the original k x k size, stride, padding
and dilation, the second a 1 x 1 conv; together they compute the rank-r conv exactly. Parameters
drop from m*n to r*(m + n).
"""
from __future__ import annotations

import copy

import torch
from torch import nn


def weight_matrix(weight: torch.Tensor) -> torch.Tensor:
    """A layer weight as a matrix (out, in*kh*kw); float64 on the CPU for an accurate SVD."""
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"weight must be a torch.Tensor, got {type(weight).__name__}")
    if weight.numel() == 0:
        raise ValueError("cannot factorize an empty weight")
    if weight.dim() < 2:
        raise ValueError(f"low rank needs a matrix or conv weight, got shape {tuple(weight.shape)}")
    return weight.detach().to("cpu", torch.float64).reshape(weight.shape[0], -1)


def singular_values(weight: torch.Tensor) -> torch.Tensor:
    """The singular values of the weight matrix, descending, shape (min(m, n),)."""
    return torch.linalg.svdvals(weight_matrix(weight))


def energy_kept(s: torch.Tensor, rank: int) -> float:
    """Share of the squared Frobenius norm kept at rank r: sum_{i<=r} s_i^2 / sum_i s_i^2
    (Eckart-Young: 1 - ||W - W_r||_F^2 / ||W||_F^2).

    ``s`` are singular values (1-D, finite, non-negative, descending as ``singular_values`` gives
    them); ``rank`` an integer in 0..len(s). Anything else is a ``ValueError``: a negative rank
    would otherwise slice from the end and return a plausible but wrong share."""
    if not isinstance(s, torch.Tensor) or s.ndim != 1 or s.numel() == 0:
        shape = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
        raise ValueError(f"singular values must be a non-empty 1-D tensor, got {shape}")
    if not bool(torch.isfinite(s).all()) or bool((s < 0).any()):
        raise ValueError("singular values must be finite and non-negative")
    if isinstance(rank, bool) or not hasattr(rank, "__index__"):
        raise TypeError(f"rank must be an integer, got {type(rank).__name__}")
    if not 0 <= int(rank) <= s.numel():
        raise ValueError(f"rank must be in 0..{s.numel()} for {s.numel()} singular values, got {int(rank)}")
    rank = int(rank)
    s2 = s.to(torch.float64) ** 2
    total = float(s2.sum())
    return float(s2[:rank].sum()) / total if total > 0 else 1.0


def check_rank(rank: int, shape: tuple[int, int]) -> int:
    """``rank`` as an int, or a ``ValueError`` when it is outside 1..min(m, n)."""
    if isinstance(rank, bool) or not hasattr(rank, "__index__"):
        raise TypeError(f"rank must be an integer, got {type(rank).__name__}")
    rank = int(rank)
    limit = min(shape)
    if not 1 <= rank <= limit:
        raise ValueError(f"rank must be in 1..{limit} for a {shape[0]} x {shape[1]} weight matrix, got {rank}")
    return rank


class SVDFactors:
    """The SVD of one weight matrix, computed once; ``factors(r)`` and ``matrix(r)`` are then cheap
    (the rank slider reuses it)."""

    def __init__(self, weight: torch.Tensor) -> None:
        w = weight_matrix(weight)
        self.shape = tuple(weight.shape)
        self.matrix_shape = tuple(w.shape)
        self.U, self.S, self.Vh = torch.linalg.svd(w, full_matrices=False)

    def factors(self, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, B) with A = U_r S_r (m, r) and B = V_r^T (r, n), float32, so that A @ B = W_r."""
        r = check_rank(rank, self.matrix_shape)
        return (self.U[:, :r] * self.S[:r]).to(torch.float32), self.Vh[:r].to(torch.float32)

    def matrix(self, rank: int) -> torch.Tensor:
        """W_r reshaped to the original weight shape (float32)."""
        a, b = self.factors(rank)
        return (a @ b).reshape(self.shape)


def truncated_svd(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(A (m, r), B (r, n)) with A @ B the best rank-r approximation of the weight matrix."""
    return SVDFactors(weight).factors(rank)


def low_rank_layer(layer: nn.Module, rank: int) -> nn.Sequential:
    """Two layers computing ``layer`` with its weight truncated to rank r (bias kept on the second).

    Linear(n, m) -> Linear(n, r, bias=False), Linear(r, m). Conv2d(c, m, k) -> Conv2d(c, r, k, same
    stride/padding/dilation, bias=False), Conv2d(r, m, 1). Grouped convs are refused.
    """
    a, b = SVDFactors(layer.weight).factors(rank)
    r = a.shape[1]
    has_bias = layer.bias is not None
    if isinstance(layer, nn.Linear):
        first = nn.Linear(layer.in_features, r, bias=False)
        second = nn.Linear(r, layer.out_features, bias=has_bias)
        first.weight.data.copy_(b)
        second.weight.data.copy_(a)
    elif isinstance(layer, nn.Conv2d):
        if layer.groups != 1:
            raise ValueError("low rank of grouped convolutions is not supported")
        first = nn.Conv2d(layer.in_channels, r, layer.kernel_size, stride=layer.stride, padding=layer.padding,
                          dilation=layer.dilation, padding_mode=layer.padding_mode, bias=False)
        second = nn.Conv2d(r, layer.out_channels, 1, bias=has_bias)
        first.weight.data.copy_(b.reshape(r, layer.in_channels, *layer.kernel_size))
        second.weight.data.copy_(a.reshape(layer.out_channels, r, 1, 1))
    else:
        raise TypeError(f"low rank replaces Linear or Conv2d layers, got {type(layer).__name__}")
    if has_bias:
        second.bias.data.copy_(layer.bias.detach())
    out = nn.Sequential(first, second)
    return out.to(layer.weight.device, layer.weight.dtype)


def low_rank_model(model: nn.Module, ranks: dict[str, int]) -> nn.Module:
    """A copy of ``model`` with each named layer (``{"fc1": 20, ...}``) replaced by its rank-r pair."""
    out = copy.deepcopy(model)
    modules = dict(out.named_modules())
    for name, rank in ranks.items():
        if name not in modules:
            raise ValueError(f"the model has no layer {name!r}")
        parent_name, _, child = name.rpartition(".")
        parent = modules[parent_name] if parent_name else out
        setattr(parent, child, low_rank_layer(modules[name], rank))
    return out


def low_rank_parameters(shape: tuple[int, int], rank: int) -> int:
    """Weights of the two-layer replacement, r * (m + n), against m * n for the original."""
    m, n = shape
    return check_rank(rank, (m, n)) * (m + n)
