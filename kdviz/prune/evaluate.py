"""Fast test accuracy of one model under many masks: what a sparsity slider needs.

The slow parts of "prune to s and evaluate" are done once and cached: the dense weights (so every
evaluation starts from the unpruned model, never from an already pruned one), the pruning order of
each layer and of all layers together (one stable sort of |w|, see ``magnitude.pruning_order``), and
the test images as one contiguous tensor. A slider move then only builds masks by indexing the
cached order, copies the dense weights back, zeroes the pruned ones and runs the test set in large
batches under ``torch.inference_mode``. ``bench/prune_slider.py`` times it.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

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
        names: Iterable[str] | None = None,
    ) -> None:
        if len(images) != len(labels) or len(labels) == 0:
            raise ValueError(f"need as many labels as images (and at least one): {len(images)} vs {len(labels)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.model = model
        self.params = prunable_weights(model, names)
        device = next(model.parameters()).device
        self.images = images.to(device).contiguous()
        self.labels = labels.to(device)
        self.batch_size = int(batch_size)
        self.dense = {n: p.detach().clone() for n, p in self.params.items()}
        self._layer_order = {n: pruning_order(ranking_scores(w)) for n, w in self.dense.items()}
        self._global_order: torch.Tensor | None = None

    # -- masks from the cached ranking -------------------------------------------------------
    def masks_at(self, sparsity: float | Mapping[str, float], scope: str = "layer") -> PruningMasks:
        """The same masks as ``magnitude_masks(model, sparsity, scope)`` on the dense weights, built
        from the cached pruning order (no sorting per call)."""
        builders = {"layer": self._layer_masks, "global": self._global_masks}
        if scope not in builders:
            raise ValueError(f"scope must be one of {sorted(builders)}, got {scope!r}")
        return builders[scope](sparsity)

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
        return self.current_accuracy()

    def current_accuracy(self) -> float:
        """Top-1 accuracy of the model's weights as they are now."""
        return accuracy(self.model, self.images, self.labels, self.batch_size)

    def accuracy_at(self, sparsity: float | Mapping[str, float], scope: str = "layer") -> float:
        """One slider move: magnitude-prune the dense weights to ``sparsity`` and evaluate."""
        return self.accuracy(self.masks_at(sparsity, scope))


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
