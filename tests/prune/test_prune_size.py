"""Size accounting equals an independent count of encoded bytes; FLOPs equal hand counts."""
import math

import numpy as np
import pytest
import scipy.sparse
import torch

from kdviz.models import build_model
from kdviz.prune import (
    count_flops,
    decode_relative_index,
    encode_csr,
    encode_relative_index,
    magnitude_masks,
    size_report,
)


def loop_relative_index(flat, bits):
    """Han's relative index written as a plain loop: (difference, value) entries with filler zeros."""
    span = 2 ** bits
    entries, prev = [], -1
    for i, v in enumerate(flat):
        if v == 0:
            continue
        while i - prev > span:  # the gap does not fit: a filler zero span positions on
            prev += span
            entries.append((span, 0.0))
        entries.append((i - prev, float(v)))
        prev = i
    return entries


def sparse_matrix(shape, density, seed):
    rng = np.random.default_rng(seed)
    m = rng.normal(size=shape).astype(np.float32)
    m[rng.random(shape) > density] = 0
    return m


def test_relative_index_of_a_hand_example():
    flat = np.zeros(30, np.float32)
    flat[[0, 3, 20, 21]] = [1.5, -2.0, 3.0, 4.0]
    enc = encode_relative_index(flat[None, :], bits := 3)  # span 8
    # 0: diff 1; 3: diff 3; 20: gap 17 -> fillers at 11 and 19, then diff 1; 21: diff 1
    assert (enc.codes + 1).tolist() == [1, 3, 8, 8, 1, 1]
    assert enc.values.tolist() == [1.5, -2.0, 0.0, 0.0, 3.0, 4.0]
    assert enc.fillers == 2 and enc.entries == 6 and enc.index_bits == bits
    assert enc.nbytes == math.ceil(6 * (3 + 32) / 8)
    np.testing.assert_array_equal(decode_relative_index(enc), flat)


@pytest.mark.parametrize("bits", [5, 8])
@pytest.mark.parametrize("density", [0.0, 0.01, 0.08, 0.5, 1.0])
def test_relative_index_equals_a_loop_encoder(bits, density):
    m = sparse_matrix((37, 91), density, seed=int(density * 100) + bits)
    enc = encode_relative_index(m, bits)
    expected = loop_relative_index(m.ravel(), bits)
    assert [(int(c) + 1, float(v)) for c, v in zip(enc.codes, enc.values)] == expected
    assert enc.fillers == sum(1 for d, v in expected if v == 0.0)
    assert enc.nbytes == math.ceil(len(expected) * (bits + 32) / 8)
    assert enc.codes.max(initial=0) < 2 ** bits
    np.testing.assert_array_equal(decode_relative_index(enc), m.ravel())


def test_csr_equals_scipy_and_its_byte_count():
    m = sparse_matrix((50, 120), 0.1, seed=3)
    enc = encode_csr(m)
    ref = scipy.sparse.csr_matrix(m)
    np.testing.assert_array_equal(enc.values, ref.data)
    np.testing.assert_array_equal(enc.col_indices, ref.indices)
    np.testing.assert_array_equal(enc.row_ptr, ref.indptr)
    assert enc.nbytes == ref.nnz * 4 + ref.nnz * 4 + (50 + 1) * 4  # float32 values, int32 indices
    with pytest.raises(ValueError, match="2-D"):
        encode_csr(np.zeros(5))
    with pytest.raises(ValueError, match="index_bits"):
        encode_relative_index(m, 12)


def test_size_report_of_pruned_lenet5_uses_8_bits_for_conv_and_5_for_fc():
    torch.manual_seed(0)
    model = build_model("lenet5", input_shape=(1, 28, 28))
    magnitude_masks(model, 0.9).apply(model)
    report = size_report(model)
    assert [(l.layer, l.index_bits) for l in report.layers] == [("conv1", 8), ("conv2", 8), ("fc1", 5), ("fc2", 5)]
    for layer, p in zip(report.layers, [model.conv1.weight, model.conv2.weight, model.fc1.weight, model.fc2.weight]):
        w = p.detach().numpy().reshape(p.shape[0], -1)
        bits = layer.index_bits
        entries = loop_relative_index(w.ravel(), bits)
        assert layer.relative_bytes == math.ceil(len(entries) * (bits + 32) / 8)
        ref = scipy.sparse.csr_matrix(w)
        assert layer.csr_bytes == ref.data.size * 4 + ref.indices.size * 4 + ref.indptr.size * 4
        assert layer.dense_bytes == w.size * 4 and layer.nonzero == ref.nnz
        assert layer.sparsity == pytest.approx(1 - ref.nnz / w.size)
    biases = sum(m.bias.numel() for m in (model.conv1, model.conv2, model.fc1, model.fc2))
    assert report.other_parameters == biases
    assert report.total("dense") == 4 * sum(p.numel() for p in model.parameters())
    assert report.total("relative") == sum(l.relative_bytes for l in report.layers) + 4 * biases
    assert report.weight_compression == pytest.approx(report.weights / report.nonzero)
    assert report.rows()[-1]["kept"] == report.nonzero
    with pytest.raises(ValueError, match="unknown storage format"):
        report.total("coo")


def test_flops_of_lenet5_and_lenet300_match_hand_counts():
    lenet5 = build_model("lenet5", input_shape=(1, 28, 28))
    conv1 = 28 * 28 * 20 * 1 * 25
    conv2 = 14 * 14 * 50 * 20 * 25
    fc1 = 50 * 7 * 7 * 500
    fc2 = 500 * 10
    counts = count_flops(lenet5)
    assert counts["macs"] == conv1 + conv2 + fc1 + fc2
    assert counts["flops"] == 2 * counts["macs"]
    magnitude_masks(lenet5, 0.75).apply(lenet5)
    nz = [int((m.weight != 0).sum()) for m in (lenet5.conv1, lenet5.conv2, lenet5.fc1, lenet5.fc2)]
    pruned = count_flops(lenet5)
    assert pruned["nonzero_macs"] == nz[0] * 28 * 28 + nz[1] * 14 * 14 + nz[2] + nz[3]
    assert pruned["nonzero_flops"] == 2 * pruned["nonzero_macs"]
    lenet300 = build_model("lenet300", input_shape=(1, 28, 28))
    masks = magnitude_masks(lenet300, {"fc1.weight": 0.92, "fc2.weight": 0.91, "fc3.weight": 0.74})
    masks.apply(lenet300)
    counts = count_flops(lenet300)
    assert counts["macs"] == 784 * 300 + 300 * 100 + 100 * 10
    kept = {n: int(m.sum()) for n, m in masks.items()}
    assert counts["nonzero_macs"] == sum(kept.values())
    assert counts["parameters"] == 266_610
