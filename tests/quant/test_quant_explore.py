"""``kdviz.quant.explore``: every method's weights, levels and storage against independent counts."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from kdviz.quant import SliderEvaluator
from kdviz.quant.explore import MethodExplorer, QuantChoice, subsample_map


class TwoLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(12, 20), nn.Linear(20, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


@pytest.fixture(scope="module")
def ex() -> MethodExplorer:
    torch.manual_seed(0)
    model = TwoLayers()
    x = torch.randn(200, 12)
    y = model(x).argmax(1)  # the float model is right on every sample by construction
    return MethodExplorer(SliderEvaluator(model, x, y))


def test_kmeans_storage_is_fixed_width_indices_plus_float_centroids(ex):
    q = ex.quantize(QuantChoice("kmeans", bits=3))
    for name, w in ex.evaluator.original.items():
        k = len(np.unique(q.weights[name].numpy()))
        assert k == q.levels[name].size <= 8 and q.counts[name].sum() == w.numel()
        width = max(1, math.ceil(math.log2(k)))
        assert q.storage_bits[name] == 8 * math.ceil(w.numel() * width / 8) + 32 * k
    assert ex.baseline() == 1.0 and ex.accuracy(QuantChoice("kmeans", bits=8)) > 0.9


def test_uniform_levels_and_storage_per_tensor_and_per_channel(ex):
    w = ex.evaluator.original["fc1"].numpy().astype(np.float64)
    q = ex.quantize(QuantChoice("uniform", bits=4))
    s = np.abs(w).max() / 7
    assert np.allclose(q.levels["fc1"], s * np.arange(-7, 8), atol=1e-6)
    assert np.allclose(q.weights["fc1"].numpy(), np.clip(np.round(w / s), -7, 7) * s, atol=1e-6)
    assert q.storage_bits["fc1"] == 4 * w.size + 32
    q = ex.quantize(QuantChoice("uniform", bits=4, symmetric=False, per_channel=True))
    lo, hi = min(w[0].min(), 0), max(w[0].max(), 0)
    scale = (hi - lo) / 15
    zero = np.clip(np.round(-lo / scale), 0, 15)
    assert q.per_row and np.allclose(q.levels["fc1"], (np.arange(16) - zero) * scale, atol=1e-6)
    assert q.storage_bits["fc1"] == 4 * w.size + 2 * 32 * w.shape[0]
    with pytest.raises(ValueError, match="at least 2 bits"):
        ex.quantize(QuantChoice("uniform", bits=1))


def test_binary_and_product_storage(ex):
    w = ex.evaluator.original["fc1"].numpy()
    q = ex.quantize(QuantChoice("binary", binarizer="xnor"))
    alpha = np.abs(w[0]).mean()
    assert np.allclose(q.levels["fc1"], [-alpha, alpha]) and q.storage_bits["fc1"] == w.size + 32 * w.shape[0]
    assert ex.quantize(QuantChoice("binary", binarizer="binaryconnect")).storage_bits["fc1"] == w.size
    q = ex.quantize(QuantChoice("product", bits=2, subvector=4))
    m, n = w.shape  # 3 sub-spaces of 4 columns, 4 codewords each
    assert q.storage_bits["fc1"] == m * 3 * 2 + 32 * 4 * n and q.codes["fc1"].shape == (m, 3)
    assert q.ratio == pytest.approx(32 * (w.size + 60) / sum(q.storage_bits.values()))


def test_low_rank_energy_error_and_bad_rank(ex):
    W = ex.evaluator.original["fc1"].double().numpy()
    s = np.linalg.svd(W, compute_uv=False)
    p = ex.low_rank("fc1", 3)
    assert p.max_rank == 12 and np.allclose(p.singular_values, s)
    assert p.energy == pytest.approx((s[:3] ** 2).sum() / (s**2).sum())
    assert (p.params_before, p.params_after) == (240, 3 * 32)
    assert ex.low_rank("fc1", 12).accuracy == 1.0
    with pytest.raises(ValueError, match="rank must be in 1..12 for a 20 x 12 weight matrix, got 13"):
        ex.low_rank("fc1", 13)
    with pytest.raises(ValueError, match="unknown layer"):
        ex.low_rank("fc9", 1)
    ratio, _ = ex.low_rank_all(0.5)  # fc1 at rank 6, the output layer float
    assert ratio == pytest.approx((240 + 60) / (6 * 32 + 60))


def test_curves_and_scatter(ex):
    curves = ex.accuracy_curves(bits=(1, 2, 8))
    assert 1 not in curves["uniform, per tensor, symmetric"] and 1 in curves["uniform, per channel, asymmetric"]
    assert set(curves["XNOR (BWN)"]) == {1}
    points = ex.scatter_points(bits=(2, 8), fractions=(0.5,))
    assert {p["method"] for p in points} >= {"k-means, linear init", "BinaryConnect", "low rank (SVD)"}
    assert all(0 <= p["accuracy"] <= 1 and p["ratio"] > 0 for p in points)


def test_choice_validation_and_subsampled_maps():
    with pytest.raises(ValueError, match="bits must be in 1..16, got 17"):
        QuantChoice("kmeans", bits=17).validate()
    with pytest.raises(ValueError, match="No quantization method"):
        QuantChoice("ternary").validate()
    with pytest.raises(ValueError, match="k-means initialisation"):
        QuantChoice("kmeans", init="spread").validate()
    m = subsample_map(np.arange(300 * 500).reshape(300, 500), 128)
    assert m.shape == (128, 128) and m[0, 0] == 0 and m[-1, -1] == 300 * 500 - 1


def test_every_quantizer_has_a_kind_whose_options_are_choice_fields():
    """The explorers' menus are read from ``KINDS``: every registered quantizer has one, in
    registration order, and each option a kind names is a ``QuantChoice`` field with offered values."""
    from dataclasses import fields

    from kdviz.quant.explore import DEFAULT_METHOD, KINDS, QUANTIZERS, option_values

    assert list(KINDS) == [name for name, _ in QUANTIZERS.items()] and DEFAULT_METHOD == list(KINDS)[0]
    values, choice_fields = option_values(), {f.name for f in fields(QuantChoice)}
    for kind in KINDS.values():
        assert kind.title and kind.note and set(kind.options) <= choice_fields & set(values)
    assert QuantChoice("binary").kind.fixed_bits == 1 and QuantChoice("kmeans").kind.shared
    assert not QuantChoice("uniform").kind.shared and QuantChoice("uniform").kind.options == ("per_channel", "symmetric")
    with pytest.raises(ValueError, match="No quantization method 'ternary'"):
        QuantChoice("ternary").kind


def test_layer_histogram_is_computed_once_per_layer_and_bins(ex):
    """Issue 14: the bits slider redraws the float weights' histogram at every move; it never changes."""
    from kdviz.quant.explore import layer_histogram

    counts, edges = layer_histogram(ex.evaluator, "fc1")
    w = ex.evaluator.original["fc1"].numpy()
    assert counts.sum() == w.size and edges[0] <= w.min() and edges[-1] >= w.max()
    assert layer_histogram(ex.evaluator, "fc1")[0] is counts  # kept, not recomputed
    assert len(layer_histogram(ex.evaluator, "fc1", bins=13)[0]) == 13
    with pytest.raises(ValueError, match="unknown layer"):
        layer_histogram(ex.evaluator, "nope")
