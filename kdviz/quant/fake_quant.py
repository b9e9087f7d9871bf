"""Fake quantization of weights and activations with a straight-through estimator, for QAT.

Jacob et al. 2018, "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-
Only Inference", eq. 1-2: a real value r is stored as an integer q with a scale S and an integer
zero point Z,

    r = S (q - Z),    q = clamp(round(r / S) + Z, q_min, q_max),

and quantization-aware training (sec. 3) computes with fake-quantized values
``S (clamp(round(r / S) + Z, q_min, q_max) - Z)`` in the forward pass. Rounding has a zero gradient
almost everywhere, so the backward pass uses Bengio, Leonard & Courville's (2013) straight-through
estimator: the gradient passes unchanged where r lies inside the representable range and is zero
where r was clamped (Jacob et al. sec. 3: "the derivative of the rounding is treated as 1").

The ranges follow torch.ao's observers (``MinMaxObserver``), our peer: the range always holds 0;
*symmetric* uses signed integers [-2^(b-1), 2^(b-1) - 1], Z = 0 and S = max|r| / ((q_max - q_min) / 2);
*asymmetric* uses [0, 2^b - 1], S = (max - min) / (q_max - q_min) and Z = q_min - round(min / S).
*Per channel* gives every slice along axis 0 (a layer's output channel) its own S and Z
(Krishnamoorthi 2018, sec. 2.2). Weights take their range from the tensor itself at every step;
activations from an exponential moving average of each batch's min and max (Jacob et al. sec. 3,
"we collect [a, b] ranges ... smoothed across thousands of training steps"), frozen in eval mode.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

SUPPORTED_BITS = (2, 3, 4, 5, 6, 7, 8)


def check_quant_bits(bits: int) -> int:
    """``bits`` as an int in 2..8 (int2 to int8); anything else is a ``ValueError`` naming it."""
    if isinstance(bits, bool) or not isinstance(bits, int) or bits not in SUPPORTED_BITS:
        raise ValueError(f"bits must be a whole number from 2 to 8 (int2 to int8), got {bits!r}")
    return bits


def integer_range(bits: int, symmetric: bool) -> tuple[int, int]:
    """(q_min, q_max): signed [-2^(b-1), 2^(b-1) - 1] when symmetric, else unsigned [0, 2^b - 1]."""
    bits = check_quant_bits(bits)
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if symmetric else (0, 2**bits - 1)


@dataclass(frozen=True)
class AffineQuant:
    """Scale S and zero point Z (1-D: one per channel, or one element per tensor) and the integer range."""

    scale: torch.Tensor
    zero_point: torch.Tensor
    qmin: int
    qmax: int

    def grid(self, channel: int = 0) -> torch.Tensor:
        """The representable real values S (q - Z), q = q_min..q_max, of one channel (Jacob et al. eq. 1)."""
        q = torch.arange(self.qmin, self.qmax + 1, dtype=torch.float32)
        return (q - self.zero_point[channel].float()) * self.scale[channel].float()


def range_params(lo: torch.Tensor, hi: torch.Tensor, bits: int, symmetric: bool) -> AffineQuant:
    """S and Z for ranges [lo, hi] (1-D tensors of equal length), as torch.ao's ``MinMaxObserver`` does."""
    qmin, qmax = integer_range(bits, symmetric)
    lo = torch.clamp(lo.detach().float(), max=0.0)
    hi = torch.clamp(hi.detach().float(), min=0.0)
    eps = torch.finfo(torch.float32).eps
    if symmetric:
        scale = torch.clamp(torch.maximum(-lo, hi) / ((qmax - qmin) / 2), min=eps)
        return AffineQuant(scale, torch.zeros_like(scale, dtype=torch.int32), qmin, qmax)
    scale = torch.clamp((hi - lo) / (qmax - qmin), min=eps)
    zero_point = torch.clamp(qmin - torch.round(lo / scale), qmin, qmax).to(torch.int32)
    return AffineQuant(scale, zero_point, qmin, qmax)


