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

**Emptied layers.** At s >= 1 - 0.5/n the count rule prunes all n weights of a layer (and a global
cut or a high Han quality can empty a layer too): the layer then outputs only its bias and the
network is silently broken. Every mask builder here refuses that with a ``ValueError`` naming the
layers unless the caller passes ``allow_empty=True``; ``layers_emptied`` says in advance which
layers a sparsity would empty, so a UI can warn before it prunes.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

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


def emptied_in(masks: Mapping[str, torch.Tensor]) -> list[str]:
    """The names of the masks that prune every weight of their (non-empty) layer."""
    return [n for n, m in masks.items() if m.numel() > 0 and not bool(m.any())]


def refuse_emptied(masks: Mapping[str, torch.Tensor], allow_empty: bool, rule: str) -> None:
    """A ``ValueError`` naming each layer ``masks`` prune whole, unless ``allow_empty``."""
    emptied = emptied_in(masks)
    if emptied and not allow_empty:
        sizes = ", ".join(f"{n} ({masks[n].numel()} weights)" for n in emptied)
        raise ValueError(
            f"{rule} would prune every weight of {sizes}: the layer would output only its bias. "
            "Lower it (per layer, s >= 1 - 0.5/n prunes all n weights), or pass allow_empty=True to do it anyway"
        )


def layerwise_magnitude_masks(
    model: nn.Module, sparsity: SparsitySpec, previous: PruningMasks | None = None, names: Iterable[str] | None = None,
    allow_empty: bool = False,
) -> PruningMasks:
    """Prune each layer to its own exact sparsity (one float for all, or a dict per parameter name).

    A layer pruned whole is a ``ValueError`` unless ``allow_empty`` (see the module docstring)."""
    weights = prunable_weights(model, _names(sparsity, names))
    targets = _per_layer(sparsity, weights)
    masks = {}
    for name, w in weights.items():
        prev = previous[name] if previous is not None and name in previous else None
        k = num_to_prune(w.numel(), targets[name])
        if prev is not None:
            k = max(k, int((~prev).sum()))
        masks[name] = mask_from_order(pruning_order(ranking_scores(w, prev)), k, w.shape)
    refuse_emptied(masks, allow_empty, f"sparsity {sparsity}")
    return PruningMasks(masks)


def global_keep(
    weights: Mapping[str, torch.Tensor], sparsity: float, previous: PruningMasks | None = None
) -> dict[str, torch.Tensor]:
    """The global cut's bool masks (True = kept) of ``weights`` at one overall ``sparsity``."""
    sparsity = check_sparsity(sparsity)
    scores = [ranking_scores(w, previous[n] if previous is not None and n in previous else None) for n, w in weights.items()]
    flat = torch.cat(scores)
    k = num_to_prune(flat.numel(), sparsity)
    k = max(k, int((flat < 0).sum()))
    keep = mask_from_order(pruning_order(flat), k, flat.shape)
    masks, start = {}, 0
    for name, w in weights.items():
        masks[name] = keep[start : start + w.numel()].reshape(w.shape)
        start += w.numel()
    return masks


def global_magnitude_masks(
    model: nn.Module, sparsity: float, previous: PruningMasks | None = None, names: Iterable[str] | None = None,
    allow_empty: bool = False,
) -> PruningMasks:
    """Prune the smallest |w| over all layers together to one exact overall sparsity.

    Layers with many small weights (large FC layers) end up sparser than small ones; that is the
    point of a global threshold (Zhu & Gupta 2017 and See et al. 2016 compare both). A layer the
    cut prunes whole is a ``ValueError`` unless ``allow_empty``.
    """
    if isinstance(sparsity, Mapping):
        raise TypeError("global pruning takes one overall sparsity, not a dict per layer")
    masks = global_keep(prunable_weights(model, names), sparsity, previous)
    refuse_emptied(masks, allow_empty, f"global sparsity {sparsity}")
    return PruningMasks(masks)


