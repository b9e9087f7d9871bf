"""Which test samples the teacher finds hardest: one definition for both UIs.

"Most confused" ranks samples by the *top-2 gap*: the difference between the teacher's two largest
probabilities at T = 1 (the ordinary softmax, Hinton, Vinyals, Dean 2015, eq. 1 with T = 1). The
smallest gap comes first: a sample the teacher nearly assigns to two classes (a 3 that could be an
8), where soft targets carry the most "dark knowledge". The Streamlit page's and the
TemperatureExplorer's "Most confused" buttons both step through ``confusion_order``, and both show
``MOST_CONFUSED_HELP``.
"""
from __future__ import annotations

import numpy as np

from ..distill.soft_targets import soften

MOST_CONFUSED_HELP = ("Each press shows the next test sample on which the teacher hesitates most: the smallest "
                      "gap between its two most likely classes at T = 1.")


def _logits(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 2:
        raise ValueError(f"logits must be a (samples, classes) array with at least 2 classes, got shape {z.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError("logits must be finite numbers (found NaN or infinity)")
    return z


def top2_gap(logits: np.ndarray) -> np.ndarray:
    """Per sample, the largest minus the second largest softmax probability at T = 1 (in [0, 1])."""
    probs = np.asarray(soften(_logits(logits), 1.0))
    top2 = np.sort(probs, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def confusion_order(logits: np.ndarray) -> np.ndarray:
    """Sample indices from most to least confused (smallest top-2 gap first; ties keep index order)."""
    return np.argsort(top2_gap(logits), kind="stable")


__all__ = ["MOST_CONFUSED_HELP", "top2_gap", "confusion_order"]
