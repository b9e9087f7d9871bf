"""Temperature-softened probabilities, Hinton, Vinyals, Dean 2015, "Distilling the Knowledge in a
Neural Network", section 2, equation (1):

    q_i = exp(z_i / T) / sum_j exp(z_j / T)

Higher T gives a softer distribution over classes; T = 1 is the ordinary softmax.
"""
from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np
import torch

# The smallest T whose reciprocal is a finite float64 (about 5.56e-309; the largest float64 is 1.8e308).
MIN_TEMPERATURE = math.nextafter(1.0 / sys.float_info.max, 1.0)


def check_temperature(T: float) -> float:
    """Return ``T`` as a float, or raise ``ValueError`` naming T for T <= 0, NaN, infinity, or a T
    so small that 1/T overflows a float64 (T below about 5.6e-309): softmax(z / T) would then divide
    finite logits into infinities and return NaN."""
    if isinstance(T, bool):
        raise ValueError(f"temperature T must be a positive number, got {T!r}")
    try:
        value = float(T)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"temperature T must be a positive number, got {T!r}") from None
    if math.isnan(value) or value <= 0 or math.isinf(value):
        raise ValueError(f"temperature T must be a positive finite number, got {T!r}")
    if math.isinf(1.0 / value):
        raise ValueError(
            f"temperature T = {T!r} is too small: 1/T overflows a float64, so softmax(z / T) cannot be "
            f"computed; use T >= {MIN_TEMPERATURE:g} (T = 0.01 is already one-hot for any logits a network gives)"
        )
    return value


def _as_tensor(values: Any) -> tuple[torch.Tensor, str]:
    if isinstance(values, torch.Tensor):
        return values, "tensor"
    if isinstance(values, np.ndarray):
        return torch.from_numpy(np.asarray(values, dtype=np.float64)), "numpy"
    if isinstance(values, (list, tuple)):
        return torch.tensor(values, dtype=torch.float64), "list"
    raise TypeError(f"logits must be a list, numpy array or torch tensor, got {type(values).__name__}")


def _back(result: torch.Tensor, kind: str, like: Any) -> Any:
    if kind == "tensor":
        return result
    if kind == "numpy":
        return result.numpy().astype(np.result_type(like.dtype, np.float32), copy=False)
    return result.tolist()


def _scaled(z: torch.Tensor, T: float, dim: int) -> torch.Tensor:
    """(z - max_dim z) / T: the largest entry becomes exactly 0, the others <= 0 (possibly -inf).

    Subtracting the maximum *before* dividing keeps a tiny T from turning finite logits into
    inf / inf = NaN inside the softmax. When 1/T overflows the tensor's own dtype (a float32 T below
    about 2.9e-39), the division is done in float64 so that 0 / T stays 0 rather than 0 / 0."""
    shifted = z - z.amax(dim=dim, keepdim=True).detach()
    if 1.0 / T > torch.finfo(z.dtype).max:
        return (shifted.to(torch.float64) / T).to(z.dtype)
    return shifted / T


def _check_logits(z: torch.Tensor) -> torch.Tensor:
    if z.numel() == 0:
        raise ValueError("logits are empty")
    if not torch.is_floating_point(z):
        z = z.to(torch.float64)
    if not bool(torch.isfinite(z).all()):
        raise ValueError("logits must be finite numbers (got NaN or infinity); softmax(z / T) of them is undefined")
    return z


def soften(logits: Any, T: float = 1.0, dim: int = -1) -> Any:
    """Softmax of ``logits / T`` along ``dim`` (Hinton et al. 2015, eq. 1).

    Numerically stable for huge logits and tiny T: the maximum is subtracted before dividing by T
    (``_scaled``), so exp never overflows and a T of 1e-300 gives the one-hot limit, never NaN.
    Accepts a list, numpy array or tensor of any shape and returns the same kind and shape.
    A ``ValueError`` names a bad T (``check_temperature``), empty logits or non-finite logits.

    >>> [round(p, 5) for p in soften([2.0, 7.0, 10.0], T=5)]
    [0.11532, 0.31348, 0.5712]
    """
    T = check_temperature(T)
    z, kind = _as_tensor(logits)
    z = _check_logits(z)
    return _back(torch.softmax(_scaled(z, T, dim), dim=dim), kind, logits)


def log_soften(logits: torch.Tensor, T: float = 1.0, dim: int = -1) -> torch.Tensor:
    """log of ``soften(logits, T)``, computed stably with ``log_softmax`` (tensors only).

    The maximum is subtracted before dividing by T (as in ``soften``); entries whose probability
    underflows are -inf. Logits are not checked for NaN here: a diverging network's NaN must reach
    the trainer's divergence check, not raise inside the loss."""
    T = check_temperature(T)
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"log_soften takes a torch.Tensor, got {type(logits).__name__}")
    if logits.numel() == 0:
        raise ValueError("logits are empty")
    return torch.log_softmax(_scaled(logits, T, dim), dim=dim)


def entropy(probabilities: Any, dim: int = -1) -> Any:
    """Shannon entropy H(p) = -sum_i p_i ln p_i in nats, with 0 ln 0 = 0.

    Takes the same kinds as ``soften``; returns a float for a single distribution given as a list,
    otherwise the same kind with ``dim`` reduced. Empty, NaN, infinite or negative input is a
    ``ValueError`` (a NaN entropy would draw as a silent gap).
    """
    p, kind = _as_tensor(probabilities)
    p = p.to(torch.float64) if not torch.is_floating_point(p) else p
    if p.numel() == 0:
        raise ValueError("probabilities are empty")
    if not bool(torch.isfinite(p).all()) or bool((p < 0).any()):
        raise ValueError("probabilities must be finite and non-negative (got NaN, infinity or a negative value)")
    terms = torch.where(p > 0, -p * torch.log(p.clamp_min(torch.finfo(p.dtype).tiny)), torch.zeros_like(p))
    h = terms.sum(dim=dim)
    if kind == "list":
        return h.item() if h.ndim == 0 else h.tolist()
    return _back(h, kind, probabilities)


def temperature_table(logits: Any = (2.0, 7.0, 10.0), temperatures: Any = (1, 5, 10, 20)) -> list[dict[str, float]]:
    """One row per temperature: T and softmax(logits / T) per class, for the worked example.

    For Hinton's seed example, logits [2, 7, 10] at T = 1 give [0.00032, 0.04741, 0.95227].
    """
    rows = []
    for T in temperatures:
        probs = soften(list(map(float, logits)), T)
        rows.append({"T": float(T), **{f"z = {z:g}": p for z, p in zip(logits, probs)}, "entropy (nats)": entropy(probs)})
    return rows
