"""Unstructured magnitude pruning: drop the weights of smallest absolute value.

Two ways to choose what to drop:

* **Exact target sparsity** (per layer or global): rank weights by |w| and prune exactly
  ``k = floor(s * n + 0.5)`` of them (``n`` weights in the layer, or in all layers together for
  ``scope="global"``). Ties in |w| are broken by position (a stable sort: the earlier flat index
  is pruned first), so the count is exact and the result is deterministic. With ``previous`` masks,
  weights already pruned rank below every surviving one, so they stay pruned (monotone schedules).
* **Han et al. 2015's threshold rule** ("Learning both Weights and Connections for Efficient Neural
  Networks", NeurIPS 2015, section 3): "the pruning threshold is chosen as a quality parameter
  multiplied by the standard deviation of a layer's weights". We prune ``|w| <= quality * std(W)``
  and keep ``|w| > threshold`` (as Distiller's ``SensitivityPruner``), where ``std`` is the
  population standard deviation (ddof = 0) of all entries of the layer's current weight tensor.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from ..registry import Registry
from .masks import PruningMasks, prunable_weights

SparsitySpec = float | Mapping[str, float]


def check_sparsity(sparsity: object, what: str = "sparsity") -> float:
    """``sparsity`` as a float in [0, 1); a ``TypeError``/``ValueError`` naming the problem otherwise."""
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)):
        raise TypeError(f"{what} must be a number in [0, 1), got {type(sparsity).__name__}")
    if not (0.0 <= float(sparsity) < 1.0):
        raise ValueError(f"{what} must be in [0, 1) (1 would remove every weight), got {sparsity}")
    return float(sparsity)


def num_to_prune(n: int, sparsity: float) -> int:
    """``floor(s * n + 0.5)``: the exact number of weights pruned at sparsity ``s``."""
    return int(math.floor(sparsity * n + 0.5))


def ranking_scores(weight: torch.Tensor, previous: torch.Tensor | None = None) -> torch.Tensor:
    """Flat pruning scores: |w| (float64), with already-pruned weights (``previous`` False) at -1."""
    scores = weight.detach().abs().flatten().to(torch.float64)
    if previous is not None:
        scores = scores.masked_fill(~previous.flatten().to(scores.device), -1.0)
    return scores


def pruning_order(scores: torch.Tensor) -> torch.Tensor:
    """Flat indices from first-to-prune to last: ascending score, ties by position (stable sort)."""
    return torch.argsort(scores, stable=True)


def mask_from_order(order: torch.Tensor, k: int, shape: torch.Size) -> torch.Tensor:
    """A bool mask of ``shape`` with the first ``k`` indices of ``order`` pruned."""
    keep = torch.ones(order.numel(), dtype=torch.bool, device=order.device)
    keep[order[:k]] = False
    return keep.reshape(shape)


def layerwise_magnitude_masks(
    model: nn.Module, sparsity: SparsitySpec, previous: PruningMasks | None = None, names: Iterable[str] | None = None
) -> PruningMasks:
    """Prune each layer to its own exact sparsity (one float for all, or a dict per parameter name)."""
    weights = prunable_weights(model, _names(sparsity, names))
    targets = _per_layer(sparsity, weights)
    masks = {}
    for name, w in weights.items():
        prev = previous[name] if previous is not None and name in previous else None
        k = num_to_prune(w.numel(), targets[name])
        if prev is not None:
            k = max(k, int((~prev).sum()))
        masks[name] = mask_from_order(pruning_order(ranking_scores(w, prev)), k, w.shape)
    return PruningMasks(masks)


def global_magnitude_masks(
    model: nn.Module, sparsity: float, previous: PruningMasks | None = None, names: Iterable[str] | None = None
) -> PruningMasks:
    """Prune the smallest |w| over all layers together to one exact overall sparsity.

    Layers with many small weights (large FC layers) end up sparser than small ones; that is the
    point of a global threshold (Zhu & Gupta 2017 and See et al. 2016 compare both).
    """
    if isinstance(sparsity, Mapping):
        raise TypeError("global pruning takes one overall sparsity, not a dict per layer")
    sparsity = check_sparsity(sparsity)
    weights = prunable_weights(model, names)
    scores = [ranking_scores(w, previous[n] if previous is not None and n in previous else None) for n, w in weights.items()]
    flat = torch.cat(scores)
    k = num_to_prune(flat.numel(), sparsity)
    k = max(k, int((flat < 0).sum()))
    keep = mask_from_order(pruning_order(flat), k, flat.shape)
    masks, start = {}, 0
    for name, w in weights.items():
        masks[name] = keep[start : start + w.numel()].reshape(w.shape)
        start += w.numel()
    return PruningMasks(masks)


SCOPES: Registry = Registry("pruning scope")
SCOPES.register("layer")(layerwise_magnitude_masks)
SCOPES.register("global")(global_magnitude_masks)


def magnitude_masks(
    model: nn.Module, sparsity: SparsitySpec, scope: str = "layer", previous: PruningMasks | None = None,
    names: Iterable[str] | None = None,
) -> PruningMasks:
    """Exact-sparsity magnitude masks; ``scope`` is ``"layer"`` (each layer to its target) or ``"global"``."""
    return SCOPES.get(scope)(model, sparsity, previous=previous, names=names)


def han_thresholds(model: nn.Module, quality: float | Mapping[str, float], names: Iterable[str] | None = None) -> dict[str, float]:
    """Han et al. 2015's per-layer threshold ``quality * std(W)`` (population std of all entries)."""
    weights = prunable_weights(model, _names(quality, names))
    out = {}
    for name, w in weights.items():
        q = quality[name] if isinstance(quality, Mapping) else quality
        if isinstance(q, bool) or not isinstance(q, (int, float)) or not math.isfinite(q) or q < 0:
            raise ValueError(f"quality for {name!r} must be a finite number >= 0, got {q!r}")
        out[name] = float(q) * float(w.detach().to(torch.float64).std(correction=0))
    return out


def threshold_masks(
    model: nn.Module, quality: float | Mapping[str, float], previous: PruningMasks | None = None,
    names: Iterable[str] | None = None,
) -> tuple[PruningMasks, dict[str, float]]:
    """Masks keeping ``|w| > quality * std(W)`` per layer (Han et al. 2015), and the thresholds used."""
    thresholds = han_thresholds(model, quality, names)
    weights = prunable_weights(model, thresholds)
    masks = {}
    for name, w in weights.items():
        keep = w.detach().abs() > thresholds[name]
        if previous is not None and name in previous:
            keep &= previous[name].to(keep.device)
        masks[name] = keep
    return PruningMasks(masks), thresholds


def kept_magnitude_threshold(weight: torch.Tensor, mask: torch.Tensor) -> float:
    """The smallest surviving |w| (the effective cut of a magnitude mask); 0.0 if nothing is pruned."""
    if bool(mask.all()) or not bool(mask.any()):
        return 0.0
    return float(weight.detach().abs()[mask].min())


def _names(spec: object, names: Iterable[str] | None) -> Iterable[str] | None:
    if isinstance(spec, Mapping):
        if names is not None and set(names) != set(spec):
            raise ValueError("give either a dict of per-layer values or names, not both with different layers")
        return list(spec)
    return names


def _per_layer(sparsity: SparsitySpec, weights: Mapping[str, torch.Tensor]) -> dict[str, float]:
    if isinstance(sparsity, Mapping):
        return {n: check_sparsity(sparsity[n], f"sparsity of {n!r}") for n in weights}
    s = check_sparsity(sparsity)
    return {n: s for n in weights}
