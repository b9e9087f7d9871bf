"""``DeepCompressionView`` and the table rows both UIs show, on a real (tiny) finished experiment and a
stopped one. Expected rows are recomputed here from the report's stages and the run checkpoints."""
from __future__ import annotations

import time

import pytest

from kdviz.engine import TrainConfig, load_checkpoint
from kdviz.engine.experiment import Experiment
from kdviz.methods.deep_compression import PRUNE_STAGE, QUANTIZE_STAGE, deep_compression_experiment, preset
from kdviz.methods.deep_compression_report import CompressionReport
from kdviz.present.deep_compression import (
    COLLAPSE_ERROR_FACTOR, COLLAPSE_MIN_POINTS, DeepCompressionView, cached_report, codebook_data, collapse_warning,
    layer_rows, live_stage, pipeline_snapshots, replay_label, stage_drawer, stage_live, stage_rows, waterfall_stages,
)
from kdviz.quant.pipeline import Stage

from _support.jobs import finished_job

OPTIONS = dict(hidden_sparsity=0.8, output_sparsity=0.6, bits=2, prune_rounds=1, round_epochs=1.0,
               retrain_epochs=1.0, finetune_epochs=1.0)
MAX_CONCURRENT = 1  # jobs the `manager` fixture (tests/conftest.py) runs at once


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, manager):
    config = TrainConfig(dataset="digits", model="lenet300", epochs=2, runs_root=str(tmp_path_factory.mktemp("runs")),
                         name="baseline")
    return finished_job(config, manager, timeout=60)


@pytest.fixture(scope="module")
def finished(baseline, manager):
    view = DeepCompressionView(deep_compression_experiment(baseline.path, preset("digits", **OPTIONS), manager))
    early = view.report()  # nothing measured before pruning has finished
    view.experiment.wait(60)
    return view, early


def test_a_finished_experiment_reads_as_four_stages(finished):
    view, early = finished
    assert early is None
    views = view.refresh()
    assert [v.label for v in views] == [view.label(n) for n in view.names] and all(v.evals for v in views)
    assert [v.role for v in views] == ["pruned fine-tune", "k-means fine-tune"]
    assert view.state == "finished" and view.progress == 1.0 and view.done
    assert all(s.state == "finished" for s in view.statuses())
    report = view.report()
    assert report is view.report() is cached_report(view.experiment.job(PRUNE_STAGE).path,
                                                      view.experiment.job(QUANTIZE_STAGE).path)
    rows = stage_rows(report)
    dense = report.stages[0]
    for row, stage in zip(rows, report.stages):
        assert row["size (KB)"] == stage.nbytes / 1e3 and row["ratio (x)"] == pytest.approx(dense.nbytes / stage.nbytes)
        assert row["error change (points)"] == pytest.approx(100 * (dense.accuracy - stage.accuracy))
    assert [r["stage"] for r in rows] == ["dense", "pruned", "2-bit k-means", "Huffman"]
    assert waterfall_stages(report) == [(s.name, s.nbytes) for s in report.stages]


def test_layer_rows_and_codebooks_match_the_checkpoints(finished):
    view, _ = finished
    report = view.report()
    pruned = load_checkpoint(view.experiment.job(PRUNE_STAGE).path)["model"]
    for row in layer_rows(report):
        w = pruned[f"{row['layer']}.weight"].numpy()
        assert row["weights"] == w.size and row["kept %"] == pytest.approx(100 * (w != 0).mean())
        assert row["ratio (x)"] == pytest.approx(32 * w.size / (row["index bits"] + row["gap bits"]
                                                                + row["codebook + table bits"]))
    data = codebook_data(report, "fc2")
    kept = pruned["fc2.weight"].numpy()
    assert data["hist_counts"].sum() == (kept != 0).sum() and len(data["centroids"]) == len(data["centroids_initial"]) <= 4
    with pytest.raises(ValueError, match="layer 'fc9' has no codebook"):
        codebook_data(report, "fc9")


