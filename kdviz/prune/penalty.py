"""An L1 sparsity penalty on the prunable weights, added to the training loss.

    L = L_task + lambda * sum_l sum_i |w_{l,i}|

The L1 norm pulls weights to exactly zero at a constant rate (its subgradient is lambda * sign(w)),
so more weights fall below a magnitude threshold before pruning. Han et al. 2015 (section 3.1,
"Regularization") compare L1 and L2: L1 gives better accuracy right after pruning, L2 after
retraining. Biases are not penalised.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from .masks import prunable_weights


def l1_penalty(model: nn.Module, weight: float, names: Iterable[str] | None = None) -> torch.Tensor:
    """``weight * sum |w|`` over the Linear/Conv2d weights (or the named ones); a 0-d tensor with grad."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
        raise ValueError(f"the L1 penalty weight must be a finite number >= 0, got {weight!r}")
    params = prunable_weights(model, names)
    total = sum(p.abs().sum() for p in params.values())
    return float(weight) * total
