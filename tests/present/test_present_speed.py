"""The "Speed on this CPU" report of a real k-means run: the run is measurable (its checkpoint's effective
weights load), and the report gains a true ``codebook`` row: the run's own shared weights as b-bit indices
and a codebook, run as dense float32 after decoding, with the caption saying it saves bytes, not time.

Expected values are recomputed here from the loaded weights (``torch.unique``), never read back from
the code under test. No timing is asserted beyond every form having been timed."""
from __future__ import annotations

import math

import pytest
import torch

from kdviz.engine import TrainConfig, load_trained_model
from kdviz.present.compression_configs import kmeans_fine_tune_config
from kdviz.present.speed import speed_report, unmeasurable_reason

from _support.jobs import finished_job

BITS = 3


@pytest.fixture(scope="module")
def runs(manager, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("speed-runs"))
    base = finished_job(TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [48, 24]}, max_steps=40,
                                    batch_size=32, lr=0.1, runs_root=root, name="base"), manager)
    kmeans = finished_job(kmeans_fine_tune_config(base, BITS, max_steps=8, runs_root=root, name="kmeans"), manager)
    return base, kmeans


def test_a_kmeans_run_is_measured_with_its_codebook_row(runs, one_thread):
    _, kmeans = runs
    assert unmeasurable_reason(kmeans) is None  # the picker offers it
    report = speed_report(kmeans, runs=4, warmup=1, batches=(1, 32))
    names = [f.name for f in report.report.forms]
    assert names[-1] == "codebook" and names[:3] == ["dense", "shrunk", "sparse"]
    model = load_trained_model(kmeans.path)
    expected = 0
    for name, tensor in model.state_dict().items():
        if name.endswith(".weight"):
            distinct = torch.unique(tensor).numel()
            assert distinct <= 2 ** BITS  # the run really shares its weights
            expected += math.ceil(tensor.numel() * max(1, math.ceil(math.log2(distinct))) / 8) + 4 * distinct
        else:
            expected += 4 * tensor.numel()
    book = report.report.form("codebook")
    assert book.model_bytes == expected < report.report.form("dense").model_bytes / 4
    assert book.agreement == 1.0 and book.max_logit_diff == 0.0  # decoding gives the very weights back
    assert all(t.runs == 4 and t.median_ms > 0 for t in book.timings.values())
    row = next(r for r in report.rows() if r["form"] == "codebook")
    assert "decoded to dense float32" in row["what"] and f"fc1 {BITS}" in row["what"]
    caption = report.caption()
    assert "codebook stores" in caption and "saves bytes, not time" in caption


def test_a_float_run_has_no_codebook_row(runs, one_thread):
    base, _ = runs
    report = speed_report(base, runs=3, warmup=0, batches=(1,))
    assert [f.name for f in report.report.forms] == ["dense", "shrunk", "sparse", "int8", "int8 static"]
    assert "codebook" not in report.caption()