def test_a_stopped_experiment_says_the_next_stage_was_cancelled(baseline, manager):
    view = DeepCompressionView(deep_compression_experiment(baseline.path, preset("digits", round_epochs=100.0), manager))
    end = time.monotonic() + 60
    while view.experiment.job(PRUNE_STAGE).status().step < 2:
        assert time.monotonic() < end
        time.sleep(0.02)
    assert view.state == "running" and view.statuses()[1].state == "waiting" and 0 < view.progress < 0.5
    view.refresh()
    end = time.monotonic() + 30
    while not view.views[PRUNE_STAGE].snapshots:  # the live chart waits for the pruning stage's first snapshot
        assert time.monotonic() < end
        time.sleep(0.05)
        view.refresh()
    live = stage_live(view)
    assert live_stage(view) == PRUNE_STAGE and live.running and live.caption.startswith("Now: stage 1 of 2")
    assert live.layer is None and set(live.figures) == {"progress", "accuracy"}
    view.stop()
    view.experiment.wait(30)
    first, second = view.statuses()
    assert view.state == "stopped" and first.state == "stopped" and second.state == "cancelled"
    assert "stopped before it started" in second.detail and view.report() is None


def test_only_a_deep_compression_experiment_is_accepted():
    with pytest.raises(TypeError, match="deep_compression_experiment"):
        DeepCompressionView(object())
    with pytest.raises(ValueError, match="has no stages"):
        DeepCompressionView(Experiment(title="empty"))


def snapshot_array(snapshot, key):
    import numpy as np

    return np.asarray(snapshot.arrays[key], dtype=float)


def test_stage_live_draws_each_stage_from_its_own_snapshots(finished):
    import numpy as np

    view, _ = finished
    views = view.refresh()
    prune_run, quant_run = views
    shown = pipeline_snapshots(view)
    stages = [s.stage for s in shown]
    assert stages == sorted(stages, key=[PRUNE_STAGE, QUANTIZE_STAGE].index)  # pruning first, then k-means
    assert stages.count(PRUNE_STAGE) >= 2 and stages.count(QUANTIZE_STAGE) >= 2
    assert live_stage(view) == QUANTIZE_STAGE  # the last stage started
    last_prune = [s for s in shown if s.stage == PRUNE_STAGE][-1]
    live = stage_live(view, last_prune)
    assert live.stage == PRUNE_STAGE and not live.running and live.layer is None
    # the bars are the pruned checkpoint's zeros at the end of the run: 80% / 80% / 60%
    state = load_checkpoint(view.experiment.job(PRUNE_STAGE).path)["model"]
    zeros = [100 * float((state[f"{n}.weight"] == 0).float().mean()) for n in ("fc1", "fc2", "fc3")]
    bars = live.figures["progress"].data[0]
    assert list(bars.x) == ["fc1", "fc2", "fc3"] and np.allclose(np.asarray(bars.y, dtype=float), zeros, atol=0.01)
    assert np.allclose(zeros, [80, 80, 60], atol=0.5)
    assert "stage 1 of 2, pruning + retraining" in live.caption and "fc3 60%" in live.caption
    curve = live.figures["accuracy"].data[0]
    assert np.allclose(np.asarray(curve.y, dtype=float), [100 * r["test_acc"] for r in prune_run.evals])
    dense = 100 * view.report().stages[0].accuracy  # the dotted line: the dense baseline it started from
    assert any(abs(shape.y0 - dense) < 1e-6 for shape in live.figures["accuracy"].layout.shapes)

    live = stage_live(view, layer="fc2")  # the latest k-means snapshot, its fc2 codebook
    snap = live.shown.snapshot
    assert live.stage == QUANTIZE_STAGE and live.layer == "fc2" and live.layers == ["fc1", "fc2", "fc3"]
    drawn = np.concatenate([np.asarray(t.x, dtype=float) for t in live.figures["progress"].data[1:]])
    centroids = snapshot_array(snap, "kmeans/centroids/fc2")
    assert all(np.isclose(drawn, c).any() for c in centroids)
    assert np.allclose(np.asarray(live.figures["accuracy"].data[0].y, dtype=float),
                       [100 * r["test_acc"] for r in quant_run.evals])
    assert replay_label(live.shown) == f"k-means + centroid fine-tuning · epoch {snap.epoch:.1f} · step {snap.step}"
    draw = stage_drawer(view, PRUNE_STAGE)
    assert np.array_equal(draw(last_prune.snapshot).data[0].y, bars.y) and draw(snap) is None  # no pruning arrays in k-means'


