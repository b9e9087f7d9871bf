"""Helpers the feature-distillation hooks share: probe batches, teacher checks, batch statistics.

FSP (Yim et al. 2017), FitNets hints (Romero et al. 2015) and attention transfer (Zagoruyko &
Komodakis 2017) all compare named intermediate features of student and teacher on a fixed probe
batch of test images, so their snapshots are comparable over time.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from ..engine.hooks import TrainContext


@contextlib.contextmanager
def batch_statistics(model: nn.Module) -> Iterator[nn.Module]:
    """No autograd, eval mode (no dropout), but BatchNorm layers use the batch's own statistics
    as in training; their running statistics and the model's train/eval mode are restored."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [{k: b.clone() for k, b in m.named_buffers(recurse=False)} for m in norms]
    was_training = model.training
    model.eval()
    for m in norms:
        m.train()
    try:
        with torch.no_grad():
            yield model
    finally:
        for m, buffers in zip(norms, saved):
            for k, b in buffers.items():
                getattr(m, k).copy_(b)
        model.train(was_training)


def probe_images(ctx: TrainContext, size: int) -> torch.Tensor:
    """The first ``size`` test images: a fixed batch, so snapshots are comparable over time."""
    return torch.as_tensor(ctx.dataset.test_images[:size], dtype=torch.float32, device=ctx.device)


def require_teacher(ctx: TrainContext, hook: str) -> nn.Module:
    if ctx.teacher is None:
        raise ValueError(f"the {hook!r} hook needs a teacher: set 'teacher' in the run config")
    return ctx.teacher


def step_features(batch_features: dict | None, who: str, hook: str) -> dict[str, torch.Tensor]:
    if batch_features is None:
        raise ValueError(f"the {hook!r} hook got no {who} features; the engine must honour needs_features")
    return batch_features


def probe_metrics(labels: Sequence[str], per_pair: Sequence[float], total: float) -> dict[str, float]:
    """The evaluation metrics of a feature-distillation hook: the loss on the probe batch and one
    ``probe_loss/<pair>`` per layer pair (the engine stores them under the hook's label)."""
    out = {"probe_loss": float(total)}
    out.update({f"probe_loss/{label}": float(v) for label, v in zip(labels, per_pair)})
    return out
