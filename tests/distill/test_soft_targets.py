"""soften and entropy against Hinton et al. 2015 eq. 1, computed independently with numpy."""
import math

import numpy as np
import pytest
import torch

from kdviz.distill import entropy, soften, temperature_table

SEED_VALUES = {  # softmax of [2, 7, 10], the seed values (5 decimals)
    1: [0.00032, 0.04741, 0.95227],
    5: [0.11532, 0.31348, 0.5712],
    10: [0.20516, 0.33825, 0.45659],
    20: [0.26484, 0.34006, 0.3951],
}


def numpy_softmax(z, T):
    e = np.exp(np.asarray(z, dtype=np.float64) / T - np.max(np.asarray(z, dtype=np.float64) / T))
    return e / e.sum()


@pytest.mark.parametrize("T,expected", SEED_VALUES.items())
def test_seed_values(T, expected):
    assert soften([2, 7, 10], T) == pytest.approx(expected, abs=6e-6)


@pytest.mark.parametrize("T", [0.1, 0.5, 1, 3, 17, 100])
def test_matches_numpy_for_random_logits(T):
    z = np.random.default_rng(1).normal(0, 5, size=10)
    np.testing.assert_allclose(soften(z, T), numpy_softmax(z, T), rtol=1e-12)


def test_returns_same_kind_and_shape():
    assert isinstance(soften([1.0, 2.0], 2), list)
    arr = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    out = soften(arr, 2)
    assert isinstance(out, np.ndarray) and out.shape == (2, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[1], [1 / 3] * 3, rtol=1e-6)
    t = torch.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    q = soften(t, 2)
    assert isinstance(q, torch.Tensor) and q.requires_grad and q.shape == (1, 3)


def test_stable_for_huge_logits_and_tiny_temperature():
    out = soften([1e4, 0.0, -1e4], 1e-3)
    assert out == [1.0, 0.0, 0.0]
    out = soften(torch.tensor([1e30, 1e30]), 1e-6)
    assert torch.isfinite(out).all() and out.tolist() == pytest.approx([0.5, 0.5])


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "hot", None])
def test_bad_temperature_raises(bad):
    with pytest.raises(ValueError, match="temperature"):
        soften([1.0, 2.0], bad)


def test_bad_logits_raise():
    with pytest.raises(ValueError, match="empty"):
        soften([], 1)
    with pytest.raises(TypeError, match="logits"):
        soften("abc", 1)


def test_entropy_against_definition():
    p = numpy_softmax([2, 7, 10], 5)
    assert entropy(p.tolist()) == pytest.approx(-np.sum(p * np.log(p)), rel=1e-12)
    assert entropy([0.25] * 4) == pytest.approx(math.log(4))
    assert entropy([1.0, 0.0, 0.0]) == 0.0  # 0 ln 0 = 0, no NaN
    batch = np.array([[0.5, 0.5], [1.0, 0.0]])
    np.testing.assert_allclose(entropy(batch), [math.log(2), 0.0])


def test_entropy_rises_with_temperature():
    hs = [entropy(soften([2, 7, 10], T)) for T in (0.5, 1, 2, 5, 20, 100)]
    assert all(a < b for a, b in zip(hs, hs[1:]))
    assert hs[-1] < math.log(3)


def test_temperature_table_rows():
    rows = temperature_table()
    assert [r["T"] for r in rows] == [1, 5, 10, 20]
    assert [rows[0]["z = 2"], rows[0]["z = 7"], rows[0]["z = 10"]] == pytest.approx(SEED_VALUES[1], abs=6e-6)