SCOPES: Registry = Registry("pruning scope")
SCOPES.register("layer")(layerwise_magnitude_masks)
SCOPES.register("global")(global_magnitude_masks)


def magnitude_masks(
    model: nn.Module, sparsity: SparsitySpec, scope: str = "layer", previous: PruningMasks | None = None,
    names: Iterable[str] | None = None, allow_empty: bool = False,
) -> PruningMasks:
    """Exact-sparsity magnitude masks; ``scope`` is ``"layer"`` (each layer to its target) or ``"global"``.

    Refuses to prune a layer whole unless ``allow_empty`` (``layers_emptied`` tells in advance)."""
    return SCOPES.get(scope)(model, sparsity, previous=previous, names=names, allow_empty=allow_empty)


def layers_emptied(
    model_or_weights: nn.Module | Mapping[str, torch.Tensor | Sequence[int] | int], sparsity: SparsitySpec,
    scope: str = "layer",
) -> list[str]:
    """The layers (parameter names) that magnitude pruning to ``sparsity`` would prune whole.

    Pure: nothing is pruned. Takes a model, or a mapping of parameter name to weight tensor (e.g.
    ``MaskedEvaluator.dense``), shape or weight count. ``scope="layer"``: the layers with
    floor(s * n + 0.5) = n, i.e. s >= 1 - 0.5/n (shapes suffice). ``scope="global"``: the layers the
    global cut would empty, which depends on the weights, so it needs tensors. A UI calls this to
    warn before it prunes; ``magnitude_masks`` refuses those sparsities unless ``allow_empty``.
    """
    SCOPES.get(scope)
    if isinstance(model_or_weights, nn.Module):
        weights: Mapping[str, object] = prunable_weights(model_or_weights, _names(sparsity, None))
    elif isinstance(model_or_weights, Mapping):
        weights = model_or_weights
    else:
        raise TypeError(f"give a model or a mapping of parameter name -> weight, got {type(model_or_weights).__name__}")
    if scope == "global":
        if isinstance(sparsity, Mapping):
            raise TypeError("global pruning takes one overall sparsity, not a dict per layer")
        if not all(isinstance(w, torch.Tensor) for w in weights.values()):
            raise TypeError("the global cut depends on the weights' values: give a model or weight tensors")
        return emptied_in(global_keep(weights, sparsity))
    if isinstance(sparsity, Mapping):
        unknown = [n for n in sparsity if n not in weights]
        if unknown:
            raise ValueError(f"sparsity given for unknown layers {unknown} (known: {list(weights)})")
        targets = {n: check_sparsity(s, f"sparsity of {n!r}") for n, s in sparsity.items()}
    else:
        targets = {n: check_sparsity(sparsity) for n in weights}
    counts = {n: _weight_count(n, weights[n]) for n in targets}
    return [n for n in targets if counts[n] > 0 and num_to_prune(counts[n], targets[n]) >= counts[n]]


def _weight_count(name: str, weight: object) -> int:
    if isinstance(weight, torch.Tensor):
        return weight.numel()
    if isinstance(weight, int) and not isinstance(weight, bool) and weight >= 0:
        return weight
    if isinstance(weight, Sequence) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in weight):
        return math.prod(weight)
    raise TypeError(f"weight of {name!r} must be a tensor, a shape or a weight count, got {weight!r}")


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
    names: Iterable[str] | None = None, allow_empty: bool = False,
) -> tuple[PruningMasks, dict[str, float]]:
    """Masks keeping ``|w| > quality * std(W)`` per layer (Han et al. 2015), and the thresholds used.

    A quality so high that it prunes a layer whole is a ``ValueError`` unless ``allow_empty``."""
    thresholds = han_thresholds(model, quality, names)
    weights = prunable_weights(model, thresholds)
    masks = {}
    for name, w in weights.items():
        keep = w.detach().abs() > thresholds[name]
        if previous is not None and name in previous:
            keep &= previous[name].to(keep.device)
        masks[name] = keep
    refuse_emptied(masks, allow_empty, f"quality {quality}")
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
