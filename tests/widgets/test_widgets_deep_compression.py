"""``DeepCompressionMonitor`` without a browser: the running stage drawn live, its replay once the
experiment has ended, and the collapse warning. Expected values are read from the stage runs'
snapshot arrays and report stages, never from the widget's own drawing code."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from kdviz.engine import TrainConfig, start
from kdviz.methods.deep_compression import PRUNE_STAGE, QUANTIZE_STAGE, deep_compression_experiment, preset
from kdviz.widgets.deep_compression import DeepCompressionMonitor

from _support.jobs import job_manager

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def manager():
    with job_manager(2) as m:
        yield m


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, manager):
    base = start(TrainConfig(dataset="digits", model="lenet300", epochs=2, name="base",
                             runs_root=str(tmp_path_factory.mktemp("dc-runs"))), manager)
    assert base.wait(60).state == "finished"
    return base


def monitor_of(baseline, manager, **options) -> DeepCompressionMonitor:
    return DeepCompressionMonitor(deep_compression_experiment(baseline.path, preset("digits", **options), manager),
                                  interval_ms=100)


def test_the_running_pruning_stage_is_drawn_live(baseline, manager):
    monitor = monitor_of(baseline, manager, hidden_sparsity=0.7, round_epochs=200.0)
    end = time.monotonic() + 60
    while not monitor.stage_caption.value.startswith("Now: stage 1 of 2"):
        assert time.monotonic() < end, monitor.stage_caption.value
        time.sleep(0.1)
    bars = monitor.stage_chart.widget.data[0]
    assert list(bars.x) == ["fc1", "fc2", "fc3"] and monitor.layer.layout.display == "none"
    assert "pruning + retraining" in monitor.stage_caption.value
    assert monitor.replay.layout.display == "none"  # no replay while it trains
    monitor.stop_button.click()
    monitor.wait(30)
    monitor.close()


def test_a_finished_experiment_replays_both_stages(baseline, manager):
    monitor = monitor_of(baseline, manager, hidden_sparsity=0.8, output_sparsity=0.6, bits=3, prune_rounds=2,
                         round_epochs=1.0, retrain_epochs=1.0, finetune_epochs=1.0)
    monitor.wait(60)
    assert monitor.view.state == "finished"
    replay = monitor.replay
    stages = [s.stage for s in replay.snapshots]
    assert replay.layout.display == "flex" and stages[0] == PRUNE_STAGE and stages[-1] == QUANTIZE_STAGE
    last = replay.snapshots[-1].snapshot  # the bar sits at the end: the k-means stage's last codebook
    assert monitor.layer.value == "fc1" and monitor.layer.layout.display == "flex"
    drawn = np.concatenate([np.asarray(t.x, dtype=float) for t in monitor.stage_chart.widget.data[1:]])
    assert all(np.isclose(drawn, c).any() for c in np.asarray(last.arrays["kmeans/centroids/fc1"], dtype=float))
    assert replay.where.value.startswith("k-means + centroid fine-tuning")

    replay.scrubber.value = 0  # back to the first pruning snapshot: sparsity bars and the caption follow
    replay.flush()
    first = replay.snapshots[0].snapshot
    bars = monitor.stage_chart.widget.data[0]
    assert np.allclose(np.asarray(bars.y, dtype=float), 100 * np.asarray(first.arrays["prune/sparsity"], dtype=float))
    assert monitor.stage_caption.value.startswith("Shown: stage 1 of 2") and monitor.layer.layout.display == "none"
    assert replay.where.value.startswith(f"pruning + retraining · epoch {first.epoch:.1f}")
    report = monitor.view.report()
    dense, final = report.stages[0], report.stages[-1]
    collapsed = final.error > 2 * dense.error and final.error - dense.error >= 0.05
    assert not collapsed and monitor.warning.value == ""
    assert not monitor.errors.outputs
    monitor.close()


def test_a_collapse_shows_a_warning_naming_the_stage(baseline, manager):
    monitor = monitor_of(baseline, manager, hidden_sparsity=0.99, output_sparsity=0.95, prune_rounds=1,
                         round_epochs=0.0, retrain_epochs=0.1, prune_lr=1e-4, finetune_epochs=0.1)
    monitor.wait(60)
    final = monitor.view.report().stages[-1]
    text = monitor.warning.value
    assert f"{100 * final.error:.0f} % error" in text and "accuracy collapsed in the pruning stage" in text
    assert "Try less sparsity" in text and "fc1 99%" in text
    monitor.close()
