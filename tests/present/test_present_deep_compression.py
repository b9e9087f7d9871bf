"""``DeepCompressionView`` and the table rows both UIs show, on a real (tiny) finished experiment and a
stopped one. Expected rows are recomputed here from the report's stages and the run checkpoints."""
from __future__ import annotations

import time

import pytest

from kdviz.engine import TrainConfig, load_checkpoint
from kdviz.engine.experiment import Experiment
from kdviz.methods.deep_compression import PRUNE_STAGE, QUANTIZE_STAGE, deep_compression_experiment, preset
from kdviz.present.deep_compression import (
    DeepCompressionView, cached_report, codebook_data, layer_rows, stage_rows, waterfall_stages,
)

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
