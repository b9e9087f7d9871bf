"""Dropout that draws its masks from a run's own generator, so runs training at once in several
threads stay reproducible.

Srivastava, Hinton, Krizhevsky, Sutskever, Salakhutdinov 2014, "Dropout", section 4 (inverted form,
as ``torch.nn.Dropout``): in training each unit is kept with probability ``1 - p`` and the kept ones
are scaled by ``1 / (1 - p)``, so no rescaling is needed at test time; in evaluation it is the identity.

``torch.nn.Dropout`` draws from torch's global generator, which every thread shares: a run's masks
then depend on what other jobs drew meanwhile. :func:`reseed_dropout` gives a model's dropout layers
one generator of their own, seeded from the run's seed and the step (as the data order is seeded
from the seed and the epoch), so a run's masks at step ``t`` are the same alone, beside other jobs,
and after a resume. Without a generator (a model used outside the engine) it is ``nn.Dropout``.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

STEP_STRIDE = 1_000_003  # seed * STEP_STRIDE + step: distinct per (seed, step) for any run under 1e6 steps


class SeededDropout(nn.Module):
    """Inverted dropout with probability ``p``; masks from ``self.generator`` when set (see module docstring)."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {p}")
        self.p = float(p)
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if not self.training or self.p == 0.0:
            return x
        if self.generator is None:
            return F.dropout(x, self.p, training=True)
        keep = torch.empty_like(x).bernoulli_(1.0 - self.p, generator=self.generator)
        return x * keep / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def reseed_dropout(model: nn.Module, seed: int, step: int) -> int:
    """Seed the dropout masks of ``model``'s next forward pass from ``(seed, step)``; returns how many
    active dropout layers share the generator (0: nothing to do, nothing allocated)."""
    layers = [m for m in model.modules() if isinstance(m, SeededDropout) and m.p > 0.0]
    if not layers:
        return 0
    generator = layers[0].generator
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    if generator is None or generator.device != device:
        generator = torch.Generator(device=device)
        for layer in layers:
            layer.generator = generator
    generator.manual_seed(int(seed) * STEP_STRIDE + int(step))
    return len(layers)
