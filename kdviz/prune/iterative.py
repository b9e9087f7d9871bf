"""Iterative pruning with retraining: prune a little, fine-tune with the masks held, repeat.

Han et al. 2015, section 3.3 ("Iterative Pruning"): "learning the right connections is an iterative
process ... each iteration is a greedy search in that we find the best connections", and pruning
then retraining repeatedly reaches higher compression than one shot at the same accuracy. The
targets of successive rounds typically follow Zhu & Gupta's AGP curve (``agp_targets``).

``fine_tune`` is a plain minibatch loop that re-applies the masks after every optimizer step, so
pruned weights stay exactly zero (also under momentum and weight decay).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .magnitude import SparsitySpec, magnitude_masks
from .masks import PruningMasks
from .penalty import l1_penalty
from .schedule import agp_sparsity


def fine_tune(
    model: nn.Module, masks: PruningMasks | None, images: torch.Tensor, labels: torch.Tensor,
    optimizer: torch.optim.Optimizer, steps: int, batch_size: int = 128, l1: float = 0.0,
    generator: torch.Generator | None = None,
) -> float:
    """``steps`` SGD steps on shuffled minibatches (cross-entropy, plus ``l1_penalty`` if ``l1`` > 0),
    re-applying ``masks`` after each optimizer step. Returns the mean training loss."""
    if steps < 0 or batch_size < 1:
        raise ValueError(f"steps must be >= 0 and batch_size >= 1, got {steps} and {batch_size}")
    model.train()
    if masks is not None:
        masks.apply(model)
    n, total, done = len(labels), 0.0, 0
    order = torch.randperm(n, generator=generator)
    cursor = 0
    while done < steps:
        if cursor + batch_size > n:
            order, cursor = torch.randperm(n, generator=generator), 0
        idx = order[cursor : cursor + batch_size]
        cursor += batch_size
        loss = F.cross_entropy(model(images[idx]), labels[idx])
        if l1 > 0:
            loss = loss + l1_penalty(model, l1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if masks is not None:
            masks.apply(model)
        total += float(loss.detach())
        done += 1
    return total / max(steps, 1)


def agp_targets(final: SparsitySpec, rounds: int, initial: float = 0.0) -> list[SparsitySpec]:
    """Per-round targets on Zhu & Gupta's cubic curve: round r = 1..rounds is step t = r with t0 = 0,
    dt = 1, n = rounds, so the last round reaches ``final`` (a float, or a dict per parameter name)."""
    if rounds < 1:
        raise ValueError(f"need at least one round, got {rounds}")
    if isinstance(final, Mapping):
        return [{n: agp_sparsity(r, initial, s, 0, rounds) for n, s in final.items()} for r in range(1, rounds + 1)]
    return [agp_sparsity(r, initial, final, 0, rounds) for r in range(1, rounds + 1)]


@dataclass
class PruneRound:
    """One prune-and-retrain round: its target, the sparsity reached and the accuracy after it."""

    round: int
    target: SparsitySpec
    sparsity: dict[str, float]
    overall_sparsity: float
    accuracy_pruned: float  # right after pruning, before retraining
    accuracy_retrained: float
    seconds: float


def iterative_prune(
    model: nn.Module, targets: Sequence[SparsitySpec], retrain: Callable[[nn.Module, PruningMasks], None],
    evaluate: Callable[[nn.Module], float], scope: str = "layer", masks: PruningMasks | None = None,
    on_round: Callable[[PruneRound], None] | None = None, allow_empty: bool = False,
) -> tuple[PruningMasks, list[PruneRound]]:
    """For each target: magnitude-prune (already pruned weights stay pruned), evaluate, call
    ``retrain(model, masks)`` (which must re-apply the masks after each step, e.g. ``fine_tune``),
    evaluate again. Returns the final masks and one ``PruneRound`` per target.

    A target that would prune a layer whole is a ``ValueError`` naming it, raised before that round
    changes the model, unless ``allow_empty`` (``kdviz.prune.magnitude``, "Emptied layers")."""
    history: list[PruneRound] = []
    for r, target in enumerate(targets, start=1):
        start = time.perf_counter()
        masks = magnitude_masks(model, target, scope=scope, previous=masks, allow_empty=allow_empty)
        masks.apply(model)
        pruned_acc = evaluate(model)
        retrain(model, masks)
        masks.apply(model)
        record = PruneRound(r, target, masks.sparsity(), masks.overall_sparsity(), pruned_acc, evaluate(model),
                            time.perf_counter() - start)
        history.append(record)
        if on_round is not None:
            on_round(record)
    if masks is None:
        raise ValueError("give at least one target sparsity")
    return masks, history
