"""The ``"max_norm"`` training hook: the max-norm weight constraint used with dropout.

Srivastava, Hinton, Krizhevsky, Sutskever, Salakhutdinov, "Dropout: A Simple Way to Prevent Neural
Networks from Overfitting" (JMLR 2014), section 5.1: after each update, the vector of incoming
weights of every hidden unit is projected onto the ball ||w||_2 <= c. Hinton et al. 2015 (section
3) train their MNIST teacher "strongly regularized using dropout and weight-constraints".

Config entry: ``{"name": "max_norm", "max_norm": 3.5, "layers": ["fc1", "fc2"]}`` (default: every
Linear and Conv2d layer but the last). For a Linear layer a unit's incoming weights are a row of
``weight`` (out, in); for a Conv2d layer, one output channel's kernel (in, kh, kw).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..engine.hooks import HOOKS, TrainContext, TrainingHook
from ..palette import ROLE_COLORS
from .base import MethodSpec, register_method


def renorm_rows_(weight: torch.Tensor, max_norm: float) -> None:
    """Scale every output unit's incoming weights down to L2 norm ``max_norm`` where larger (in place)."""
    with torch.no_grad():
        flat = weight.view(weight.shape[0], -1)
        norms = flat.norm(dim=1, keepdim=True)
        flat.mul_(torch.clamp(max_norm / norms.clamp_min(1e-12), max=1.0))


@HOOKS.register("max_norm")
class MaxNormHook(TrainingHook):
    """After every optimizer step, clip each hidden unit's incoming weight vector to ``max_norm``."""

    def __init__(self, max_norm: float = 3.5, layers: list[str] | None = None) -> None:
        if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float)) or not math.isfinite(max_norm) or max_norm <= 0:
            raise ValueError(f"max_norm must be a positive number, got {max_norm!r}")
        self.max_norm, self.layers = float(max_norm), layers
        self.weights: dict[str, torch.Tensor] = {}

    def setup(self, ctx: TrainContext) -> None:
        modules = {n: m for n, m in ctx.model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
        if self.layers is None:
            names = list(modules)[:-1]  # every layer but the classifier
        else:
            missing = [n for n in self.layers if n not in modules]
            if missing:
                raise ValueError(f"max_norm: no Linear/Conv2d layer(s) {missing} (layers: {list(modules)})")
            names = list(self.layers)
        self.weights = {n: modules[n].weight for n in names}
        self.after_step(ctx)

    def after_step(self, ctx: TrainContext) -> None:
        for w in self.weights.values():
            renorm_rows_(w, self.max_norm)

    def metrics(self, ctx: TrainContext) -> dict[str, float]:
        if not self.weights:
            return {}
        return {"largest_norm": max(float(w.detach().flatten(1).norm(dim=1).max()) for w in self.weights.values())}


# A regulariser, not a kind of run (priority 0): a teacher trained with max-norm is still the teacher.
MAX_NORM = register_method(MethodSpec(
    name="max_norm", label="max-norm constraint", colour=ROLE_COLORS["baseline"],
    summary="max-norm weight constraint used with dropout (Srivastava et al. 2014, section 5.1)", hook=MaxNormHook,
))
