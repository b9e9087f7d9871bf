"""Optimizers and learning-rate schedules by name (``config.optimizer``, ``config.lr_schedule``).

A schedule maps (step, total_steps, config) to a multiplier of ``config.lr``; the trainer sets the
learning rate of every parameter group before each step, so the schedule is a pure function of the
step and resuming from a checkpoint needs no scheduler state.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable

import torch

from ..registry import Registry

OPTIMIZERS: Registry = Registry("optimizer")
LR_SCHEDULES: Registry = Registry("learning-rate schedule")


@OPTIMIZERS.register("sgd")
def build_sgd(params: Iterable, config) -> torch.optim.Optimizer:
    """SGD with (optional) momentum and L2 weight decay."""
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


@OPTIMIZERS.register("adam")
def build_adam(params: Iterable, config) -> torch.optim.Optimizer:
    """Adam (Kingma and Ba 2015); ``momentum`` is used as beta1."""
    beta1 = config.momentum if config.momentum > 0 else 0.9
    return torch.optim.Adam(params, lr=config.lr, betas=(beta1, 0.999), weight_decay=config.weight_decay)


@LR_SCHEDULES.register("constant")
def constant_schedule(step: int, total_steps: int, config) -> float:
    return 1.0


@LR_SCHEDULES.register("cosine")
def cosine_schedule(step: int, total_steps: int, config) -> float:
    """Cosine annealing to zero (Loshchilov and Hutter 2017, eq. 5 without restarts)."""
    progress = min(max(step, 0), total_steps) / max(total_steps, 1)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


@LR_SCHEDULES.register("step")
def step_schedule(step: int, total_steps: int, config) -> float:
    """Multiply by ``lr_gamma`` at each milestone (a fraction of the run's steps)."""
    passed = sum(1 for m in config.lr_milestones if step >= m * total_steps)
    return float(config.lr_gamma) ** passed


def learning_rate(step: int, total_steps: int, config) -> float:
    """The learning rate for the optimizer step with 0-based index ``step``."""
    schedule: Callable = LR_SCHEDULES.get(config.lr_schedule)
    return float(config.lr) * schedule(step, total_steps, config)


def build_optimizer(params: Iterable, config) -> torch.optim.Optimizer:
    return OPTIMIZERS.get(config.optimizer)(list(params), config)
