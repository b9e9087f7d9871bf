"""Evaluation helpers: logits of a whole split in eval mode, accuracy and mean cross-entropy."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

EVAL_BATCH = 1000


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no autograd inside the block; the previous train/eval mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def predict_logits(model: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """Logits (N, K) of ``images`` (N, C, H, W) in eval mode (dropout off), on ``device``."""
    with evaluating(model):
        return torch.cat([model(images[i : i + batch_size].to(device)) for i in range(0, len(images), batch_size)])


def accuracy_and_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """(fraction correct, mean cross-entropy in nats)."""
    labels = labels.to(logits.device)
    acc = (logits.argmax(dim=1) == labels).float().mean().item()
    return acc, F.cross_entropy(logits, labels).item()


def agreement(logits_a: torch.Tensor, logits_b: torch.Tensor) -> float:
    """Fraction of samples on which two models predict the same class (argmax)."""
    return (logits_a.argmax(dim=1) == logits_b.argmax(dim=1).to(logits_a.device)).float().mean().item()
