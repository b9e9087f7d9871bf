"""Uniform affine quantization to b bits, per tensor or per output channel, with fake quantization.

Jacob et al. 2018, "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-
Only Inference", eq. 1: a real value r is represented by an integer q as

    r = S (q - Z),    q = clamp(round(r / S) + Z, q_min, q_max).

- **asymmetric**: q in [0, 2^b - 1]; the range [min(r, 0), max(r, 0)] is spread over the levels,
  S = (max - min) / (2^b - 1), and the zero point Z = round(-min / S) is an integer so that the
  real 0 is exactly representable (a pruned weight stays zero);
- **symmetric**: Z = 0, q in [-(2^(b-1) - 1), 2^(b-1) - 1] (the "restricted" range of
  Krishnamoorthi 2018, sec. 2.1), S = max|r| / (2^(b-1) - 1). It needs b >= 2.

``per_channel`` computes S and Z separately for every slice along axis 0 (output channels of a
Linear or Conv weight), Krishnamoorthi 2018, sec. 2.2.

Fake quantization (QAT, Jacob et al. 2018 sec. 3) computes dequantize(quantize(w)) in the
forward pass and passes the gradient straight through (Bengio et al. 2013's straight-through
estimator): d fake_quant(w) / dw = 1 inside the representable range, 0 where w was clamped.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .kmeans import check_bits


@dataclass
class QuantParams:
    """Scale S and zero point Z (broadcastable to the tensor) and the integer range."""

    scale: torch.Tensor
    zero_point: torch.Tensor
    qmin: int
    qmax: int

    @property
    def levels(self) -> int:
        return self.qmax - self.qmin + 1


def _reduce_dims(x: torch.Tensor, per_channel: bool) -> tuple[int, ...] | None:
    if not per_channel:
        return None
    if x.dim() < 2:
        raise ValueError(f"per-channel quantization needs a tensor with an output-channel axis, got shape {tuple(x.shape)}")
    return tuple(range(1, x.dim()))


def _amin_amax(x: torch.Tensor, per_channel: bool) -> tuple[torch.Tensor, torch.Tensor]:
    dims = _reduce_dims(x, per_channel)
    if dims is None:
        return x.min(), x.max()
    shape = (-1,) + (1,) * (x.dim() - 1)
    return x.amin(dim=dims).reshape(shape), x.amax(dim=dims).reshape(shape)


def quant_params(x: torch.Tensor, bits: int, symmetric: bool = True, per_channel: bool = False) -> QuantParams:
    """Scale and zero point for ``x`` from its min and max (per tensor, or per slice of axis 0).

    NaN or inf in ``x`` is a ``ValueError``: the range, and so every code, would be garbage."""
    params = _params(x, bits, symmetric, per_channel)
    if not bool(torch.isfinite(x.detach()).all()):
        raise ValueError("cannot quantize a tensor that holds NaN or inf (its range is undefined)")
    return params


def _params(x: torch.Tensor, bits: int, symmetric: bool, per_channel: bool) -> QuantParams:
    """``quant_params`` without the finiteness check: in QAT (``fake_quantize``) a diverging weight's
    NaN must flow on to the trainer's divergence check instead of raising inside the forward pass."""
    bits = check_bits(bits)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}")
    if x.numel() == 0:
        raise ValueError("cannot quantize an empty tensor")
    x = x.detach().to(torch.float32)
    lo, hi = _amin_amax(x, per_channel)
    lo, hi = torch.clamp(lo, max=0.0), torch.clamp(hi, min=0.0)  # the range always holds 0
    if symmetric:
        if bits < 2:
            raise ValueError("symmetric uniform quantization needs at least 2 bits (use binary.py for 1 bit)")
        qmax = 2 ** (bits - 1) - 1
        scale = torch.maximum(-lo, hi) / qmax
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero tensor
        return QuantParams(scale, torch.zeros_like(scale), -qmax, qmax)
    qmin, qmax = 0, 2**bits - 1
    scale = (hi - lo) / (qmax - qmin)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    zero_point = torch.clamp(torch.round(qmin - lo / scale), qmin, qmax)
    return QuantParams(scale, zero_point, qmin, qmax)


def quantize(x: torch.Tensor, params: QuantParams) -> torch.Tensor:
    """The integer codes q = clamp(round(x / S) + Z, q_min, q_max), as int64."""
    q = torch.round(x.detach() / params.scale) + params.zero_point
    return torch.clamp(q, params.qmin, params.qmax).to(torch.int64)


def dequantize(q: torch.Tensor, params: QuantParams) -> torch.Tensor:
    """The real values S (q - Z) of integer codes ``q`` (float32)."""
    return (q.to(torch.float32) - params.zero_point) * params.scale


def quantize_dequantize(x: torch.Tensor, bits: int, symmetric: bool = True, per_channel: bool = False) -> torch.Tensor:
    """dequantize(quantize(x)) with parameters from ``x`` itself; no gradient."""
    params = quant_params(x, bits, symmetric=symmetric, per_channel=per_channel)
    return dequantize(quantize(x, params), params).to(x.dtype)


def fake_quantize(x: torch.Tensor, bits: int, symmetric: bool = True, per_channel: bool = False) -> torch.Tensor:
    """Fake quantization with a straight-through estimator (Jacob et al. 2018, sec. 3).

    Forward: dequantize(quantize(x)). Backward: the incoming gradient passes unchanged where x is
    inside the representable range (round(x / S) + Z within [q_min, q_max]) and is zeroed where x
    was clamped. With S and Z from x's own min and max, only values beyond the range that the integer
    zero point shifted (by at most S / 2, asymmetric only) are clamped, as in TensorFlow's
    ``FakeQuantWithMinMaxVars`` with its "nudged" range.
    """
    params = _params(x, bits, symmetric, per_channel)
    q = torch.round(x.detach() / params.scale) + params.zero_point
    inside = (q >= params.qmin) & (q <= params.qmax)
    xq = dequantize(torch.clamp(q, params.qmin, params.qmax), params).to(x.dtype)
    passed = x * inside.to(x.dtype)
    # value: exactly xq (passed - passed.detach() is exactly 0); gradient: upstream where not clamped
    return xq.detach() + (passed - passed.detach())


class FakeQuantParametrization(torch.nn.Module):
    """``weight = fake_quantize(latent weight)``: the latent float weight stays trainable (QAT)."""

    def __init__(self, bits: int, symmetric: bool = True, per_channel: bool = False) -> None:
        super().__init__()
        self.bits = check_bits(bits)
        if symmetric and self.bits < 2:
            raise ValueError("symmetric uniform quantization needs at least 2 bits (use binary.py for 1 bit)")
        self.symmetric = bool(symmetric)
        self.per_channel = bool(per_channel)

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        return fake_quantize(original, self.bits, symmetric=self.symmetric, per_channel=self.per_channel)
