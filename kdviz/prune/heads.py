"""Attention-head importance and iterative head pruning: Michel, Levy & Neubig, "Are Sixteen Heads
Really Better than One?" (NeurIPS 2019).

Gates. Each head h of a multi-head attention layer gets a gate xi_h multiplying its output before the
output projection (eq. 2: MHAtt(x) = sum_h xi_h Att_h(x)); xi = 1 everywhere is the trained model,
xi_h = 0 removes head h (``TinyViT.forward_detailed(x, head_mask)``, ``head_mask[l]`` of shape (H,)).

Importance (eq. 4). I_h = E_x |dL(x)/dxi_h| at xi = 1, L the task loss (cross-entropy) of one example:
by Taylor, |L(xi_h=0) - L(xi_h=1)| ~ |dL/dxi_h|, the loss change from removing h. The expectation is
over a data set. ``per_example=True`` (the default) takes the absolute value per example, as the
equation reads (per-example gradients with ``torch.func.vmap``). ``per_example=False`` is the
convention of the code released with the paper and of transformers' ``bertology`` example
(``compute_heads_importance``): the absolute gradient of each *batch's* loss, summed over batches,
divided by the number of examples; with batches of one it equals eq. 4 (a test checks it).

Layer-wise normalisation (section 4.2, "we normalize the importance scores by layer, using the l2
norm"): I_h / ||I_layer(h)||_2, which made pruning more robust in the paper (and is the default of the
bertology example, exponent 2). ``normalize_layers=True`` applies it. It is off by default here: on a 4-layer,
4-head ViT on MNIST (``bench/vit_heads.py``, 3 seeds) ranking the normalised scores removed whole early layers
first and lost to random order beyond 5 heads (69 % against 73 % test accuracy at 6 of 16 removed), while the
raw scores kept 92.5 % (random: 73 %). With 4 heads a layer, dividing by the layer's norm makes every layer
look alike, so layers whose heads all matter little in absolute terms are emptied early.

Iterative pruning (section 4.1): repeatedly compute the importance of the heads still present, remove
the ``fraction`` of the model's heads that are least important, recompute; the paper removes 10 % of
the heads per step. Here a layer always keeps one head (``prune_heads`` cannot empty a layer; a layer
of no heads would still pass its input through the residual, but the model then has no such layer).
``order="random"`` is the paper's control: the same steps with heads drawn at random.

Removal. ``removed`` is an (L, H) bool matrix; ``gate_rows`` turns it into gates for
``forward_detailed``, ``zero_removed_heads`` zeroes each removed head's columns of the output
projection (the same function as a zero gate, kept through fine-tuning like a pruning mask), and
``shrink`` removes the heads physically (``TinyViT.prune_heads``).
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HEAD_ORDERS = ("importance", "random")


def uniform_heads(model: nn.Module) -> tuple[int, int]:
    """(layers, heads per layer) of a model with ``heads_per_layer`` and the same heads in every layer."""
    heads = getattr(model, "heads_per_layer", None)
    if heads is None:
        raise ValueError(f"{type(model).__name__} has no attention heads (heads_per_layer); head pruning needs a ViT")
    if len(set(heads)) != 1:
        raise ValueError(f"head importance needs the same number of heads in every layer, got {heads} "
                         "(compute it before removing heads physically)")
    return len(heads), int(heads[0])


def check_removed(removed: torch.Tensor | np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
    """``removed`` as an (L, H) bool tensor; a ``ValueError`` for another shape or an emptied layer."""
    mask = torch.as_tensor(np.asarray(removed)).to(torch.bool)
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"the removed-heads matrix must have shape {shape} (layers x heads), got {tuple(mask.shape)}")
    empty = [i for i in range(shape[0]) if bool(mask[i].all())]
    if empty:
        raise ValueError(f"layers {empty} would lose every head; a layer keeps at least one")
    return mask


def gate_rows(removed: torch.Tensor) -> torch.Tensor:
    """Gates xi (L, H) float: 0 for a removed head, 1 otherwise (rows are ``head_mask[l]``)."""
    return (~removed.to(torch.bool)).to(torch.float32)


def _loss_of_gates(model: nn.Module, gates: torch.Tensor, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model.forward_detailed(images, gates).logits, labels, reduction="sum")


def _per_example_abs_grads(model: nn.Module, gates: torch.Tensor, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """sum over the batch of |dL(x)/dxi| (L, H), one gradient per example (torch.func)."""
    from torch.func import grad, vmap

    def one(g: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return _loss_of_gates(model, g, x.unsqueeze(0), y.unsqueeze(0))

    grads = vmap(grad(one), in_dims=(None, 0, 0))(gates, images, labels)
    return grads.abs().sum(dim=0)


def _batch_abs_grad(model: nn.Module, gates: torch.Tensor, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """|d(sum of the batch's losses)/dxi| (L, H): the bertology convention, one gradient per batch."""
    g = gates.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(_loss_of_gates(model, g, images, labels), g)
    return grad.abs()


def normalize_by_layer(importance: torch.Tensor) -> torch.Tensor:
    """Michel et al. 2019, section 4.2: each layer's importances divided by their l2 norm."""
    norms = importance.pow(2).sum(dim=-1, keepdim=True).sqrt()
    return importance / (norms + 1e-20)


def head_importance(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, removed: torch.Tensor | None = None,
                    batch_size: int = 128, per_example: bool = True, normalize_layers: bool = False) -> torch.Tensor:
    """I_h = E_x |dL(x)/dxi_h| (Michel et al. 2019, eq. 4) as an (L, H) float32 tensor, with the heads in
    ``removed`` gated off (their own importance is still the gradient at xi_h = 0's neighbours: the
    loss change if the head came back). ``images`` (N, C, H, W) and ``labels`` (N,) are the data set;
    the model is evaluated in eval mode and left in its mode. See the module docstring for
    ``per_example`` and ``normalize_layers``."""
    shape = uniform_heads(model)
    if images.shape[0] != labels.shape[0] or images.shape[0] < 1:
        raise ValueError(f"need as many labels as images (and at least one), got {images.shape[0]} and {labels.shape[0]}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    gates = gate_rows(check_removed(torch.zeros(shape, dtype=torch.bool) if removed is None else removed, shape))
    param = next(model.parameters())
    gates = gates.to(device=param.device, dtype=param.dtype)
    total = torch.zeros(shape, dtype=param.dtype, device=param.device)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, images.shape[0], int(batch_size)):
            x = images[start:start + int(batch_size)].to(device=param.device, dtype=param.dtype)
            y = labels[start:start + int(batch_size)].to(param.device)
            total += (_per_example_abs_grads if per_example else _batch_abs_grad)(model, gates, x, y).detach()
    finally:
        model.train(was_training)
    importance = total / images.shape[0]
    return (normalize_by_layer(importance) if normalize_layers else importance).float().cpu()


def heads_to_remove(importance: torch.Tensor, removed: torch.Tensor, count: int,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """The next (L, H) removed matrix: ``removed`` plus the ``count`` least important heads still present
    (ties: the earlier layer, then the earlier head), never the last head of a layer. With a
    ``generator``, heads are drawn at random instead (the importance is ignored)."""
    removed = removed.clone().to(torch.bool)
    scores = importance.detach().to(torch.float64).clone()
    if generator is not None:
        scores = torch.rand(scores.shape, generator=generator, dtype=torch.float64)
    for _ in range(int(count)):
        alive_per_layer = (~removed).sum(dim=1)
        candidates = (~removed) & (alive_per_layer > 1).unsqueeze(1)
        if not bool(candidates.any()):
            break
        flat = torch.where(candidates, scores, torch.full_like(scores, float("inf"))).flatten()
        index = int(torch.argmin(flat))  # first minimum: row-major order breaks ties
        removed[index // removed.shape[1], index % removed.shape[1]] = True
    return removed


def removable_heads(shape: tuple[int, int]) -> int:
    """How many heads can go while every layer keeps one: L * (H - 1)."""
    return shape[0] * (shape[1] - 1)


@dataclass(frozen=True)
class HeadPruningStep:
    """One step of iterative pruning: the heads removed after it, the importance it was chosen by
    (computed with the previous step's heads gated off) and the accuracy with these heads removed."""

    removed: np.ndarray  # (L, H) bool
    importance: np.ndarray  # (L, H) float32
    accuracy: float

    @property
    def heads_removed(self) -> int:
        return int(self.removed.sum())


def gated_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, removed: torch.Tensor,
                   batch_size: int = 512) -> float:
    """Top-1 accuracy with the heads in ``removed`` gated off (the same as removing them)."""
    gates = gate_rows(removed).to(next(model.parameters()).device)
    was_training, correct = model.training, 0
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, images.shape[0], batch_size):
                logits = model.forward_detailed(images[start:start + batch_size], gates).logits
                correct += int((logits.argmax(1) == labels[start:start + batch_size]).sum())
    finally:
        model.train(was_training)
    return correct / max(1, images.shape[0])


def iterative_head_pruning(model: nn.Module, probe: tuple[torch.Tensor, torch.Tensor],
                           evaluation: tuple[torch.Tensor, torch.Tensor], fraction: float = 0.1,
                           max_removed: int | None = None, order: str = "importance", seed: int = 0,
                           per_example: bool = True, normalize_layers: bool = False,
                           accuracy: Callable[[torch.Tensor], float] | None = None) -> list[HeadPruningStep]:
    """Michel et al. 2019, section 4.1: from no head removed, repeatedly remove ``fraction`` of all heads
    (at least one), the least important by eq. 4 (layer-normalised if ``normalize_layers``) on the ``probe`` (images, labels) with the heads removed
    so far gated off (``order="random"``: drawn at random, the control), until ``max_removed`` (default:
    every layer down to one head). Step 0 is the unpruned model. Accuracy is measured on ``evaluation``
    (or by ``accuracy(removed)``). The model's weights are not changed."""
    if order not in HEAD_ORDERS:
        raise ValueError(f"order must be one of {HEAD_ORDERS}, got {order!r}")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction (of all heads removed per step) must be in (0, 1], got {fraction!r}")
    shape = uniform_heads(model)
    limit = removable_heads(shape) if max_removed is None else int(max_removed)
    if not 0 <= limit <= removable_heads(shape):
        raise ValueError(f"max_removed must be 0..{removable_heads(shape)} (each of {shape[0]} layers keeps a head), got {max_removed}")
    measure = accuracy or (lambda removed: gated_accuracy(model, *evaluation, removed))
    generator = torch.Generator().manual_seed(int(seed)) if order == "random" else None
    per_step = max(1, int(round(fraction * shape[0] * shape[1])))
    removed = torch.zeros(shape, dtype=torch.bool)
    steps: list[HeadPruningStep] = []
    while True:
        importance = head_importance(model, *probe, removed=removed, per_example=per_example, normalize_layers=normalize_layers)
        steps.append(HeadPruningStep(removed.numpy().copy(), importance.numpy(), measure(removed)))
        if int(removed.sum()) >= limit:
            return steps
        removed = heads_to_remove(importance, removed, min(per_step, limit - int(removed.sum())), generator)


def removal_dict(removed: torch.Tensor | np.ndarray) -> dict[int, list[int]]:
    """``{layer: [head, ...]}`` for ``TinyViT.prune_heads`` from an (L, H) removed matrix."""
    mask = np.asarray(removed, dtype=bool)
    return {int(layer): [int(h) for h in np.flatnonzero(row)] for layer, row in enumerate(mask) if row.any()}


def zero_removed_heads(model: nn.Module, removed: torch.Tensor) -> nn.Module:
    """Zero each removed head's columns of its layer's output projection in place: the model then
    computes what gates of 0 compute (eq. 2), and fine-tuning keeps them off if this runs after each step."""
    shape = uniform_heads(model)
    removed = check_removed(removed, shape)
    with torch.no_grad():
        for layer, heads in removal_dict(removed).items():
            attn = model.blocks[layer].attn
            for h in heads:
                attn.proj.weight[:, h * attn.head_dim:(h + 1) * attn.head_dim] = 0.0
    return model


def shrink(model: nn.Module, removed: torch.Tensor | np.ndarray) -> nn.Module:
    """A copy of ``model`` with the removed heads taken out physically (``prune_heads``): a smaller model
    computing what the gated model computes."""
    shape = uniform_heads(model)
    mask = check_removed(torch.as_tensor(np.asarray(removed)), shape)
    smaller = copy.deepcopy(model)
    smaller.prune_heads(removal_dict(mask))
    return smaller
