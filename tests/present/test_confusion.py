"""'Most confused' is one definition for both UIs: the smallest top-2 gap at T = 1."""
import numpy as np
import pytest

from kdviz.present.confusion import MOST_CONFUSED_HELP, confusion_order, top2_gap


def _top2_gap_numpy(z: np.ndarray) -> np.ndarray:
    """Independent: softmax per row, then largest minus second largest, by partial sort."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    part = np.partition(p, -2, axis=1)
    return part[:, -1] - part[:, -2]


def test_top2_gap_and_order_match_an_independent_numpy_computation():
    z = np.random.default_rng(7).normal(scale=4.0, size=(200, 10))
    gaps = _top2_gap_numpy(z)
    np.testing.assert_allclose(top2_gap(z), gaps, atol=1e-12)
    order = confusion_order(z)
    assert sorted(order.tolist()) == list(range(200))
    np.testing.assert_array_equal(order, np.argsort(gaps, kind="stable"))
    assert gaps[order[0]] == gaps.min() and gaps[order[-1]] == gaps.max()


def test_a_hesitant_sample_ranks_before_an_uncertain_but_decided_one():
    # Sample 0: two classes nearly tied (a 3 that could be an 8). Sample 1: high entropy, yet one
    # class clearly ahead of the rest. Sample 2: confident. Entropy would put sample 1 first.
    z = np.array([[5.0, 4.9, 0.0, 0.0], [2.0, 0.5, 0.5, 0.5], [9.0, 0.0, 0.0, 0.0]])
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    entropy = -(p * np.log(p)).sum(1)
    assert np.argmax(entropy) == 1
    assert confusion_order(z).tolist() == [0, 1, 2]
    ties = np.zeros((3, 4))
    assert confusion_order(ties).tolist() == [0, 1, 2]  # equal gaps keep index order


def test_bad_logits_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="at least 2 classes"):
        top2_gap(np.zeros((4, 1)))
    with pytest.raises(ValueError, match="samples, classes"):
        confusion_order(np.zeros(5))
    with pytest.raises(ValueError, match="finite"):
        top2_gap(np.array([[1.0, np.nan]]))
    assert "two most likely classes at T = 1" in MOST_CONFUSED_HELP