def stages(*errors: float, before: float | None = None) -> CompressionReport:
    names, sizes = ["dense", "pruned", "2-bit k-means", "Huffman"], [1000.0, 120.0, 20.0, 7.6]
    report = CompressionReport([Stage(n, b, 1.0 - e) for n, b, e in zip(names, sizes, errors)])
    report.sparsity, report.accuracy_before_finetune = {"fc1": 0.97, "fc3": 0.9}, before
    return report


def test_collapse_warning_thresholds_and_the_stage_that_lost_it():
    assert collapse_warning(None) is None and collapse_warning(stages(0.03)) is None
    assert COLLAPSE_ERROR_FACTOR == 2.0 and COLLAPSE_MIN_POINTS == 5.0
    assert collapse_warning(stages(0.05, 0.06, 0.099, 0.099)) is None  # error doubled, but 4.9 points only
    assert collapse_warning(stages(0.10, 0.12, 0.20, 0.20)) is None  # 10 points, but not more than doubled
    warning = collapse_warning(stages(0.021, 0.03, 0.64, 0.64, before=0.36))
    assert warning.message.startswith("132x smaller, but 64 % error (dense: 2.1 %)")
    assert warning.stage == "quantization" and abs(warning.lost_points - 61.0) < 1e-9
    assert "more bits per shared value" in warning.advice  # k-means itself lost it, not the fine-tuning
    warning = collapse_warning(stages(0.021, 0.03, 0.64, 0.64, before=0.95))
    assert "fine-tuning the shared values lost it" in warning.advice and "lower centroid learning rate" in warning.advice
    warning = collapse_warning(stages(0.021, 0.50, 0.55, 0.55))
    assert warning.stage == "pruning" and "less sparsity (pruned now: fc1 97%, fc3 90%)" in warning.advice
    early = collapse_warning(stages(0.021, 0.50))  # only the pruning stage measured yet
    assert early.stage == "pruning" and early.message.startswith("8.3x smaller, but 50 % error")


@pytest.mark.parametrize("options, stage", [
    (dict(hidden_sparsity=0.99, output_sparsity=0.95, prune_rounds=1, round_epochs=0.0, retrain_epochs=0.1,
          prune_lr=1e-4, finetune_epochs=0.1), "pruning"),
    (dict(hidden_sparsity=0.5, output_sparsity=0.3, bits=2, prune_rounds=1, round_epochs=0.0, retrain_epochs=0.5,
          finetune_epochs=0.5, finetune_lr=1.0), "quantization"),
])
def test_a_real_collapse_is_blamed_on_the_stage_that_lost_it(baseline, manager, finished, options, stage):
    view = DeepCompressionView(deep_compression_experiment(baseline.path, preset("digits", **options), manager))
    view.experiment.wait(60)
    report = view.report()
    dense, pruned, last = report.stages[0], report.stages[1], report.stages[-1]
    assert last.error > 2 * dense.error and last.error - dense.error >= 0.05
    warning = collapse_warning(report)
    assert warning is not None and warning.stage == stage, [(s.name, s.accuracy) for s in report.stages]
    assert f"{dense.nbytes / last.nbytes:.0f}x smaller, but {100 * last.error:.0f} % error" in warning.message
    lost = pruned.error - dense.error if stage == "pruning" else last.error - pruned.error
    assert abs(warning.lost_points - 100 * lost) < 1e-9
    healthy = finished[0].report()  # 80% / 60% sparsity, 2 bits, retrained: no warning unless it collapsed
    h_dense, h_last = healthy.stages[0], healthy.stages[-1]
    collapsed = h_last.error > 2 * h_dense.error and h_last.error - h_dense.error >= 0.05
    assert not collapsed and collapse_warning(healthy) is None
