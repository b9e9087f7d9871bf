"""Why a distilled student may gain nothing: how calibrated its teacher is, and how much "dark
knowledge" its soft targets carry.

* **Reliability bins and ECE** (Guo, Pleiss, Sun, Weinberger, "On Calibration of Modern Neural
  Networks", ICML 2017, section 2). Predictions are grouped by their confidence (the largest
  softmax probability) into M equal-width bins I_m = ((m-1)/M, m/M]; per bin, acc(B_m) is the
  fraction predicted correctly and conf(B_m) the mean confidence (eqs. 1-2). The expected
  calibration error is eq. 3:

      ECE = sum_m |B_m| / n * |acc(B_m) - conf(B_m)|

  A perfectly calibrated model has acc = conf in every bin (the diagonal of the reliability
  diagram). Guo et al. use M = 15; a confidence of exactly 0 joins the first bin.
* **Non-target mass** (Hinton, Vinyals, Dean 2015, section 2): the probability the teacher's soft
  target at temperature T (eq. 1) puts on the classes other than the true one, ``1 - p_T(y | x)``.
  It is what the student can learn beyond the label; a teacher whose soft targets are nearly one-hot
  at the chosen T gives the student the label again and little else.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .soft_targets import soften

GUO_BINS = 15  # Guo et al. 2017, section 5: M = 15 bins


@dataclass(frozen=True)
class ReliabilityBins:
    """M equal-width confidence bins: ``edges`` (M + 1,), and per bin the sample ``counts``, the
    ``accuracy`` acc(B_m) and mean ``confidence`` conf(B_m) (NaN for an empty bin)."""

    edges: np.ndarray
    counts: np.ndarray
    accuracy: np.ndarray
    confidence: np.ndarray

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    @property
    def ece(self) -> float:
        """Guo et al. 2017, eq. 3: sum over non-empty bins of |B_m| / n * |acc(B_m) - conf(B_m)|."""
        filled = self.counts > 0
        if not filled.any():
            return float("nan")
        gaps = np.abs(self.accuracy[filled] - self.confidence[filled])
        return float(np.sum(self.counts[filled] / self.total * gaps))


def _check_probabilities(probabilities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels)
    if probs.ndim != 2 or probs.shape[1] < 2 or probs.shape[0] == 0:
        raise ValueError(f"probabilities must be a non-empty (samples, classes) array with at least 2 classes, "
                         f"got shape {probs.shape}")
    if labels.shape != (probs.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be {probs.shape[0]} integer class indices, got shape {labels.shape} "
                         f"of {labels.dtype}")
    if labels.min() < 0 or labels.max() >= probs.shape[1]:
        raise ValueError(f"labels must be class indices in 0..{probs.shape[1] - 1}, got {labels.min()}..{labels.max()}")
    if not np.all(np.isfinite(probs)) or probs.min() < 0 or probs.max() > 1 + 1e-9:
        raise ValueError("probabilities must be finite numbers in [0, 1] (softmax outputs, not logits)")
    return probs, labels


def _check_bins(n_bins: int) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"the number of confidence bins must be a positive whole number, got {n_bins!r}")
    return int(n_bins)


def reliability_bins(probabilities: np.ndarray, labels: np.ndarray, n_bins: int = GUO_BINS) -> ReliabilityBins:
    """Guo et al. 2017's reliability bins of predicted ``probabilities`` (N, K) against ``labels`` (N,).

    Each sample goes to the bin ((m-1)/M, m/M] holding its confidence max_k p_k; it counts as
    correct when argmax_k p_k equals its label."""
    probs, labels = _check_probabilities(probabilities, labels)
    n_bins = _check_bins(n_bins)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    index = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(index, weights=correct, minlength=n_bins) / counts
        mean_confidence = np.bincount(index, weights=confidence, minlength=n_bins) / counts
    return ReliabilityBins(np.linspace(0.0, 1.0, n_bins + 1), counts, accuracy, mean_confidence)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, n_bins: int = GUO_BINS) -> float:
    """ECE of Guo et al. 2017, eq. 3, over ``n_bins`` equal-width confidence bins (a number in [0, 1])."""
    return reliability_bins(probabilities, labels, n_bins).ece


def non_target_mass(logits: np.ndarray, labels: np.ndarray, T: float) -> np.ndarray:
    """Per sample, ``1 - softmax(z / T)[y]`` (Hinton et al. 2015, eq. 1): the soft target's
    probability on every class but the true one. ``logits`` (N, K), ``labels`` (N,) -> (N,)."""
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 2 or z.shape[0] == 0:
        raise ValueError(f"logits must be a non-empty (samples, classes) array with at least 2 classes, got shape {z.shape}")
    probs = np.asarray(soften(z, T))  # checks T and that the logits are finite
    _, labels = _check_probabilities(probs, labels)
    return 1.0 - probs[np.arange(len(labels)), labels]


def mean_per_class(values: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """The mean of ``values`` (N,) over the samples of each class (K,), NaN for a class with none."""
    values, labels = np.asarray(values, dtype=np.float64), np.asarray(labels)
    if values.shape != labels.shape or values.ndim != 1:
        raise ValueError(f"values {values.shape} and labels {labels.shape} must be two (N,) arrays")
    counts = np.bincount(labels, minlength=num_classes)[:num_classes]
    sums = np.bincount(labels, weights=values, minlength=num_classes)[:num_classes]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


__all__ = ["GUO_BINS", "ReliabilityBins", "expected_calibration_error", "mean_per_class", "non_target_mass",
           "reliability_bins"]
