"""Deep Compression's size accounting (``kdviz.quant.pipeline``) on a small pruned and clustered model.

Expected byte counts are recomputed here from the masks alone (Han's relative indices: in the
pruned stage's float32 storage a filler zero per 2^gap_bits positions of a long gap; in the
quantized stages, where the top gap code marks a filler, one per 2^gap_bits - 1 positions;
fixed-width indices of ceil(log2(K)) bits), never read back from the code under test.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kdviz.models import build_model
from kdviz.quant import attach_shared_model, kmeans_quantize
from kdviz.quant.pipeline import (
    decoded_model, dense_stage, encode_shared, huffman_stage, pruned_stage, quantized_stage, weight_count,
)

LAYERS = ("fc1", "fc2", "fc3")
SPARSITY = {"fc1": 0.9, "fc2": 0.8, "fc3": 0.5}
BITS = 3


@pytest.fixture(scope="module")
def pruned():
    """LeNet-300-100 on 8x8 inputs with the smallest weights of each layer set to exactly 0."""
    torch.manual_seed(0)
    model = build_model("lenet300", input_shape=(1, 8, 8), num_classes=10)
    with torch.no_grad():
        for name in LAYERS:
            w = getattr(model, name).weight
            cut = w.abs().flatten().kthvalue(int(SPARSITY[name] * w.numel())).values
            w[w.abs() <= cut] = 0.0
    return model


@pytest.fixture(scope="module")
def shared(pruned):
    return {n: kmeans_quantize(getattr(pruned, n).weight, BITS, init="linear") for n in LAYERS}


def entries(mask: np.ndarray, gap_bits: int, reach: int | None = None) -> int:
    """Kept weights plus the filler entries that bridge gaps above ``reach`` (2^gap_bits) positions."""
    reach = 2**gap_bits if reach is None else reach
    kept = np.flatnonzero(mask.ravel())
    gaps = np.diff(np.concatenate(([-1], kept)))
    return int(kept.size + ((gaps - 1) // reach).sum())


def test_dense_and_pruned_sizes_follow_han(pruned):
    n = 64 * 300 + 300 * 100 + 100 * 10
    assert weight_count(pruned) == n
    dense = dense_stage(pruned, 0.9)
    assert dense.nbytes == 4 * n and dense.error == pytest.approx(0.1)
    masks = {name: getattr(pruned, name).weight.detach().numpy() != 0 for name in LAYERS}
    expected = sum(math.ceil(entries(m, 5) * (32 + 5) / 8) for m in masks.values())
    stage = pruned_stage(pruned, 0.85, seconds=2.0)
    kept = sum(m.sum() for m in masks.values()) / n
    assert stage.nbytes == expected and stage.seconds == 2.0 and f"{kept:.1%} of weights kept" in stage.note


def test_fixed_width_and_huffman_sizes_are_the_encoded_bytes(pruned, shared):
    encodings = encode_shared(shared)
    expected = 0
    for name, sw in shared.items():
        mask = getattr(pruned, name).weight.detach().numpy() != 0
        assert np.array_equal(sw.mask.numpy(), mask)  # exact zeros count as pruned
        k, e = sw.num_clusters, entries(mask, 5, reach=2**5 - 1)
        assert k == 2**BITS
        expected += math.ceil(e * BITS / 8) + math.ceil(e * 5 / 8) + 4 * k
    fixed = quantized_stage(encodings, f"{BITS}-bit", 0.8, accuracy_before_finetune=0.7)
    assert fixed.nbytes == expected and fixed.name == "3-bit k-means" and "70.00% accuracy" in fixed.note
    huffman = huffman_stage(encodings, 0.8)
    total = sum(len(e.index.data) + len(e.gaps.data) + len(e.codebook) + len(e.index_table) + len(e.gap_table)
                for e in encodings.huffman.values())
    assert huffman.nbytes == total < fixed.nbytes
    for name, layer in encodings.huffman.items():
        decoded = layer.decode()
        assert np.array_equal(decoded, shared[name].weight().numpy())
        assert np.array_equal(encodings.fixed[name].decode(), decoded)
        assert len(np.unique(decoded[decoded != 0])) <= 2**BITS and (decoded[~shared[name].mask.numpy()] == 0).all()


def test_decoded_model_computes_what_the_shared_model_does(pruned, shared):
    model = build_model("lenet300", input_shape=(1, 8, 8), num_classes=10)
    model.load_state_dict(pruned.state_dict())
    with torch.no_grad():
        model.fc2.bias.add_(0.25)  # a bias the decoded model must take from the state
    attach_shared_model(model, shared)
    state = model.state_dict()
    assert "fc1.weight" not in state  # parametrized: the weight is not a plain entry
    decoded = decoded_model(pruned, state, encode_shared(shared).huffman)
    x = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(decoded(x), model(x), atol=1e-6)
        assert torch.equal(decoded.fc2.bias, model.fc2.bias) and not torch.equal(decoded.fc2.bias, pruned.fc2.bias)


def test_bad_input_is_named(pruned, shared):
    with pytest.raises(ValueError, match="no shared-weight layers"):
        encode_shared({})
    with pytest.raises(ValueError, match=r"encoded layers \['conv9'\] are not in the model"):
        decoded_model(pruned, pruned.state_dict(), {"conv9": encode_shared(shared).huffman["fc1"]})
