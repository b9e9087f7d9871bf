"""Post-training range setting: which real interval [lo, hi] the 2^b uniform levels cover.

A uniform quantizer (``uniform.py``, Jacob et al. 2018, eq. 1: r = S (q - Z)) is fixed by its range:
S = (hi - lo) / (q_max - q_min). A wide range keeps outliers but spreads the levels thinly (large
rounding error for the many small values); a narrow one clips the outliers. Three ways to choose it,
for weights (per tensor or per output channel) and for activations (per tensor, calibrated):

- **min-max**: lo = min(x), hi = max(x) (torch.ao's ``MinMaxObserver`` / ``PerChannelMinMaxObserver``;
  Krishnamoorthi 2018, sec. 3.1). Scale and zero point equal torch.ao's to float precision
  (``tests/quant/test_ranges.py``: symmetric with ``quant_min = -(2^(b-1) - 1)``, as ``uniform.py``'s
  restricted range).
- **percentile**: hi = the p-th percentile of |x| (symmetric) or lo, hi = the (100 - p)-th and p-th
  percentiles of x (asymmetric), linear interpolation between order statistics as ``numpy.percentile``
  (McKinstry et al. 2019; Wu et al. 2020, "Integer Quantization for Deep Learning Inference", sec. 4.2,
  who use 99.9 / 99.99 / 99.999).
- **MSE**: the clipping value that minimises the quantization error E[(x - Q(x))^2] (Banner et al.
  2019, "Post-training 4-bit quantization", eq. 3-5 give it in closed form for a Laplace or Gauss
  prior; AIMET's TF-enhanced and torch.ao's ``HistogramObserver`` search it). We search it *exactly on
  the values*: candidate ranges f * [lo, hi] of the min-max range for f = k / grid, k = 1..grid (a
  1-D shrink, one f per channel when per channel), each candidate quantized with ``uniform.py`` and
  its mean squared error measured, the global minimum of the grid kept.

How this differs from torch.ao's ``HistogramObserver`` (``_non_linear_param_search``): it bins the
values into 2048 bins, models each bin as uniform, and shrinks the range one quantile step (1e-5) at a
time from whichever side holds less mass, *stopping at the first step that increases* its estimated
L2 error (a local minimum); and it always scores the error against 2^8 = 256 destination bins (its
``dst_nbins`` comes from the dtype, not from a narrower ``quant_max``), so at 3 or 4 bits it picks an
8-bit range. Ours scores the error at the bit width actually used, on the real values, over the whole
grid. Measured (``tests/quant/test_ranges.py``, 4,000 Gaussian values plus outliers at 12 and -9,
asymmetric): at 4 bits HistogramObserver's range gives a squared error of 0.162, as min-max's 0.162,
ours 0.043 (range shrunk to 31 %); at 8 bits 0.000552 against our 0.000548.

Activations are calibrated on a few batches (``calibrate_inputs``): a forward pre-hook on every
quantizable layer records its input (the images for the first layer, ReLU outputs after) with the
exact running min and max, and up to ``MAX_SAMPLES`` evenly strided values for percentile and MSE.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from .kmeans import check_bits
from .uniform import QuantParams, dequantize, quant_params, quantize

RANGE_METHODS = ("minmax", "percentile", "mse")
RANGE_LABELS = {"minmax": "min-max", "percentile": "percentile", "mse": "MSE-optimal"}
MAX_SAMPLES = 1 << 19  # activation values kept per layer for percentile and MSE (min and max stay exact)


def check_method(method: str) -> str:
    """``method`` when it is a known range method, else a ``ValueError`` naming the known ones."""
    if method not in RANGE_METHODS:
        raise ValueError(f"unknown range method {method!r} (known: {', '.join(RANGE_METHODS)})")
    return method


@dataclass(frozen=True)
class RangeSpec:
    """How a post-training quantizer sets its ranges.

    ``method``: the weights' range method; ``act_method``: the activations' (None: the same);
    ``percentile``: p for the percentile method, in (50, 100]; ``grid``: candidates of the MSE search;
    ``symmetric`` / ``per_channel``: the weights' scheme (activations are per tensor, asymmetric,
    since ReLU outputs and images are >= 0); ``act_bits``: the activations' bit width (None: float).
    """

    method: str = "minmax"
    act_method: str | None = None
    percentile: float = 99.99
    grid: int = 100
    symmetric: bool = True
    per_channel: bool = False
    act_bits: int | None = 8

    def validate(self) -> "RangeSpec":
        check_method(self.method)
        check_method(self.activation_method)
        if not 50 < float(self.percentile) <= 100:
            raise ValueError(f"percentile must be in (50, 100], got {self.percentile}")
        if isinstance(self.grid, bool) or not isinstance(self.grid, int) or not 2 <= self.grid <= 10_000:
            raise ValueError(f"grid must be an integer in 2..10000, got {self.grid!r}")
        if self.act_bits is not None:
            check_bits(self.act_bits)
        return self

    @property
    def activation_method(self) -> str:
        return self.method if self.act_method is None else self.act_method

    def label(self) -> str:
        """``"MSE-optimal"``, ``"percentile 99.9"``..."""
        name = RANGE_LABELS.get(self.method, self.method)
        return f"{name} {self.percentile:g}" if self.method == "percentile" else name


def _rows(x: torch.Tensor, per_channel: bool) -> torch.Tensor:
    """``x`` as a float32 (C, n) matrix: one row per output channel, or a single row."""
    x = x.detach().to(torch.float32)
    if per_channel:
        if x.dim() < 2:
            raise ValueError(f"per-channel ranges need an output-channel axis, got shape {tuple(x.shape)}")
        return x.reshape(x.shape[0], -1)
    return x.reshape(1, -1)


def percentile_rows(rows: torch.Tensor, q: float) -> torch.Tensor:
    """The q-th percentile (0..100) of each row, linear interpolation between order statistics
    (``numpy.percentile``'s default): position q / 100 * (n - 1) in the sorted row."""
    ordered = rows.sort(dim=1).values
    pos = float(q) / 100.0 * (ordered.shape[1] - 1)
    below = int(pos)
    above = min(below + 1, ordered.shape[1] - 1)
    frac = pos - below
    return ordered[:, below] + frac * (ordered[:, above] - ordered[:, below])


def range_params(lo: torch.Tensor, hi: torch.Tensor, bits: int, symmetric: bool = True) -> QuantParams:
    """Scale and zero point covering [lo, hi] (tensors of shape () or (C,)), by ``uniform.quant_params``
    itself: the params of a tensor whose min is lo and max hi, so no second formula exists."""
    lo, hi = torch.as_tensor(lo, dtype=torch.float32), torch.as_tensor(hi, dtype=torch.float32)
    pair = torch.stack([lo, hi], dim=-1)
    return quant_params(pair, bits, symmetric=symmetric, per_channel=pair.dim() == 2)


def broadcast_to(params: QuantParams, like: torch.Tensor, per_channel: bool) -> QuantParams:
    """``params`` reshaped to broadcast against ``like`` (per channel: (C, 1, 1, ...))."""
    if not per_channel:
        return QuantParams(params.scale.reshape(()), params.zero_point.reshape(()), params.qmin, params.qmax)
    shape = (-1,) + (1,) * (like.dim() - 1)
    return QuantParams(params.scale.reshape(shape), params.zero_point.reshape(shape), params.qmin, params.qmax)


def quantize_with(x: torch.Tensor, params: QuantParams) -> torch.Tensor:
    """dequantize(quantize(x)) with given parameters (values beyond the range are clipped)."""
    return dequantize(quantize(x, params), params).to(x.dtype)


def _minmax_rows(rows: torch.Tensor, symmetric: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if symmetric:
        top = rows.abs().amax(dim=1)
        return -top, top
    return rows.amin(dim=1), rows.amax(dim=1)


def _percentile_rows_range(rows: torch.Tensor, p: float, symmetric: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if symmetric:
        top = percentile_rows(rows.abs(), p)
        return -top, top
    return percentile_rows(rows, 100.0 - p), percentile_rows(rows, p)


def mse_search(rows: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, bits: int, symmetric: bool,
               grid: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(lo, hi, mse) per row: the shrink f * [lo, hi], f in {1/grid, ..., 1}, of least mean squared
    quantization error sum_j (x_j - Q_f(x_j))^2 / n (Banner et al. 2019, eq. 3), the grid's global
    minimum. The first of equal minima (the narrowest range) wins."""
    best = torch.full((rows.shape[0],), float("inf"))
    best_f = torch.ones(rows.shape[0])
    for k in range(1, grid + 1):
        f = k / grid
        params = broadcast_to(range_params(lo * f, hi * f, bits, symmetric), rows, per_channel=True)
        err = ((rows - quantize_with(rows, params)) ** 2).mean(dim=1)
        better = err < best
        best, best_f = torch.where(better, err, best), torch.where(better, torch.full_like(best_f, f), best_f)
    return lo * best_f, hi * best_f, best


def clip_range(x: torch.Tensor, bits: int, method: str = "minmax", symmetric: bool = True, per_channel: bool = False,
               percentile: float = 99.99, grid: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """The range [lo, hi] of ``x`` by ``method`` (``RANGE_METHODS``), shapes () or (C,) per channel.
    ``quant_params``/``range_params`` then widen it to hold 0, as every affine quantizer must."""
    check_bits(bits)
    check_method(method)
    rows = _rows(x, per_channel)
    if rows.numel() == 0:
        raise ValueError("cannot set the range of an empty tensor")
    if not bool(torch.isfinite(rows).all()):
        raise ValueError("cannot set the range of a tensor that holds NaN or inf")
    if method == "percentile":
        lo, hi = _percentile_rows_range(rows, percentile, symmetric)
    else:
        lo, hi = _minmax_rows(rows, symmetric)
        if method == "mse":
            lo, hi, _ = mse_search(rows, torch.clamp(lo, max=0.0), torch.clamp(hi, min=0.0), bits, symmetric, grid)
    return (lo, hi) if per_channel else (lo.reshape(()), hi.reshape(()))


def tensor_params(x: torch.Tensor, bits: int, method: str = "minmax", symmetric: bool = True,
                  per_channel: bool = False, percentile: float = 99.99, grid: int = 100) -> QuantParams:
    """Scale and zero point of ``x`` with its range set by ``method``, broadcastable to ``x``."""
    lo, hi = clip_range(x, bits, method, symmetric, per_channel, percentile, grid)
    return broadcast_to(range_params(lo, hi, bits, symmetric), x, per_channel)


def weight_params(w: torch.Tensor, bits: int, spec: RangeSpec) -> QuantParams:
    """A weight's parameters as ``spec`` sets them (its method, scheme and granularity)."""
    return tensor_params(w, bits, spec.method, spec.symmetric, spec.per_channel, spec.percentile, spec.grid)


def quantization_mse(x: torch.Tensor, params: QuantParams) -> float:
    """Mean squared error of quantizing ``x`` with ``params``."""
    return float(((x.detach().float() - quantize_with(x.detach().float(), params)) ** 2).mean())


@dataclass
class ActivationStats:
    """A layer's calibrated input: exact min and max over every batch, and up to ``MAX_SAMPLES`` values."""

    lo: float
    hi: float
    samples: torch.Tensor
    seen: int

    def params(self, bits: int, method: str = "minmax", percentile: float = 99.99, grid: int = 100) -> QuantParams:
        """Per-tensor asymmetric parameters of this input (Jacob et al. 2018: activations use the
        full [0, 2^b - 1] range with a zero point). Min-max uses the exact running min and max."""
        check_method(method)
        if method == "minmax":
            return broadcast_to(range_params(torch.tensor(self.lo), torch.tensor(self.hi), bits, False), self.samples, False)
        return tensor_params(self.samples, bits, method, symmetric=False, percentile=percentile, grid=grid)


def calibrate_inputs(model: nn.Module, layers: Mapping[str, nn.Module], batches: Iterable[torch.Tensor],
                     max_samples: int = MAX_SAMPLES) -> dict[str, ActivationStats]:
    """Run ``batches`` through ``model`` (eval, no grad) and record the input of each of ``layers`` by a
    forward pre-hook: exact min and max, and up to ``max_samples`` evenly strided values per layer."""
    seen: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    lows: dict[str, float] = {}
    highs: dict[str, float] = {}

    def record(name: str):
        def hook(module, args):
            x = args[0].detach().float().reshape(-1)
            lows[name] = min(lows.get(name, float("inf")), float(x.min()))
            highs[name] = max(highs.get(name, float("-inf")), float(x.max()))
            seen[name].append(x.clone())
        return hook

    handles = [m.register_forward_pre_hook(record(name)) for name, m in layers.items()]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for batch in batches:
                model(batch)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    stats = {}
    for name, parts in seen.items():
        if not parts:
            raise ValueError(f"layer {name!r} saw no input while calibrating (give at least one batch)")
        values = torch.cat(parts)
        step = max(1, -(-values.numel() // max_samples))
        stats[name] = ActivationStats(lows[name], highs[name], values[::step].contiguous(), int(values.numel()))
    return stats


__all__ = ["ActivationStats", "MAX_SAMPLES", "RANGE_LABELS", "RANGE_METHODS", "RangeSpec", "broadcast_to",
           "calibrate_inputs", "check_method", "clip_range", "mse_search", "percentile_rows", "quantization_mse",
           "quantize_with", "range_params", "tensor_params", "weight_params"]
