"""What a sparsity slider shows, in the same arrays as a ``prune`` training snapshot.

The interactive explorers (the Streamlit page and ``kdviz.widgets.PruningExplorer``) prune the
dense weights of a ``MaskedEvaluator`` to the slider's sparsity (Han et al. 2015, section 3:
magnitude pruning, no retraining). ``slider_arrays`` turns those masks into exactly the arrays the
pruning hook returns from its ``snapshot`` (``layers``, ``sparsity``, ``mask/<layer>``,
``hist/<layer>`` ...; see ``kdviz.methods.prune``, whose typed reader ``read_prune_arrays`` reads
both), so one set of figure functions (``kdviz.figures.pruning``) draws both the slider and a live
fine-tuning run, and a chart of the slider at 90% looks like a snapshot of a run that reached 90%.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .evaluate import MaskedEvaluator
from .masks import downsample_mask
from .magnitude import check_sparsity, kept_magnitude_threshold
from .masks import PruningMasks, layer_name

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
        grid, block = downsample_mask(mask.cpu().numpy(), max_side)
        arrays[f"mask/{layer}"] = grid
        arrays[f"mask_block/{layer}"] = np.asarray(block, dtype=np.int64)
        w = dense.detach().double().cpu().numpy()
        r = float(np.abs(w).max()) or 1.0
        hist, edges = np.histogram(w[mask.cpu().numpy()], bins=bins, range=(-r, r))
        arrays[f"hist/{layer}"], arrays[f"edges/{layer}"] = hist.astype(np.int64), edges
    arrays["layers"] = np.asarray([layer_name(n) for n in names])
    arrays["sparsity"] = np.asarray(sparsity, dtype=np.float64)
    arrays["threshold"] = np.asarray(thresholds, dtype=np.float64)
    arrays["target"] = np.asarray(sparsity, dtype=np.float64)
    arrays["weights"] = np.asarray(counts, dtype=np.int64)
    return arrays


def accuracy_curve(evaluator: MaskedEvaluator, sparsities: Sequence[float] = CURVE_SPARSITIES,
                   scope: str = "layer") -> tuple[list[float], list[float]]:
    """(sparsities, test accuracies) of one-shot magnitude pruning without retraining; the
    evaluator's dense weights are restored afterwards."""
    points = [check_sparsity(s) for s in sparsities]
    try:
        return points, [evaluator.accuracy_at(s, scope) for s in points]
    finally:
        evaluator.restore()


__all__ = ["CURVE_SPARSITIES", "accuracy_curve", "slider_arrays"]
