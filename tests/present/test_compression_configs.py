"""Fine-tuning configs built from a finished baseline: the values asked for (sparsity 0.37 and 0.81,
a global scope, 3 bits, density init; none of them the defaults) reach the hook entry and the run's
snapshots, the cadence follows the dataset's size, and bad input is refused with a message."""
from __future__ import annotations

import math

import pytest

from kdviz.data import load_dataset
from kdviz.engine import TrainConfig
from kdviz.methods.prune import PRUNE
from kdviz.methods.quantize import KMEANS
from kdviz.present.compression_configs import (
    KMEANS_FINE_TUNE_LR, PRUNE_FINE_TUNE_LR, fine_tune_config, kmeans_fine_tune_config, prune_fine_tune_config,
)

from _support.jobs import finished_job

MAX_CONCURRENT = 1  # jobs the `manager` fixture (tests/conftest.py) runs at once


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, manager):
    config = TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [32, 16]}, epochs=1, max_steps=4,
                         batch_size=32, runs_root=str(tmp_path_factory.mktemp("baseline")), name="baseline-mlp")
    return finished_job(config, manager)


def test_prune_config_carries_the_sparsity_scope_and_cadence(baseline):
    config = prune_fine_tune_config(baseline, 0.81, scope="global", epochs=3)
    assert config.hooks == [{"name": "prune", "sparsity": 0.81, "scope": "global", "schedule": "agp"}]
    assert config.init_from == str(baseline.path) and config.lr == PRUNE_FINE_TUNE_LR and config.epochs == 3
    assert (config.model, config.model_options, config.batch_size) == ("mlp", {"hidden": [32, 16]}, 32)
    steps = 3 * math.ceil(len(load_dataset("digits").train_labels) / 32)
    assert (config.eval_every, config.snapshot_every) == (steps // 20, steps // 40)
    assert config.max_steps is None and config.runs_root == baseline.config.runs_root
    assert config.name == "pruned-mlp-digits" and PRUNE.run_label(config) == "pruned to 81%"


@pytest.mark.parametrize("sparsity", [0.37, 0.81])
def test_the_sparsity_asked_for_is_the_snapshot_target(baseline, manager, sparsity):
    config = prune_fine_tune_config(baseline, sparsity, schedule="one-shot", epochs=1, max_steps=2, snapshots=100)
    job = finished_job(config, manager)
    snap = PRUNE.read_snapshot(job.store.latest_snapshot().arrays, job.config)
    assert snap.target == pytest.approx([sparsity] * 3)
    sizes = [64 * 32, 32 * 16, 16 * 10]
    assert snap.sparsity == pytest.approx([math.floor(sparsity * n + 0.5) / n for n in sizes])


def test_the_bits_asked_for_reach_the_hook_and_the_snapshot(baseline, manager):
    config = kmeans_fine_tune_config(baseline, 3, init="density", epochs=1, max_steps=2, snapshots=100)
    assert config.hooks == [{"name": "kmeans", "bits": 3, "init": "density"}] and config.lr == KMEANS_FINE_TUNE_LR
    job = finished_job(config, manager)
    snap = KMEANS.read_snapshot(job.store.latest_snapshot().arrays, job.config)
    assert list(snap.bits) == [3, 3, 3] and KMEANS.run_label(job.config) == "k-means 3 bits"
    assert all(snap.get("centroids", layer).size <= 8 for layer in snap.layers)


def test_bad_input_is_refused_with_a_message(baseline, tmp_path):
    with pytest.raises(ValueError, match=r"sparsity must be in \[0, 1\)"):
        prune_fine_tune_config(baseline, 1.0)
    with pytest.raises(ValueError, match=r"No pruning scope 'everything' registered \(known: global, layer\)"):
        prune_fine_tune_config(baseline, 0.5, scope="everything")
    with pytest.raises(ValueError, match="bits must be in 1..16, got 17"):
        kmeans_fine_tune_config(baseline, 17)
    with pytest.raises(ValueError, match="epochs must be a positive whole number, got 0"):
        prune_fine_tune_config(baseline, 0.5, epochs=0)
    with pytest.raises(ValueError, match="learning rate must be a positive number"):
        fine_tune_config(baseline, {"name": "max_norm"}, epochs=1, lr=-1.0)
    with pytest.raises(ValueError, match="not a run folder|does not exist"):
        prune_fine_tune_config(tmp_path, 0.5)
