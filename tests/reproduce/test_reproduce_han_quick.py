"""Issue 15: ``han-pruning`` (Han et al. 2015, LeNet-300-100) end to end in quick mode on real MNIST,
2 seeds (not the default 3): a baseline per seed, a prune-and-retrain fine-tune from it, the weights
kept equal to Han's per-layer targets counted on the saved checkpoint, errors read from the run files.
Skipped when the MNIST files are absent."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from _support.run_files import metric_lines
from kdviz.engine import JobManager
from kdviz.engine.run_folder import load_checkpoint
from kdviz.reproduce import REPRODUCTIONS, run_reproduction
from kdviz.reproduce.han_pruning import BASELINE_ROW, KEPT_ROW, PRUNED_ROW, SPARSITY

MNIST = Path(os.environ.get("KDVIZ_DATA") or "/work/shared/data/mnist")
LAYER_SIZES = {"fc1": 784 * 300, "fc2": 300 * 100, "fc3": 100 * 10}  # LeNet-300-100's weight matrices

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.skipif(not (MNIST / "train-images-idx3-ubyte.gz").is_file() and not (MNIST / "train-images-idx3-ubyte").is_file(),
                       reason=f"no MNIST IDX files in {MNIST}"),
]


def test_han_plan_prunes_from_each_seeds_baseline():
    plan = REPRODUCTIONS.get("han-pruning").plan([4, 9], quick=True)
    assert [(run.key, run.seed, run.config.seed) for run in plan] == [
        ("baseline/seed4", 4, 4), ("pruned/seed4", 4, 4), ("baseline/seed9", 9, 9), ("pruned/seed9", 9, 9)]
    for baseline, pruned in (plan[:2], plan[2:]):
        assert baseline.reuse and not baseline.config.hooks and pruned.after == baseline.key and pruned.link == "init_from"
        assert pruned.rows == (PRUNED_ROW, KEPT_ROW) and pruned.config.hooks[0]["sparsity"] == SPARSITY
        assert pruned.config.lr == pytest.approx(baseline.config.lr / 10)


def test_quick_han_pruning_keeps_hans_share_of_weights(tmp_path):
    manager = JobManager(max_concurrent=2, cpu_threads=2)
    try:
        result = run_reproduction("han-pruning", seeds=2, quick=True, runs_root=tmp_path, data_root=MNIST, manager=manager)
    finally:
        manager.stop_all(wait=True, timeout=30)
    assert result.state == "finished", result.runs
    assert [row.label for row in result.rows] == [BASELINE_ROW, PRUNED_ROW, KEPT_ROW]
    expected_kept = 100 * sum(n * (1 - SPARSITY[layer]) for layer, n in LAYER_SIZES.items()) / sum(LAYER_SIZES.values())
    for row in result.rows:
        assert row.seeds == [0, 1] and len(row.runs) == 2
        for run, value in zip(row.runs, row.values):
            if row.label == KEPT_ROW:
                state = load_checkpoint(Path(run))["model"]
                weights = [t for name, t in state.items() if name.endswith("weight")]
                assert sum(t.numel() for t in weights) == sum(LAYER_SIZES.values())
                assert value == pytest.approx(100 * sum(int((t != 0).sum()) for t in weights) / sum(LAYER_SIZES.values()))
                assert value == pytest.approx(expected_kept, abs=0.05)  # 8.18 %: Han's fc1 8 %, fc2 9 %, fc3 26 %
            else:
                assert value == pytest.approx(100 * (1 - metric_lines(Path(run), "eval")[-1]["test_acc"]))
                assert 0.5 < value < 10  # a trained LeNet-300-100, not chance (90 %)
    pruned_runs = result.row(PRUNED_ROW).runs
    assert [Path(result.runs[f"baseline/seed{s}"]["path"]) for s in (0, 1)] == [Path(r) for r in result.row(BASELINE_ROW).runs]
    for seed, run in zip((0, 1), pruned_runs):
        init_from = (Path(run) / "config.json").read_text()
        assert result.runs[f"baseline/seed{seed}"]["path"] in init_from
