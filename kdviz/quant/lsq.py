"""Learned Step Size Quantization (LSQ): Esser, McKinstry, Bablani, Appuswamy, Modha, ICLR 2020.

A tensor v (a layer's weights or its input activations) is quantized with a *learned* step size s
(eq. 1-2):

    v_bar = round(clip(v / s, -Q_N, Q_P)),    v_hat = v_bar * s,

with Q_N = 2^(b-1), Q_P = 2^(b-1) - 1 for signed data (weights) and Q_N = 0, Q_P = 2^b - 1 for
unsigned data (activations after a ReLU). Rounding passes its gradient straight through (Bengio et
al. 2013), which gives v_hat's gradient with respect to s (eq. 3):

    d v_hat / d s = -v/s + round(v/s)   if -Q_N < v/s < Q_P
                  = -Q_N                if v/s <= -Q_N
                  = Q_P                 if v/s >= Q_P

and with respect to v: 1 inside the range, 0 where v was clipped. Section 2.2 scales the step's
gradient by g = 1 / sqrt(N * Q_P) (N: the number of weights of the layer, or of features of the
activation per example) so that steps and weights learn at comparable relative rates; section 2.1
initialises the step to 2 <|v|> / sqrt(Q_P). The gradient scale is applied as in the paper's
appendix (``grad_scale``: the value of s, the gradient times g).

The initial step matters when fine-tuning is short: LSQ+ (Bhalgat, Lee, Nagel, Blankevoort, Kwak,
CVPR-W 2020, sec. 3.3) shows LSQ is sensitive to it and starts from a step fitted to the data instead.
``initial_steps`` offers three starts (``LSQ_INITS``):

* ``"paper"``: 2 <|v|> / sqrt(Q_P) (Esser et al. sec. 2.1), the default;
* ``"minmax"``: the step of min-max post-training quantization, max|v| / ((Q_N + Q_P) / 2) for signed
  data and max(v) / Q_P for unsigned, which is exactly the scale S of ``fake_quant.range_params``
  (torch.ao's ``MinMaxObserver``): LSQ then starts from the PTQ model it is compared with;
* ``"mse"``: the step of least mean squared quantization error on LSQ's own grid, searched as
  ``ranges.mse_search`` searches a clipping range (Banner et al. 2019, eq. 3): candidates f * s_minmax,
  f = k / grid, k = 1..grid, each scored by mean (v - v_hat)^2, the grid's global minimum kept.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .fake_quant import check_quant_bits

MIN_STEP = 1e-8
LSQ_INITS = ("paper", "minmax", "mse")
MSE_GRID = 100


def check_lsq_init(init: str) -> str:
    """``init`` when it is one of ``LSQ_INITS``, else a ``ValueError`` naming them."""
    if not isinstance(init, str) or init not in LSQ_INITS:
        raise ValueError(f"unknown LSQ step initialisation {init!r} (known: {', '.join(LSQ_INITS)})")
    return init


def lsq_range(bits: int, signed: bool) -> tuple[int, int]:
    """(Q_N, Q_P) for ``bits`` (section 2): signed (2^(b-1), 2^(b-1) - 1) or unsigned (0, 2^b - 1)."""
    bits = check_quant_bits(bits)
    return (2 ** (bits - 1), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)


def gradient_scale_factor(count: int, q_p: int) -> float:
    """g = 1 / sqrt(N * Q_P) (section 2.2)."""
    if count < 1 or q_p < 1:
        raise ValueError(f"the gradient scale needs N >= 1 and Q_P >= 1, got N={count}, Q_P={q_p}")
    return 1.0 / math.sqrt(count * q_p)


def initial_step(v: torch.Tensor, q_p: int) -> float:
    """2 <|v|> / sqrt(Q_P) (section 2.1); a tensor of zeros gets a tiny positive step instead of 0."""
    step = 2.0 * float(v.detach().abs().mean()) / math.sqrt(q_p)
    return step if math.isfinite(step) and step > MIN_STEP else MIN_STEP


def _safe(steps: torch.Tensor) -> torch.Tensor:
    """Non-finite or tiny steps (a slice of zeros) become ``MIN_STEP``."""
    steps = torch.nan_to_num(steps.float(), nan=MIN_STEP, posinf=MIN_STEP)
    return torch.clamp(steps, min=MIN_STEP)


def minmax_steps(rows: torch.Tensor, q_n: int, q_p: int) -> torch.Tensor:
    """Per row, min-max PTQ's scale on LSQ's grid: max|v| / ((Q_N + Q_P) / 2) signed (Q_N > 0), max(v) / Q_P unsigned."""
    rows = rows.detach().float()
    if q_n > 0:
        return _safe(rows.abs().amax(dim=1) / ((q_n + q_p) / 2))
    return _safe(torch.clamp(rows.amax(dim=1), min=0.0) / q_p)


def mse_steps(rows: torch.Tensor, q_n: int, q_p: int, grid: int = MSE_GRID) -> torch.Tensor:
    """Per row, the step f * s_minmax (f = k / grid, k = 1..grid) of least mean (v - v_hat)^2 on LSQ's grid
    (Banner et al. 2019, eq. 3, searched like ``ranges.mse_search``); the first of equal minima wins."""
    rows = rows.detach().float()
    top = minmax_steps(rows, q_n, q_p)
    best, best_step = torch.full_like(top, float("inf")), top.clone()
    for k in range(1, grid + 1):
        s = (top * (k / grid)).clamp(min=MIN_STEP)[:, None]
        err = ((torch.clamp(torch.round(rows / s), -q_n, q_p) * s - rows) ** 2).mean(dim=1)
        better = err < best
        best, best_step = torch.where(better, err, best), torch.where(better, s[:, 0], best_step)
    return best_step


def initial_steps(rows: torch.Tensor, q_n: int, q_p: int, init: str = "paper") -> torch.Tensor:
    """One initial step per row of ``rows`` (C, n) by ``init`` (``LSQ_INITS``, see the module docstring)."""
    init = check_lsq_init(init)
    if init == "minmax":
        return minmax_steps(rows, q_n, q_p)
    if init == "mse":
        return mse_steps(rows, q_n, q_p)
    return _safe(2.0 * rows.detach().float().abs().mean(dim=1) / math.sqrt(q_p))


def grad_scale(x: torch.Tensor, scale: float) -> torch.Tensor:
    """The value of ``x``; its gradient multiplied by ``scale`` (the paper's appendix A)."""
    scaled = x * scale
    return (x - scaled).detach() + scaled


def round_pass(x: torch.Tensor) -> torch.Tensor:
    """round(x) forward, identity gradient backward (the straight-through estimator)."""
    return (x.round() - x).detach() + x


def lsq_quantize(v: torch.Tensor, step: torch.Tensor, q_n: int, q_p: int, g: float) -> torch.Tensor:
    """v_hat = round(clip(v / s, -Q_N, Q_P)) * s (eq. 1-2), with the step gradient of eq. 3 times ``g``."""
    s = grad_scale(step, g)
    return round_pass(torch.clamp(v / s, -q_n, q_p)) * s


def step_gradient_eq3(v: torch.Tensor, step: float, q_n: int, q_p: int) -> torch.Tensor:
    """Eq. 3 elementwise: d v_hat / d s for each element of v (without the gradient scale g)."""
    r = v / step
    return torch.where(r <= -q_n, torch.full_like(r, -float(q_n)),
                       torch.where(r >= q_p, torch.full_like(r, float(q_p)), torch.round(r) - r))


class LSQQuantizer(nn.Module):
    """One learned step size for one tensor (a layer's weight, or its input activations).

    ``signed`` picks the integer range; ``count`` is N of the gradient scale (set by ``initialise``
    from the tensor: all its elements for a weight, the elements of one example for activations).
    ``init`` picks the initial step (``LSQ_INITS``; ``"paper"``: sec. 2.1).
    Until ``initialise`` runs the quantizer passes values through unchanged."""

    def __init__(self, bits: int, signed: bool = True, per_example: bool = False, channels: int = 0,
                 init: str = "paper") -> None:
        super().__init__()
        self.bits, self.signed, self.per_example = check_quant_bits(bits), bool(signed), bool(per_example)
        self.init = check_lsq_init(init)
        self.q_n, self.q_p = lsq_range(self.bits, self.signed)
        self.channels = int(channels)  # > 0: one step per slice of axis 0 (per output channel), N per slice
        self.step = nn.Parameter(torch.ones(self.channels) if self.channels else torch.ones(()))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    @property
    def initialised(self) -> bool:
        return int(self.count) > 0

    def _count_of(self, v: torch.Tensor) -> int:
        per_slice = (self.per_example or self.channels) and v.dim() > 1
        return int(v[0].numel()) if per_slice else int(v.numel())

    @torch.no_grad()
    def initialise(self, v: torch.Tensor) -> None:
        """The initial step (``self.init``; the paper's 2 <|v|> / sqrt(Q_P), sec. 2.1) and N (sec. 2.2)
        from ``v``; per channel, from each slice."""
        if self.channels:
            if v.dim() < 1 or v.shape[0] != self.channels:
                raise ValueError(f"{self.channels} steps do not fit a tensor of {v.shape[0] if v.dim() else 0} channels")
            self.step.copy_(initial_steps(v.reshape(self.channels, -1), self.q_n, self.q_p, self.init))
        else:
            self.step.fill_(float(initial_steps(v.reshape(1, -1), self.q_n, self.q_p, self.init)[0]))
        self.count.fill_(self._count_of(v))

    @property
    def gradient_scale(self) -> float:
        return gradient_scale_factor(int(self.count), self.q_p) if self.initialised else 1.0

    def grid(self) -> torch.Tensor:
        """The representable values k * s, k = -Q_N..Q_P."""
        first = self.step.detach().reshape(-1)[0]  # per channel: the first output channel's grid
        return torch.arange(-self.q_n, self.q_p + 1, dtype=torch.float32) * float(first)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        if not self.initialised:
            return v
        with torch.no_grad():  # a step driven to 0 or below would divide by zero (torch.ao clamps it alike)
            self.step.clamp_(min=MIN_STEP)
        step = self.step.reshape((-1,) + (1,) * (v.dim() - 1)) if self.channels else self.step
        return lsq_quantize(v, step, self.q_n, self.q_p, self.gradient_scale)
