"""Temperature-softened probabilities, Hinton, Vinyals, Dean 2015, "Distilling the Knowledge in a
Neural Network", section 2, equation (1):

    q_i = exp(z_i / T) / sum_j exp(z_j / T)

Higher T gives a softer distribution over classes; T = 1 is the ordinary softmax.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch


def check_temperature(T: float) -> float:
    """Return ``T`` as a float, or raise ``ValueError`` for T <= 0, NaN or infinity."""
    try:
        value = float(T)
    except (TypeError, ValueError):
        raise ValueError(f"temperature T must be a positive number, got {T!r}") from None
    if math.isnan(value) or value <= 0 or math.isinf(value):
        raise ValueError(f"temperature T must be a positive finite number, got {T!r}")
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


def soften(logits: Any, T: float = 1.0, dim: int = -1) -> Any:
    """Softmax of ``logits / T`` along ``dim`` (Hinton et al. 2015, eq. 1).

    Numerically stable for huge logits and tiny T (the maximum is subtracted before ``exp``).
    Accepts a list, numpy array or tensor of any shape and returns the same kind and shape.

    >>> [round(p, 5) for p in soften([2.0, 7.0, 10.0], T=5)]
    [0.11532, 0.31348, 0.5712]
    """
    T = check_temperature(T)
    z, kind = _as_tensor(logits)
    if z.numel() == 0:
        raise ValueError("logits are empty")
    if not torch.is_floating_point(z):
        z = z.to(torch.float64)
    # torch.softmax subtracts the row maximum internally, so exp never overflows.
    return _back(torch.softmax(z / T, dim=dim), kind, logits)


def log_soften(logits: torch.Tensor, T: float = 1.0, dim: int = -1) -> torch.Tensor:
    """log of ``soften(logits, T)``, computed stably with ``log_softmax`` (tensors only)."""
    return torch.log_softmax(logits / check_temperature(T), dim=dim)


def entropy(probabilities: Any, dim: int = -1) -> Any:
    """Shannon entropy H(p) = -sum_i p_i ln p_i in nats, with 0 ln 0 = 0.

    Takes the same kinds as ``soften``; returns a float for a single distribution given as a list,
    otherwise the same kind with ``dim`` reduced.
    """
    p, kind = _as_tensor(probabilities)
    p = p.to(torch.float64) if not torch.is_floating_point(p) else p
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
