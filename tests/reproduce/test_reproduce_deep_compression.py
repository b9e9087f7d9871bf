"""Issue 15: ``deep-compression`` (Han, Mao, Dally 2016, LeNet-300-100 on MNIST) through the engine.

The plan shares ``han-pruning``'s baseline and prune configs and chains the k-means run to them; the
quick reproduction (1 seed, seed 3 not the default 0) runs end to end on real MNIST, and its values
are checked against the run folders: the errors against the runs' own evaluations, the weights kept
against the saved checkpoint's zeros, the bits per entry against the paper's 6 and 5, and the
compression rate against bounds computed here from the k-means checkpoint's indices and masks alone
(fixed-width storage from below, the entropy of the indices and gaps from above). Skipped without MNIST.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from _support.reproduce import HAS_MNIST, MNIST, run_quick
from _support.run_files import metric_lines
from kdviz.engine.run_folder import load_checkpoint
from kdviz.reproduce import REPRODUCTIONS
from kdviz.reproduce import deep_compression as dc
from kdviz.reproduce import han_pruning

LAYERS = {"fc1": 784 * 300, "fc2": 300 * 100, "fc3": 100 * 10}


def test_plan_shares_hans_baseline_and_prune_run_and_chains_the_kmeans_run():
    plan = REPRODUCTIONS.get("deep-compression").plan([3], quick=True)
    han = REPRODUCTIONS.get("han-pruning").plan([3], quick=True)
    assert [run.key for run in plan] == ["baseline/seed3", "pruned/seed3", "compressed/seed3"]
    baseline, pruned, compressed = plan
    assert baseline.reuse and baseline.config == han[0].config  # one baseline trained for both reproductions
    assert pruned.config == han[1].config and (pruned.after, pruned.link) == (baseline.key, "init_from")
    assert (compressed.after, compressed.link) == (pruned.key, "init_from")
    assert pruned.rows == (dc.KEPT_ROW,) and compressed.rows == dc.MEASURED_ROWS
    hook = compressed.config.hooks[0]
    assert (hook["bits"], hook["layers"], hook["seed"]) == (6, ["fc1", "fc2", "fc3"], 3)
    assert compressed.config.lr == pytest.approx(1e-5) and compressed.config.seed == 3  # the MNIST preset
    assert compressed.config.max_steps == dc.QUICK_FINETUNE_STEPS
    assert dc.plan_runs([3])[2].config.max_steps == 3 * 469  # full mode: 3 epochs of 128-image batches


def _entropy_bits(symbols: np.ndarray) -> float:
    """len * H(symbols): no prefix code writes these symbols in fewer bits."""
    _, counts = np.unique(symbols, return_counts=True)
    return float(-(counts * np.log2(counts / counts.sum())).sum())


def rate_bounds(quantize_run: Path, gap_bits: int = 5, bits: int = 6) -> tuple[float, float]:
    """(lowest, highest) possible compression rate of the k-means run's layers, from its checkpoint:
    Han's relative indices with fillers every 2^b - 1 positions (kdviz.quant.size's convention),
    fixed-width codes plus up to 8 kbit of code tables per layer; the entropy of indices and gaps."""
    hook = load_checkpoint(quantize_run)["hooks"]["kmeans"]
    weights, most, least = 0, 0.0, 0.0
    for layer in LAYERS:
        mask = hook[f"{layer}.mask"].bool().flatten().numpy()
        indices = hook[f"{layer}.indices"].long().flatten().numpy()[mask]
        gaps = np.diff(np.flatnonzero(mask), prepend=-1)
        fillers = (gaps - 1) // (2 ** gap_bits - 1)
        entries = mask.sum() + fillers.sum()
        codebook = 32 * hook[f"{layer}.centroids"].numel()
        weights += mask.size
        most += entries * (bits + gap_bits) + codebook + 8192
        codes = np.concatenate([np.full(int(fillers.sum()), 2 ** gap_bits - 1), gaps - 1 - fillers * (2 ** gap_bits - 1)])
        least += _entropy_bits(indices) + _entropy_bits(codes) + codebook
    return 32 * weights / most, 32 * weights / least


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.skipif(not HAS_MNIST, reason=f"no MNIST IDX files in {MNIST}")
def test_quick_deep_compression_measures_its_run_folders(tmp_path):
    result = run_quick("deep-compression", [3], tmp_path)
    assert result.state == "finished", result.runs
    assert [(row.label, row.paper) for row in result.rows] == [
        (dc.BASELINE_ROW, 1.64), (dc.COMPRESSED_ROW, 1.58), (dc.RATE_ROW, 40), (dc.KEPT_ROW, 8),
        (dc.WEIGHT_BITS_ROW, 6), (dc.INDEX_BITS_ROW, 5)]
    assert all(row.seeds == [3] and len(row.values) == 1 for row in result.rows)
    value = {row.label: row.values[0] for row in result.rows}
    run = {key.split("/")[0]: Path(info["path"]) for key, info in result.runs.items()}
    for row, key in ((dc.BASELINE_ROW, "baseline"), (dc.COMPRESSED_ROW, "compressed")):
        # the compressed error is the model decoded from the Huffman bytes: the k-means run's own last evaluation
        assert value[row] == pytest.approx(100 * (1 - metric_lines(run[key], "eval")[-1]["test_acc"]), abs=0.011)
        assert 0.5 < value[row] < 10  # trained, not chance (90 %)
    state = load_checkpoint(run["pruned"])["model"]
    nonzero = sum(int((state[f"{layer}.weight"] != 0).sum()) for layer in LAYERS)
    assert value[dc.KEPT_ROW] == pytest.approx(100 * nonzero / sum(LAYERS.values()))
    expected_kept = 100 * sum(n * (1 - han_pruning.SPARSITY[layer]) for layer, n in LAYERS.items()) / sum(LAYERS.values())
    assert value[dc.KEPT_ROW] == pytest.approx(expected_kept, abs=0.05)
    assert 6 <= value[dc.WEIGHT_BITS_ROW] < 6.01 and 5 <= value[dc.INDEX_BITS_ROW] < 5.01  # whole bytes round up
    lowest, highest = rate_bounds(run["compressed"])
    assert lowest <= value[dc.RATE_ROW] <= highest
    assert value[dc.RATE_ROW] > 30  # 8 % of the weights at ~4 + ~4 Huffman bits each, against 32