def tensor_range(x: torch.Tensor, per_channel: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(min, max) of ``x`` as 1-D tensors: one element, or one per slice along axis 0."""
    x = x.detach()
    if not per_channel:
        return x.min().reshape(1), x.max().reshape(1)
    if x.dim() < 2:
        raise ValueError(f"per-channel quantization needs an output-channel axis, got shape {tuple(x.shape)}")
    flat = x.reshape(x.shape[0], -1)
    return flat.min(dim=1).values, flat.max(dim=1).values


class _FakeQuantSTE(torch.autograd.Function):
    """S (clamp(round(x / S) + Z) - Z) forward; the straight-through gradient (1 inside, 0 clamped) backward."""

    @staticmethod
    def forward(ctx, x, scale, zero_point, qmin, qmax):  # noqa: D401 - autograd signature
        # x * (1 / S), as torch's kernels compute it, so ties at +-(q + 1/2) S round the same way
        q = torch.round(x * torch.reciprocal(scale)) + zero_point
        inside = (q >= qmin) & (q <= qmax)
        ctx.save_for_backward(inside)
        return (torch.clamp(q, qmin, qmax) - zero_point) * scale

    @staticmethod
    def backward(ctx, grad_out):
        (inside,) = ctx.saved_tensors
        return grad_out * inside.to(grad_out.dtype), None, None, None, None


def fake_quantize(x: torch.Tensor, params: AffineQuant) -> torch.Tensor:
    """Fake-quantize ``x`` with ``params`` (Jacob et al. eq. 1-2) and a straight-through estimator.

    One scale per tensor, or one per slice along axis 0 (``len(params.scale) == x.shape[0]``).
    Matches ``torch.fake_quantize_per_tensor_affine`` / ``..._per_channel_affine`` (axis 0) in value
    and gradient with respect to ``x``; S and Z get no gradient (use LSQ, ``kdviz.quant.lsq``, to learn S)."""
    n = params.scale.numel()
    if n == 1:
        shape: tuple[int, ...] = ()
    elif x.dim() >= 1 and x.shape[0] == n:
        shape = (n,) + (1,) * (x.dim() - 1)
    else:
        raise ValueError(f"{n} scales do not fit a tensor of shape {tuple(x.shape)} (one per slice of axis 0)")
    scale = params.scale.to(x.device, x.dtype).reshape(shape)
    zero_point = params.zero_point.to(x.device, x.dtype).reshape(shape)
    return _FakeQuantSTE.apply(x, scale, zero_point, params.qmin, params.qmax)


class WeightFakeQuantizer(nn.Module):
    """Fake quantization of a weight with S and Z from its own current min and max (QAT, Jacob et al. sec. 3)."""

    def __init__(self, bits: int, symmetric: bool = True, per_channel: bool = False) -> None:
        super().__init__()
        self.bits, self.symmetric, self.per_channel = check_quant_bits(bits), bool(symmetric), bool(per_channel)

    def params(self, w: torch.Tensor) -> AffineQuant:
        return range_params(*tensor_range(w, self.per_channel), self.bits, self.symmetric)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return fake_quantize(w, self.params(w))


class ActivationFakeQuantizer(nn.Module):
    """Fake quantization of activations with a range tracked as an exponential moving average of each
    training batch's min and max (Jacob et al. 2018, sec. 3); eval mode uses the tracked range as is.

    Before the first batch (``initialised`` 0) it passes values through unchanged."""

    def __init__(self, bits: int, symmetric: bool = False, momentum: float = 0.01) -> None:
        super().__init__()
        if not 0.0 < float(momentum) <= 1.0:
            raise ValueError(f"momentum of the activation range must be in (0, 1], got {momentum!r}")
        self.bits, self.symmetric, self.momentum = check_quant_bits(bits), bool(symmetric), float(momentum)
        self.register_buffer("lo", torch.zeros(1))
        self.register_buffer("hi", torch.zeros(1))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.uint8))

    @torch.no_grad()
    def observe(self, x: torch.Tensor) -> None:
        """Fold a batch's min and max into the moving average (the first batch sets it)."""
        lo, hi = tensor_range(x, per_channel=False)
        if not bool(torch.isfinite(lo).all() and torch.isfinite(hi).all()):
            return  # a diverging batch must not poison the range; the trainer reports the divergence
        m = 1.0 if int(self.initialised) == 0 else self.momentum
        self.lo.mul_(1 - m).add_(m * lo.float())
        self.hi.mul_(1 - m).add_(m * hi.float())
        self.initialised.fill_(1)

    def params(self) -> AffineQuant:
        return range_params(self.lo, self.hi, self.bits, self.symmetric)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.observe(x)
        if int(self.initialised) == 0:
            return x
        return fake_quantize(x, self.params())
