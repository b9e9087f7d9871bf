"""What a sparsity slider shows, in the same arrays as a ``prune`` training snapshot.

The interactive explorers (the Streamlit page and ``kdviz.widgets.PruningExplorer``) prune the
dense weights of a ``MaskedEvaluator`` to the slider's sparsity (Han et al. 2015, section 3:
magnitude pruning, no retraining). ``slider_arrays`` turns those masks into exactly the arrays the
pruning hook returns from its ``snapshot`` (``layers``, ``sparsity``, ``mask/<layer>``,
``hist/<layer>`` ...; see ``kdviz.methods.prune``, whose typed reader ``read_prune_arrays`` reads
both), so one set of figure functions (``kdviz.figures.pruning``) draws both the slider and a live
fine-tuning run, and a chart of the slider at 90% looks like a snapshot of a run that reached 90%.

Speed (issue 14: a slider move redraws in under 300 ms on MNIST): the arrays of masks the evaluator
cached (``MaskedEvaluator.masks_at``) are kept with them (``MaskedEvaluator.memo``), so a revisited
position costs nothing, and each layer's histogram bin of every dense weight is found once
(``_weight_bins``), so the histogram of the survivors is one ``np.bincount`` of the kept weights'
bins: the same counts as ``np.histogram`` of the survivors (tested), without re-binning per move.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np

from .evaluate import MaskedEvaluator
from .flops import LayerCost, layer_costs
from .magnitude import check_sparsity, kept_magnitude_threshold
from .masks import PruningMasks, downsample_mask, layer_name
from .size import size_report

CURVE_SPARSITIES = (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99)


def slider_arrays(evaluator: MaskedEvaluator, masks: PruningMasks, max_side: int = 128, bins: int = 60) -> dict[str, np.ndarray]:
    """Snapshot-style arrays of ``masks`` over the evaluator's *dense* weights (unprefixed, as the
    hook returns them; the engine files a run's under the hook's label).

    Per pruned layer, in the evaluator's order: ``sparsity`` (fraction of weights pruned),
    ``threshold`` (smallest surviving |w|, 0 when nothing is pruned), ``target`` (= ``sparsity``),
    ``weights`` (count); ``mask/<layer>`` (uint8 percent kept per cell, block-averaged to at most
    ``max_side`` cells per axis, block size in ``mask_block/<layer>``) and ``hist/<layer>`` +
    ``edges/<layer>`` (``bins`` bins of the surviving weights over [-max|w|, max|w|]), as the hook does.
    """
    names = [n for n in evaluator.dense if n in masks]
    if not names:
        raise ValueError(f"the masks cover none of the evaluated weights (masks: {masks.names()}, "
                         f"weights: {list(evaluator.dense)})")
    return evaluator.memo(masks, f"slider_arrays/{max_side}/{bins}",
                          lambda: _slider_arrays(evaluator, masks, names, max_side, bins))


def _weight_bins(evaluator: MaskedEvaluator, name: str, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """(bin index of every dense weight of ``name``, flattened; the bin edges) for ``bins`` bins over
    [-max|w|, max|w|], the bins of ``np.histogram(w, bins, range=(-r, r))``; computed once per layer."""
    cache, key = evaluator.dense_derived, ("weight_bins", name, bins)
    if key not in cache:
        w = evaluator.dense[name].detach().double().cpu().numpy().ravel()
        r = float(np.abs(w).max()) or 1.0
        edges = np.histogram_bin_edges(w, bins=bins, range=(-r, r))
        index = np.searchsorted(edges, w, side="right") - 1  # edges[i] <= w < edges[i + 1] ...
        index[index == bins] = bins - 1  # ... and the last bin holds its right edge, as np.histogram
        cache[key] = (index.astype(np.int64), edges)
    return cache[key]


def _slider_arrays(evaluator: MaskedEvaluator, masks: PruningMasks, names: list[str], max_side: int,
                   bins: int) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    sparsity, thresholds, counts = [], [], []
    for n in names:
        dense, mask = evaluator.dense[n], masks[n].to(evaluator.dense[n].device)
        if mask.shape != dense.shape:
            raise ValueError(f"mask of {n!r} has shape {tuple(mask.shape)}, the weight {tuple(dense.shape)}")
        layer = layer_name(n)
        sparsity.append(1.0 - float(mask.sum()) / mask.numel())
        thresholds.append(kept_magnitude_threshold(dense, mask))
        counts.append(dense.numel())
        kept = mask.cpu().numpy()
        grid, block = downsample_mask(kept, max_side)
        arrays[f"mask/{layer}"] = grid
        arrays[f"mask_block/{layer}"] = np.asarray(block, dtype=np.int64)
        index, edges = _weight_bins(evaluator, n, bins)
        arrays[f"hist/{layer}"] = np.bincount(index[kept.ravel()], minlength=bins).astype(np.int64)
        arrays[f"edges/{layer}"] = edges
    arrays["layers"] = np.asarray([layer_name(n) for n in names])
    arrays["sparsity"] = np.asarray(sparsity, dtype=np.float64)
    arrays["threshold"] = np.asarray(thresholds, dtype=np.float64)
    arrays["target"] = np.asarray(sparsity, dtype=np.float64)
    arrays["weights"] = np.asarray(counts, dtype=np.int64)
    return arrays


def slider_reports(evaluator: MaskedEvaluator, masks: PruningMasks) -> tuple[list[dict], list[LayerCost]]:
    """(``size_report(model).rows()``, ``layer_costs(model)``) of the evaluator's model pruned by
    ``masks`` (dense CSR and relative-index bytes per layer; FLOPs dense and kept, Han et al. 2015
    table 1). Kept with cached slider masks, so a revisited position reuses them; the rows are
    copies the caller may change. The model is left holding ``masks`` applied to the dense weights."""
    def compute() -> tuple[list[dict], list[LayerCost]]:
        evaluator.restore()
        masks.apply(evaluator.model)
        return size_report(evaluator.model).rows(), layer_costs(evaluator.model)

    rows, costs = evaluator.memo(masks, "slider_reports", compute)
    evaluator.restore()
    masks.apply(evaluator.model)
    return copy.deepcopy(rows), list(costs)


def accuracy_curve(evaluator: MaskedEvaluator, sparsities: Sequence[float] = CURVE_SPARSITIES,
                   scope: str = "layer") -> tuple[list[float], list[float]]:
    """(sparsities, test accuracies) of one-shot magnitude pruning without retraining; the
    evaluator's dense weights are restored afterwards."""
    points = [check_sparsity(s) for s in sparsities]
    try:
        return points, [evaluator.accuracy_at(s, scope) for s in points]
    finally:
        evaluator.restore()


__all__ = ["CURVE_SPARSITIES", "accuracy_curve", "slider_arrays", "slider_reports"]
