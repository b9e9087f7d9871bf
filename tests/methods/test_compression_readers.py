"""The pruning and k-means specs' typed readers and metric keys, on real runs: a hook used twice is
read under each of its labels (``which=0/1``), a run without the hook is refused by name, and the
values asked for (sparsity 0.37 and 0.81, 3 bits) are the ones the snapshots hold.

Expected values are counted here from the run's checkpoint (masks) and from the options given,
never read back through the code under test."""
from __future__ import annotations

import math

import numpy as np
import pytest

from kdviz.engine import TrainConfig, load_checkpoint, start
from kdviz.methods.prune import PRUNE, read_prune_arrays, read_prune_snapshot
from kdviz.methods.quantize import KMEANS
from kdviz.present.compression_charts import readings

from _support.jobs import finished_job

LAYERS = {"fc1": 64 * 32, "fc2": 32 * 16}
MAX_CONCURRENT = 1  # jobs the `manager` fixture (tests/conftest.py) runs at once


@pytest.fixture(scope="module")
def twice(tmp_path_factory, manager):
    """A finished run that prunes fc1 to 0.37 and fc2 to 0.81 with two uses of the pruning hook."""
    config = TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [32, 16]}, epochs=1, max_steps=6,
                         batch_size=32, eval_every=3, snapshot_every=3, runs_root=str(tmp_path_factory.mktemp("twice")),
                         hooks=[{"name": "prune", "sparsity": 0.37, "schedule": "one-shot", "layers": ["fc1"]},
                                {"name": "prune", "sparsity": 0.81, "schedule": "one-shot", "layers": ["fc2"]}])
    return finished_job(config, manager)


def test_a_hook_used_twice_is_read_under_each_label(twice):
    config, last = twice.config, twice.store.latest_snapshot()
    first, second = PRUNE.read_snapshot(last.arrays, config, which=0), PRUNE.read_snapshot(last.arrays, config, which=1)
    assert (first.label, second.label) == ("prune0", "prune1")
    assert first.layers == ["fc1"] and second.layers == ["fc2"]
    hooks = load_checkpoint(twice.path / "checkpoints" / "last.pt")["hooks"]
    for snap, label, layer, target in ((first, "prune0", "fc1", 0.37), (second, "prune1", "fc2", 0.81)):
        kept = hooks[label][f"mask/{layer}.weight"].double().mean().item()
        pruned = math.floor(target * LAYERS[layer] + 0.5) / LAYERS[layer]
        assert snap.sparsity[0] == pytest.approx(1 - kept) == pytest.approx(pruned)
        assert snap.target[0] == pytest.approx(target) and snap.weights[0] == LAYERS[layer]
        grid, block = snap.mask(layer)
        assert block == (1, 1) and grid.mean() == pytest.approx(100 * kept)
        assert snap.histogram(layer)[0].sum() == round(kept * LAYERS[layer])
    evals = twice.store.metrics("eval")
    assert [PRUNE.metric_key(config, "sparsity", w) for w in (0, 1)] == ["prune0/sparsity", "prune1/sparsity"]
    assert evals[-1][PRUNE.metric_key(config, "sparsity", 0)] == pytest.approx(first.sparsity[0])
    assert evals[-1][PRUNE.metric_key(config, "sparsity", 1)] == pytest.approx(second.sparsity[0])
    assert len(readings(PRUNE, twice.store.snapshots_since(0)[0], config, which=1)) >= 2
    with pytest.raises(ValueError, match=r"uses the 'prune' hook 2 time\(s\); asked for use 2"):
        PRUNE.read_snapshot(last.arrays, config, which=2)


def test_a_run_without_the_hook_is_refused_by_name(twice):
    plain = TrainConfig(dataset="digits", hooks=[{"name": "max_norm"}])
    last = twice.store.latest_snapshot()
    for call in (lambda: PRUNE.read_snapshot(last.arrays, plain), lambda: PRUNE.metric_key(plain, "sparsity"),
                 lambda: readings(PRUNE, [last], plain), lambda: KMEANS.read_snapshot(last.arrays, twice.config)):
        with pytest.raises(ValueError, match=r"this run has no '(prune|kmeans)' hook in its config \(hooks: \["):
            call()
    with pytest.raises(ValueError, match="no pruning arrays under 'prune/'"):
        read_prune_snapshot(last.arrays, "prune")


def test_unprefixed_arrays_read_like_a_snapshot():
    arrays = {"layers": np.array(["fc1"]), "sparsity": np.array([0.75]), "threshold": np.array([0.1]),
              "target": np.array([0.8]), "weights": np.array([8]), "mask/fc1": np.array([[0, 100, 0, 0]], np.uint8),
              "hist/fc1": np.array([1, 1]), "edges/fc1": np.array([-1.0, 0.0, 1.0])}
    snap = read_prune_arrays(arrays)
    assert snap.layers == ["fc1"] and snap.kept() == 2 and snap.overall_sparsity() == pytest.approx(0.75)
    assert snap.mask("fc1")[1] == (1, 1)
    with pytest.raises(ValueError, match=r"layer 'fc9' is not pruned in this run \(pruned: \['fc1'\]\)"):
        snap.mask("fc9")
    with pytest.raises(ValueError, match="no pruning arrays"):
        read_prune_arrays({"sparsity": np.array([0.5])})


def test_kmeans_bits_reach_the_hook_and_the_snapshot(tmp_path, manager):
    """3 bits (not the hook's default 5): the config entry, the snapshot's bits and at most 8 centroids."""
    from kdviz.methods.quantize import kmeans_hook

    entry = kmeans_hook(3)
    assert entry == {"name": "kmeans", "bits": 3, "init": "linear"}
    job = start(TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [32, 16]}, max_steps=2, batch_size=32,
                            snapshot_every=1, runs_root=str(tmp_path), hooks=[entry]), manager)
    assert job.wait(120).state == "finished", job.status()
    snap = KMEANS.read_snapshot(job.store.latest_snapshot().arrays, job.config)
    assert list(snap.bits) == [3] * len(snap.layers) and snap.layers == ["fc1", "fc2", "fc3"]
    assert all(snap.get("centroids", layer).size <= 2 ** 3 for layer in snap.layers)
    with pytest.raises(ValueError, match="bits must be in 1..16, got 0"):
        kmeans_hook(0)
