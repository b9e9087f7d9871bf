"""Reliability bins, ECE (Guo et al. 2017, eq. 3) and non-target mass (Hinton et al. 2015, eq. 1),
each against an independent computation and, for the bins, against scikit-learn's calibration_curve."""
from __future__ import annotations

import numpy as np
import pytest

from kdviz.distill.calibration import (
    expected_calibration_error, mean_per_class, non_target_mass, reliability_bins,
)


def random_predictions(seed: int, n: int = 2000, k: int = 10, sharpness: float = 3.0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * sharpness
    labels = rng.integers(0, k, size=n)
    labels[: n // 2] = logits[: n // 2].argmax(axis=1)  # half right, so the bins are far from empty
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return logits, probs / probs.sum(axis=1, keepdims=True), labels


def ece_by_loop(probs: np.ndarray, labels: np.ndarray, n_bins: int) -> float:
    """Guo et al.'s eq. 3 written out with a Python loop over the bins ((m-1)/M, m/M]."""
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    total = 0.0
    for m in range(1, n_bins + 1):
        low, high = (m - 1) / n_bins, m / n_bins
        members = (conf > low) & (conf <= high) if m > 1 else (conf <= high)
        if members.any():
            acc = np.mean(pred[members] == labels[members])
            total += members.sum() / len(labels) * abs(acc - conf[members].mean())
    return total


@pytest.mark.parametrize("seed,n_bins", [(0, 15), (1, 10), (2, 12)])
def test_ece_matches_an_independent_loop(seed, n_bins):
    _, probs, labels = random_predictions(seed)
    ece = expected_calibration_error(probs, labels, n_bins)
    assert ece == pytest.approx(ece_by_loop(probs, labels, n_bins), abs=1e-12)
    assert 0.02 < ece < 1.0  # random logits are far from calibrated


def test_bins_match_sklearn_calibration_curve():
    calibration_curve = pytest.importorskip("sklearn.calibration").calibration_curve
    _, probs, labels = random_predictions(3, sharpness=1.5)
    bins = reliability_bins(probs, labels, 15)
    correct = (probs.argmax(axis=1) == labels).astype(int)
    prob_true, prob_pred = calibration_curve(correct, probs.max(axis=1), n_bins=15, strategy="uniform")
    filled = bins.counts > 0
    np.testing.assert_allclose(bins.accuracy[filled], prob_true, atol=1e-12)
    np.testing.assert_allclose(bins.confidence[filled], prob_pred, atol=1e-12)
    counts, _ = np.histogram(probs.max(axis=1), bins=np.linspace(0, 1, 16))
    ece_sklearn = np.sum(counts[counts > 0] / len(labels) * np.abs(prob_true - prob_pred))
    assert bins.ece == pytest.approx(ece_sklearn, abs=1e-6)
    assert bins.total == len(labels) and filled.sum() >= 8


def test_a_calibrated_model_has_near_zero_ece_and_an_overconfident_one_does_not():
    rng = np.random.default_rng(5)
    n, conf = 20000, rng.uniform(0.5, 1.0, size=20000)
    right = rng.uniform(size=n) < conf  # correct with probability equal to its confidence
    probs = np.stack([conf, 1 - conf], axis=1)
    labels = np.where(right, 0, 1)
    assert expected_calibration_error(probs, labels) < 0.02
    sure = np.stack([np.full(n, 0.99), np.full(n, 0.01)], axis=1)  # 99 % sure, right 70 % of the time
    labels = np.where(rng.uniform(size=n) < 0.7, 0, 1)
    assert expected_calibration_error(sure, labels) == pytest.approx(0.29, abs=0.01)


def test_non_target_mass_grows_with_temperature_and_matches_the_softmax():
    logits, _, labels = random_predictions(4, n=300)
    for T in (0.5, 2.0, 8.0):
        scaled = logits / T
        p = np.exp(scaled - scaled.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(non_target_mass(logits, labels, T), 1 - p[np.arange(300), labels], atol=1e-12)
    means = [non_target_mass(logits, labels, T).mean() for T in (0.25, 1.0, 4.0, 16.0)]
    assert means == sorted(means) and means[-1] > 0.8 and means[0] < 0.6


def test_mean_per_class_averages_each_class_and_marks_absent_ones():
    values, labels = np.array([1.0, 3.0, 10.0, 0.5]), np.array([0, 0, 2, 2])
    out = mean_per_class(values, labels, 4)
    np.testing.assert_allclose(out[[0, 2]], [2.0, 5.25])
    assert np.isnan(out[1]) and np.isnan(out[3])


@pytest.mark.parametrize("probs,labels,bins,message", [
    (np.ones((3, 1)), np.zeros(3, int), 15, "at least 2 classes"),
    (np.full((2, 2), 0.5), np.array([0, 2]), 15, "class indices in 0..1"),
    (np.full((2, 2), 0.5), np.array([0.0, 1.0]), 15, "integer class indices"),
    (np.array([[2.0, -1.0]]), np.array([0]), 15, "not logits"),
    (np.full((2, 2), 0.5), np.array([0, 1]), 0, "positive whole number"),
])
def test_bad_input_is_named(probs, labels, bins, message):
    with pytest.raises(ValueError, match=message):
        reliability_bins(probs, labels, bins)
