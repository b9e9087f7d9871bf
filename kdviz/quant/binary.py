"""Binary weights: BinaryConnect and XNOR-Net's binary-weight networks (BWN).

BinaryConnect (Courbariaux, Bengio, David 2015, eq. 1 and algorithm 1): the forward and backward
passes use w_b = sign(w) (+1 if w >= 0, else -1); the gradient with respect to w_b is applied to the
real-valued weight w unchanged (straight-through), and w is clipped to [-1, 1] after each update.

BWN (Rastegari, Ordonez, Redmon, Farhadi 2016, "XNOR-Net", sec. 3.1, eq. 2-4): W ~ alpha * B with
B = sign(W) and, per output filter, the optimal scale

    alpha* = ||W||_l1 / n = mean |W|,

which minimises ||W - alpha B||^2. Gradients flow through alpha (it depends on W) and straight
through sign, which gives the paper's eq. 7 with the straight-through estimator for sign.
"""
from __future__ import annotations

import torch

from ..registry import Registry

BINARIZERS: Registry = Registry("binarization")


def _check(w: torch.Tensor) -> None:
    if not isinstance(w, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(w).__name__}")
    if w.numel() == 0:
        raise ValueError("cannot binarize an empty tensor")


class _SignSTE(torch.autograd.Function):
    """sign with sign(0) = +1; backward passes the gradient straight through (Courbariaux 2015)."""

    @staticmethod
    def forward(ctx, w: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return grad


def sign_ste(w: torch.Tensor) -> torch.Tensor:
    """+1 where w >= 0, -1 elsewhere; gradient identity (straight-through estimator)."""
    _check(w)
    return _SignSTE.apply(w)


def xnor_alpha(w: torch.Tensor) -> torch.Tensor:
    """alpha = mean |W| per output filter (Rastegari 2016, eq. 4), shaped to broadcast against ``w``:
    (out, 1, ..., 1) for a weight with an output axis, a 0-d tensor for a 1-D tensor."""
    _check(w)
    if w.dim() < 2:
        return w.abs().mean()
    return w.abs().mean(dim=tuple(range(1, w.dim())), keepdim=True)


@BINARIZERS.register("binaryconnect")
def binaryconnect(w: torch.Tensor) -> torch.Tensor:
    """BinaryConnect's deterministic binarization: sign(w) in {-1, +1}, straight-through gradient."""
    return sign_ste(w)


@BINARIZERS.register("xnor")
def xnor_binarize(w: torch.Tensor) -> torch.Tensor:
    """BWN / XNOR-Net weights: alpha * sign(W), alpha = mean |W| per output filter."""
    return xnor_alpha(w) * sign_ste(w)


class BinaryParametrization(torch.nn.Module):
    """``weight = binarize(latent weight)`` for training binary-weight networks; the latent float
    weight stays trainable. ``method`` is ``"binaryconnect"`` or ``"xnor"``."""

    def __init__(self, method: str = "binaryconnect") -> None:
        super().__init__()
        self.binarize = BINARIZERS.get(method)
        self.method = method

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        return self.binarize(original)
