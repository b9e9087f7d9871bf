"""Fast test accuracy of one model under many masks: what a sparsity slider needs.

The slow parts of "prune to s and evaluate" are done once and cached: the dense weights (so every
evaluation starts from the unpruned model, never from an already pruned one), the pruning order of
each layer and of all layers together (one stable sort of |w|, see ``magnitude.pruning_order``), and
the test images as one contiguous tensor. A slider move then only builds masks by indexing the
cached order, copies the dense weights back, zeroes the pruned ones and runs the test set in large
batches under ``torch.inference_mode``. ``bench/prune_slider.py`` times it.

A slider is dragged back and forth, so the last ``positions`` slider positions are kept (issue 14:
a revisited position must redraw at once): ``masks_at`` returns the same ``PruningMasks`` object for
the same (scope, sparsity), ``accuracy`` of such masks is computed once (the masked weights are still
written into the model, as the contract says), and ``memo(masks, what, compute)`` keeps whatever
else a caller derives from them (``explore.slider_arrays``). The numbers are those of the first
evaluation, i.e. of a full evaluation of the masked model (tests compare them with an independent
loop). ``positions=0`` (or ``KDVIZ_SLIDER_CACHE=0`` in the environment) turns the cache off.

"""
from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from .magnitude import check_sparsity, mask_from_order, num_to_prune, pruning_order, ranking_scores
from .masks import PruningMasks, prunable_weights


