"""Structured pruning: remove whole filters (conv) and neurons (FC) and rebuild a smaller dense model.

Ranking by the L1 norm of each filter's kernel weights follows Li, Kadav, Durdanovic, Samet, Graf,
"Pruning Filters for Efficient ConvNets" (ICLR 2017), section 3.1: s_j = sum |F_j|; the filters
(or neurons: rows of a Linear weight) with the smallest norms are removed. ``norm="l2"`` ranks by
the Euclidean norm instead. Removing output unit j of a layer also removes input j of the next
layer (the matching input channel of a conv, or the matching columns of a Linear that follows a
flatten: C*H*W columns, H*W per channel), so the result is an ordinary dense model of the same
class with smaller widths (``MLP(hidden=...)``, ``LeNet5(channels=..., hidden=...)``,
``SmallCNN(channels=..., hidden=...)``): fewer parameters, fewer FLOPs, and it still runs.

Kept units keep their order. Because a removed unit is exactly a unit whose weights and bias are
zero (ReLU(0) = 0 then contributes nothing downstream), the smaller model computes the same
function as the original with those units zeroed; the tests check that.

Each model class describes its unit groups in ``LAYOUTS`` (keyed by class name), so supporting a
new architecture means registering one small function, not editing this module.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..models.conv import LeNet5, SmallCNN, _pooled_size
from ..models.mlp import MLP
from ..registry import Registry
from .magnitude import check_sparsity


@dataclass(frozen=True)
class UnitGroup:
    """The output units of ``layer`` (rows / filters) feed inputs of ``consumer``; each unit is
    ``per_unit`` consecutive consumer inputs (H*W after a flatten, else 1)."""

    layer: str
    consumer: str
    per_unit: int = 1


@dataclass(frozen=True)
class Layout:
    groups: tuple[UnitGroup, ...]
    rebuild: Callable[[dict[str, int]], nn.Module]  # widths per group layer -> fresh model


LAYOUTS: Registry = Registry("structured-pruning layout")


@LAYOUTS.register("MLP")
def _mlp_layout(model: MLP) -> Layout:
    n = len(model.hidden)
    groups = tuple(UnitGroup(f"fc{i + 1}", f"fc{i + 2}") for i in range(n))

    def rebuild(widths: dict[str, int]) -> nn.Module:
        hidden = tuple(widths[g.layer] for g in groups)
        return MLP(model.input_shape, model.num_classes, hidden=hidden, dropout=model.dropout.p,
                   input_dropout=model.input_dropout.p)

    return Layout(groups, rebuild)


def _conv_layout(model: nn.Module, pools_before_fc: int, cls: type) -> Layout:
    _, h, w = model.input_shape
    spatial = _pooled_size(h, pools_before_fc) * _pooled_size(w, pools_before_fc)
    groups = (UnitGroup("conv1", "conv2"), UnitGroup("conv2", "fc1", spatial), UnitGroup("fc1", "fc2"))

    def rebuild(widths: dict[str, int]) -> nn.Module:
        return cls(model.input_shape, model.num_classes, channels=(widths["conv1"], widths["conv2"]),
                   hidden=widths["fc1"], dropout=model.dropout.p)

    return Layout(groups, rebuild)


LAYOUTS.register("LeNet5")(lambda model: _conv_layout(model, 2, LeNet5))
LAYOUTS.register("SmallCNN")(lambda model: _conv_layout(model, 2, SmallCNN))


def _l1(weight: torch.Tensor) -> torch.Tensor:
    return weight.flatten(1).abs().sum(dim=1)


def _l2(weight: torch.Tensor) -> torch.Tensor:
    return weight.flatten(1).norm(p=2, dim=1)


NORMS: Registry = Registry("unit norm")
NORMS.register("l1")(_l1)
NORMS.register("l2")(_l2)


def layout_of(model: nn.Module) -> Layout:
    """The unit groups of a kdviz model; a ``ValueError`` lists the supported classes otherwise."""
    return LAYOUTS.get(type(model).__name__)(model)


def unit_norms(model: nn.Module, norm: str = "l1") -> dict[str, np.ndarray]:
    """Per structurally prunable layer, the norm of each output unit (filter or neuron), shape (units,)."""
    ranker = NORMS.get(norm)
    modules = dict(model.named_modules())
    return {g.layer: ranker(modules[g.layer].weight.detach()).cpu().numpy() for g in layout_of(model).groups}


def units_to_keep(norms: np.ndarray | torch.Tensor, amount: float) -> torch.Tensor:
    """Sorted indices of the units kept when removing ``floor(amount * n + 0.5)`` of smallest norm
    (at least one unit always stays). Ties: the unit with the lower index is kept."""
    amount = check_sparsity(amount, "amount")
    norms = torch.as_tensor(np.asarray(norms), dtype=torch.float64)
    n = norms.numel()
    n_keep = max(1, n - int(math.floor(amount * n + 0.5)))
    order = torch.argsort(-norms, stable=True)
    return torch.sort(order[:n_keep]).values


@dataclass
class StructuredPruning:
    """The smaller model, the kept unit indices per layer (into the original), and the norms ranked."""

    model: nn.Module
    kept: dict[str, torch.Tensor]
    norms: dict[str, np.ndarray]


def prune_structured(model: nn.Module, amount: float | Mapping[str, float], norm: str = "l1") -> StructuredPruning:
    """Remove the fraction ``amount`` of lowest-norm filters/neurons of each prunable layer
    (one float for all, or a dict by layer name; layers not in the dict are left whole) and return
    a new, smaller model of the same class with the surviving weights copied in. The original
    model is not changed. The output layer is never pruned (its units are the classes).
    """
    layout = layout_of(model)
    names = [g.layer for g in layout.groups]
    if isinstance(amount, Mapping):
        unknown = [k for k in amount if k not in names]
        if unknown:
            raise ValueError(f"cannot prune units of {unknown}; structurally prunable layers: {names}")
        amounts = {n: check_sparsity(amount.get(n, 0.0), f"amount for {n!r}") for n in names}
    else:
        amounts = {n: check_sparsity(amount, "amount") for n in names}
    norms = unit_norms(model, norm)
    kept = {n: units_to_keep(norms[n], amounts[n]) for n in names}

    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for g in layout.groups:
        idx = kept[g.layer]
        state[f"{g.layer}.weight"] = state[f"{g.layer}.weight"].index_select(0, idx)
        if f"{g.layer}.bias" in state:
            state[f"{g.layer}.bias"] = state[f"{g.layer}.bias"].index_select(0, idx)
        columns = (idx[:, None] * g.per_unit + torch.arange(g.per_unit)[None, :]).flatten()
        state[f"{g.consumer}.weight"] = state[f"{g.consumer}.weight"].index_select(1, columns)

    smaller = layout.rebuild({n: int(kept[n].numel()) for n in names})
    smaller.load_state_dict(state)
    smaller.train(model.training)
    return StructuredPruning(smaller, kept, norms)


def zero_removed_units(model: nn.Module, kept: Mapping[str, torch.Tensor]) -> nn.Module:
    """In place: zero the weights and biases of every unit *not* in ``kept`` (the masked twin of
    ``prune_structured``; the smaller model computes exactly what this one does)."""
    modules = dict(model.named_modules())
    with torch.no_grad():
        for layer, idx in kept.items():
            module = modules[layer]
            drop = torch.ones(module.weight.shape[0], dtype=torch.bool)
            drop[idx] = False
            module.weight[drop] = 0.0
            if module.bias is not None:
                module.bias[drop] = 0.0
    return model
