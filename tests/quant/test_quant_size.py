"""Compressed sizes (Han et al. 2016) come from real encoded bytes that decode back to the weights."""
import math

import numpy as np
import pytest
import torch

from kdviz.quant import encode_layer, encode_model, kmeans_quantize, model_size
from kdviz.quant.size import positions_from_gaps, relative_gaps

from _support.reference import huffman_total_bits


def _pruned(shape=(60, 90), sparsity=0.9, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=g)
    w[torch.rand(shape, generator=g) < sparsity] = 0
    return w


def _han_layout_loop(mask, gap_bits):
    """The relative index with fillers, as a plain loop: [(position, gap code, is_filler)].

    A real entry's code is its gap - 1, gaps 1..2^b - 1; the code 2^b - 1 marks a filler placed
    2^b - 1 positions after the previous entry (kdviz.quant.size's module docstring)."""
    reach, prev, out = 2**gap_bits - 1, -1, []
    for pos in np.flatnonzero(mask.ravel()):
        while pos - prev > reach:
            prev += reach
            out.append((prev, reach, True))
        out.append((pos, pos - prev - 1, False))
        prev = pos
    return out


def test_relative_index_with_fillers_like_han_figure_2():
    mask = np.zeros(20, dtype=bool)
    mask[[1, 4, 15]] = True
    positions, symbols, filler = relative_gaps(mask, 3)  # 3-bit gaps: real gaps 1..7, code 7 = filler
    assert positions.tolist() == [1, 4, 11, 15]
    assert symbols.tolist() == [1, 2, 7, 3]
    assert filler.tolist() == [False, False, True, False]


def test_gaps_at_the_edge_of_the_code():
    mask = np.zeros(40, dtype=bool)
    mask[[6, 14, 29]] = True  # gaps 7 (the longest real gap at 3 bits), 8, 15
    positions, symbols, filler = relative_gaps(mask, 3)
    assert positions.tolist() == [6, 13, 14, 21, 28, 29]
    assert symbols.tolist() == [6, 7, 0, 7, 7, 0]
    assert filler.tolist() == [False, True, False, True, True, False]
    back, back_filler = positions_from_gaps(symbols, 3)
    assert back.tolist() == positions.tolist() and back_filler.tolist() == filler.tolist()


@pytest.mark.parametrize("gap_bits", [1, 2, 3, 5])
def test_relative_index_matches_a_loop(gap_bits):
    mask = (_pruned(sparsity=0.95) != 0).numpy()
    positions, symbols, filler = relative_gaps(mask, gap_bits)
    assert list(zip(positions.tolist(), symbols.tolist(), filler.tolist())) == _han_layout_loop(mask, gap_bits)
    assert symbols.min() >= 0 and symbols.max() <= 2**gap_bits - 1


@pytest.mark.parametrize("huffman", [True, False])
def test_sparse_layer_round_trips_and_sizes_are_the_bytes(huffman):
    w = _pruned()
    sw = kmeans_quantize(w, 4)
    enc = encode_layer(sw, "fc", huffman=huffman, gap_bits=5)
    np.testing.assert_array_equal(enc.decode(), sw.weight().numpy())
    size = enc.size()
    layout = _han_layout_loop((w != 0).numpy(), 5)
    n_entries = len(layout)
    assert size.n_entries == n_entries and size.n_kept == int((w != 0).sum())
    assert size.codebook_bits == 32 * sw.num_clusters
    real = [int(sw.indices.ravel()[p]) for p, _, f in layout if not f]
    padding = max(range(sw.num_clusters), key=lambda i: (real.count(i), -i))  # the most frequent index
    if huffman:
        index_symbols = np.array([padding if f else int(sw.indices.ravel()[p]) for p, _, f in layout])
        gap_symbols = np.array([g for _, g, _ in layout])
        assert size.value_bits == 8 * math.ceil(huffman_total_bits(np.bincount(index_symbols).tolist()) / 8)
        assert size.sparse_index_bits == 8 * math.ceil(huffman_total_bits(np.bincount(gap_symbols).tolist()) / 8)
        assert size.table_bits == 8 * (len(enc.index_table) + len(enc.gap_table)) > 0
    else:
        assert sw.num_clusters == 16  # all 2^4 clusters used: 4 bits an index, fillers included
        assert size.value_bits == 8 * math.ceil(n_entries * 4 / 8)
        assert size.sparse_index_bits == 8 * math.ceil(n_entries * 5 / 8)
        assert size.table_bits == 0
    parts = 8 * (len(enc.index.data) + len(enc.codebook) + len(enc.gaps.data) + len(enc.index_table) + len(enc.gap_table))
    assert size.compressed_bits == parts
    assert size.rate == pytest.approx(32 * w.numel() / parts)


def test_dense_layer_round_trips_without_a_sparse_index():
    w = torch.randn(30, 40)
    sw = kmeans_quantize(w, 3)
    enc = encode_layer(sw, huffman=False)
    np.testing.assert_array_equal(enc.decode(), sw.weight().numpy())
    assert enc.gaps is None and enc.size().value_bits == 8 * math.ceil(1200 * 3 / 8)
    huff = encode_layer(sw)
    np.testing.assert_array_equal(huff.decode(), sw.weight().numpy())
    assert huff.size().value_bits <= enc.size().value_bits


def test_conv_layers_default_to_8_bit_gaps_and_all_pruned_layers_encode():
    w = _pruned((8, 4, 3, 3), sparsity=0.7)
    enc = encode_layer(kmeans_quantize(w, 5))
    assert enc.gap_bits == 8
    np.testing.assert_array_equal(enc.decode(), kmeans_quantize(w, 5).weight().numpy())
    empty = encode_layer(kmeans_quantize(torch.zeros(4, 4), 2))
    assert (empty.decode() == 0).all() and empty.size().n_entries == 0


def test_model_totals():
    shared = {"a": kmeans_quantize(_pruned(seed=1), 5), "b": kmeans_quantize(_pruned((10, 60), 0.5, seed=2), 5)}
    enc = encode_model(shared)
    total = model_size(enc, bias_count=70)
    assert total.original_bits == 32 * (60 * 90 + 10 * 60)
    assert total.compressed_bits == sum(e.size().compressed_bits for e in enc.values())
    assert total.rate == pytest.approx(total.original_bits / total.compressed_bits)
    assert total.rate_with_biases < total.rate
    with pytest.raises(ValueError, match="gap_bits"):
        relative_gaps((_pruned() != 0).numpy(), 0)
