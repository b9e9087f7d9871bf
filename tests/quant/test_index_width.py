"""Deep Compression's index stream: K = 2^bits clusters cost ``bits`` bits an entry, fillers included.

Han, Mao, Dally 2016, sec. 2-3: after pruning, each stored entry is a relative index (gap) plus a
weight index into the codebook. A filler entry bridges a long gap; it must not need an extra index
symbol, which would make 5-bit codes 6 bits wide (the bug of issue 15).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kdviz.models import build_model
from kdviz.quant import encode_layer, kmeans_quantize
from kdviz.quant.pipeline import encode_shared
from kdviz.quant.size import relative_gaps


def _pruned_model(name: str, sparsity: float, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(name, input_shape=(1, 28, 28), num_classes=10)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
                w = module.weight
                cut = w.abs().flatten().kthvalue(int(sparsity * w.numel())).values
                w[w.abs() <= cut] = 0.0
    return model


@pytest.mark.parametrize("name", ["lenet300", "lenet5"])
def test_deep_compression_at_5_bits_costs_5_bits_an_index(name):
    model = _pruned_model(name, sparsity=0.92)
    layers = {n: m for n, m in model.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))}
    shared = {n: kmeans_quantize(m.weight, 5) for n, m in layers.items()}
    fixed = encode_shared(shared).fixed
    total_fillers = 0
    for n, layer in fixed.items():
        sw = shared[n]
        assert sw.num_clusters == 32, n  # every cluster in use: no spare index for a filler
        mask = sw.mask.numpy()
        _, _, is_filler = relative_gaps(mask, layer.gap_bits)
        entries = int(mask.sum()) + int(is_filler.sum())
        total_fillers += int(is_filler.sum())
        size = layer.size()
        assert size.n_entries == entries
        assert size.value_bits == 8 * math.ceil(5 * entries / 8), n  # 5 bits an entry, not 6
        assert size.sparse_index_bits == 8 * math.ceil(layer.gap_bits * entries / 8)
        np.testing.assert_array_equal(layer.decode(), sw.weight().numpy())
    assert total_fillers > 0  # the fillers were exercised, and they too cost 5 bits


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 6])
def test_full_codebooks_at_other_widths_take_bits_bits(bits):
    g = torch.Generator().manual_seed(bits)
    w = torch.randn(80, 100, generator=g)
    w[torch.rand(w.shape, generator=g) < 0.97] = 0  # long gaps: many fillers at 3-bit gaps
    sw = kmeans_quantize(w, bits)
    assert sw.num_clusters == 2**bits
    for huffman in (False, True):
        enc = encode_layer(sw, huffman=huffman, gap_bits=3)
        np.testing.assert_array_equal(enc.decode(), sw.weight().numpy())
    fixed = encode_layer(sw, huffman=False, gap_bits=3).size()
    _, _, is_filler = relative_gaps(sw.mask.numpy(), 3)
    assert is_filler.sum() > 100
    assert fixed.value_bits == 8 * math.ceil(bits * fixed.n_entries / 8)


def test_a_kept_weight_at_the_longest_gap_is_not_read_as_a_filler():
    w = torch.zeros(1, 64)
    w[0, [6, 13, 14, 45]] = torch.tensor([0.5, -0.25, 0.75, 1.0])  # gaps 7, 7, 1, 31 at 3-bit gaps
    sw = kmeans_quantize(w, 2)
    enc = encode_layer(sw, huffman=False, gap_bits=3)
    np.testing.assert_array_equal(enc.decode(), w.numpy())
    _, codes, is_filler = relative_gaps(sw.mask.numpy(), 3)
    assert codes[:3].tolist() == [6, 6, 0] and not is_filler[:3].any()
    assert is_filler.sum() == (31 - 1) // 7  # 4 fillers of 7 positions each bridge the gap of 31


def test_pruned_stage_note_names_the_index_widths_it_used():
    from kdviz.prune import size_report
    from kdviz.quant.pipeline import pruned_stage

    conv = _pruned_model("lenet5", sparsity=0.8)
    widths = {(layer.kind, layer.index_bits) for layer in size_report(conv).layers}
    assert widths == {("fc", 5), ("conv", 8)}
    assert "5-bit (fc) / 8-bit (conv) relative indices" in pruned_stage(conv, 0.9).note
    fc_only = pruned_stage(_pruned_model("lenet300", sparsity=0.8), 0.9).note
    assert "5-bit (fc) relative indices" in fc_only and "conv" not in fc_only