class MaskedEvaluator:
    """Accuracy of ``model`` on (images, labels) with any masks, starting from its dense weights.

    The model's current weights are taken as the dense reference. ``accuracy`` leaves the model
    holding the last evaluated (masked) weights; ``restore()`` puts the dense weights back.
    """

    def __init__(
        self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 10_000,
        names: Iterable[str] | None = None, positions: int | None = None,
    ) -> None:
        if positions is None:
            positions = 0 if os.environ.get("KDVIZ_SLIDER_CACHE", "").strip() == "0" else DEFAULT_POSITIONS
        if len(images) != len(labels) or len(labels) == 0:
            raise ValueError(f"need as many labels as images (and at least one): {len(images)} vs {len(labels)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if positions < 0:
            raise ValueError(f"positions must be 0 (no cache) or more, got {positions}")
        self.model = model
        self.params = prunable_weights(model, names)
        device = next(model.parameters()).device
        self.images = images.to(device).contiguous()
        self.labels = labels.to(device)
        self.batch_size = int(batch_size)
        self.dense = {n: p.detach().clone() for n, p in self.params.items()}
        self._layer_order = {n: pruning_order(ranking_scores(w)) for n, w in self.dense.items()}
        self._global_order: torch.Tensor | None = None
        self.positions = int(positions)
        self._cache: OrderedDict[tuple, _Position] = OrderedDict()  # (scope, sparsity) -> its masks and results
        self._key_of: dict[int, tuple] = {}  # id of a cached PruningMasks -> its key (the object is held alive)
        self.dense_derived: dict[Any, Any] = {}  # what callers derive once from the dense weights (explore.py)

    # -- masks from the cached ranking -------------------------------------------------------
    def masks_at(self, sparsity: float | Mapping[str, float], scope: str = "layer") -> PruningMasks:
        """The same masks as ``magnitude_masks(model, sparsity, scope)`` on the dense weights, built
        from the cached pruning order (no sorting per call)."""
        builders = {"layer": self._layer_masks, "global": self._global_masks}
        if scope not in builders:
            raise ValueError(f"scope must be one of {sorted(builders)}, got {scope!r}")
        key = _position_key(sparsity, scope)
        if key is not None and key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key].masks
        masks = builders[scope](sparsity)
        if self.positions and key is not None:
            self._cache[key], self._key_of[id(masks)] = _Position(masks), key
            while len(self._cache) > self.positions:
                _, old = self._cache.popitem(last=False)
                self._key_of.pop(id(old.masks), None)
        return masks

    def _position(self, masks: PruningMasks | None) -> "_Position | None":
        """The cache entry of ``masks`` when they are the very object ``masks_at`` cached."""
        key = self._key_of.get(id(masks)) if masks is not None else None
        entry = self._cache.get(key) if key is not None else None
        return entry if entry is not None and entry.masks is masks else None

    def memo(self, masks: PruningMasks, what: str, compute: Callable[[], Any]) -> Any:
        """``compute()``, kept with ``masks`` under ``what`` when they are cached slider masks (a
        revisited position gets the same object back); computed afresh for any other masks."""
        entry = self._position(masks)
        if entry is None:
            return compute()
        if what not in entry.derived:
            entry.derived[what] = compute()
        return entry.derived[what]

    def _layer_masks(self, sparsity: float | Mapping[str, float]) -> PruningMasks:
        targets = sparsity if isinstance(sparsity, Mapping) else {n: sparsity for n in self.dense}
        unknown = [n for n in targets if n not in self.dense]
        if unknown:
            raise ValueError(f"not evaluated weights: {unknown} (known: {list(self.dense)})")
        return PruningMasks({
            n: mask_from_order(self._layer_order[n], num_to_prune(self.dense[n].numel(), check_sparsity(s)),
                               self.dense[n].shape)
            for n, s in targets.items()
        })

    def _global_masks(self, sparsity: float) -> PruningMasks:
        if isinstance(sparsity, Mapping):
            raise TypeError("global pruning takes one overall sparsity, not a dict per layer")
        sparsity = check_sparsity(sparsity)
        if self._global_order is None:
            self._global_order = pruning_order(torch.cat([ranking_scores(w) for w in self.dense.values()]))
        total = self._global_order.numel()
        keep = mask_from_order(self._global_order, num_to_prune(total, sparsity), torch.Size([total]))
        masks, start = {}, 0
        for n, w in self.dense.items():
            masks[n] = keep[start : start + w.numel()].reshape(w.shape)
            start += w.numel()
        return PruningMasks(masks)

    # -- evaluation --------------------------------------------------------------------------
    def restore(self) -> None:
        """Put the dense weights back into the model."""
        with torch.no_grad():
            for n, p in self.params.items():
                p.copy_(self.dense[n])

    def accuracy(self, masks: PruningMasks | None = None) -> float:
        """Top-1 accuracy with ``masks`` applied to the dense weights (layers without a mask stay dense)."""
        self.restore()
        if masks is not None:
            masks.apply(self.model)
        entry = self._position(masks)
        if entry is None:
            return self.current_accuracy()
        if entry.accuracy is None:
            entry.accuracy = self.current_accuracy()
        return entry.accuracy

    def current_accuracy(self) -> float:
        """Top-1 accuracy of the model's weights as they are now."""
        return accuracy(self.model, self.images, self.labels, self.batch_size)

    def accuracy_at(self, sparsity: float | Mapping[str, float], scope: str = "layer") -> float:
        """One slider move: magnitude-prune the dense weights to ``sparsity`` and evaluate."""
        return self.accuracy(self.masks_at(sparsity, scope))


DEFAULT_POSITIONS = 128  # slider positions kept (a LeNet-300-100 position: 266 KB of masks)


class _Position:
    """One cached slider position: its masks, their accuracy once evaluated, and derived results."""

    __slots__ = ("masks", "accuracy", "derived")

    def __init__(self, masks: PruningMasks) -> None:
        self.masks, self.accuracy, self.derived = masks, None, {}


def _position_key(sparsity: float | Mapping[str, float], scope: str) -> tuple | None:
    """The cache key of a slider position; None for values that cannot be one (the mask builder then
    names the problem)."""
    try:
        if isinstance(sparsity, Mapping):
            return scope, tuple(sorted((str(n), float(s)) for n, s in sparsity.items()))
        return scope, float(sparsity)
    except (TypeError, ValueError):
        return None


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 10_000) -> float:
    """Plain top-1 accuracy of ``model`` as it is, in large batches under ``inference_mode``."""
    was_training = model.training
    model.eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(labels), batch_size):
            correct += int((model(images[start : start + batch_size]).argmax(1) == labels[start : start + batch_size]).sum())
    model.train(was_training)
    return correct / max(len(labels), 1)
