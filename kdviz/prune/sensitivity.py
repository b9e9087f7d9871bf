"""Per-layer sensitivity analysis: prune one layer at a time at rising sparsity, measure accuracy.

Han et al. 2015 (section 4, figure 6) and Distiller's ``perform_sensitivity_analysis``
(``distiller/sensitivity.py``): every other layer stays dense, one layer is magnitude-pruned to
each sparsity in turn (no retraining), and the test accuracy is recorded. Layers whose curve stays
flat tolerate aggressive pruning; steep ones should be pruned gently. The curves guide per-layer
targets (Han's per-layer thresholds, LeNet-300-100's fc3 keeping more weights than fc1).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from .evaluate import MaskedEvaluator
from .magnitude import check_sparsity

DEFAULT_SPARSITIES = tuple(round(s, 2) for s in np.arange(0.0, 0.96, 0.05))


def sensitivity_analysis(
    evaluator: MaskedEvaluator, sparsities: Sequence[float] = DEFAULT_SPARSITIES, names: Iterable[str] | None = None
) -> dict[str, list[tuple[float, float]]]:
    """``{parameter name: [(sparsity, accuracy), ...]}`` pruning only that layer, from the dense model.

    The evaluator's dense weights are restored afterwards.
    """
    sparsities = [check_sparsity(s) for s in sparsities]
    if not sparsities:
        raise ValueError("give at least one sparsity to test")
    layers = list(names) if names is not None else list(evaluator.dense)
    unknown = [n for n in layers if n not in evaluator.dense]
    if unknown:
        raise ValueError(f"not evaluated weights: {unknown} (known: {list(evaluator.dense)})")
    curves: dict[str, list[tuple[float, float]]] = {}
    try:
        for name in layers:
            curves[name] = [(s, evaluator.accuracy_at({name: s})) for s in sparsities]
    finally:
        evaluator.restore()
    return curves
