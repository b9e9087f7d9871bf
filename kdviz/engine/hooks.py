"""Training hooks: how a method plugs into the one training engine without touching its loop.

A hook is named in the run config (``hooks=[{"name": "prune", "sparsity": 0.9}]``) and built from
the ``HOOKS`` registry, so configs stay plain JSON and a run folder can be replayed. The engine
calls, in order, for every run:

    load_state_dict(state)           when resuming, before setup
    setup(ctx)                       once, after the model, teacher and optimizer exist
    extra_parameters()               once, after setup: trainable extras (adapters, built in setup),
                                     added to the optimizer as one more parameter group
    per step:  loss_terms(ctx, batch) -> {name: 0-d tensor}, each added to the total loss and logged
               after_step(ctx)       after optimizer.step() (e.g. re-apply pruning masks)
    per evaluation: metrics(ctx) -> {name: float}, logged with the evaluation
    per snapshot:   snapshot(ctx) -> {name: numpy array}, stored with the snapshot
    checkpoints:    state_dict() / load_state_dict(state), tensors only (weights_only=True safe)

If ``needs_features`` is true, the engine runs the student (and teacher, if any) with
``forward_with_features`` and passes the named features in the ``StepBatch``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..registry import Registry


@dataclass
class TrainContext:
    """What a hook may read (and, for the model, change) during training."""

    model: nn.Module
    teacher: nn.Module | None
    config: Any  # TrainConfig
    dataset: Any  # DatasetBundle
    device: torch.device
    optimizer: torch.optim.Optimizer | None = None
    step: int = 0
    epoch: int = 0
    total_steps: int = 0


@dataclass
class StepBatch:
    """One training step's inputs and the student's (and teacher's) outputs."""

    images: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor
    logits: torch.Tensor
    features: dict[str, torch.Tensor] | None = None
    teacher_logits: torch.Tensor | None = None
    teacher_features: dict[str, torch.Tensor] | None = field(default=None)


class TrainingHook:
    """Base class: every method is optional; override what the method needs."""

    needs_features: bool = False

    def setup(self, ctx: TrainContext) -> None:
        pass

    def extra_parameters(self) -> list[nn.Parameter]:
        return []

    def loss_terms(self, ctx: TrainContext, batch: StepBatch) -> dict[str, torch.Tensor]:
        return {}

    def after_step(self, ctx: TrainContext) -> None:
        pass

    def metrics(self, ctx: TrainContext) -> dict[str, float]:
        return {}

    def snapshot(self, ctx: TrainContext) -> dict[str, np.ndarray]:
        return {}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        pass


HOOKS: Registry = Registry("training hook")


def build_hook(spec: dict) -> TrainingHook:
    """Build a hook from its config entry ``{"name": ..., **options}``."""
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(f"a hook entry must be a dict with a 'name', got {spec!r}")
    options = {k: v for k, v in spec.items() if k != "name"}
    try:
        return HOOKS.get(spec["name"])(**options)
    except TypeError as exc:
        raise ValueError(f"bad options for hook {spec['name']!r}: {exc}") from None
