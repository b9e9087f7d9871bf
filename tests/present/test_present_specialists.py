"""``kdviz.present.specialists``: the whole section 5 pipeline as real (tiny) runs on digits.

The generalist trains on all but a held-out slice; the covariance is recomputed here from its saved
checkpoint on exactly the images it did not see; each specialist starts from the generalist's folder
with its subset and the chosen enrichment; the result's accuracies are recomputed from the test set,
the checkpoints and the section 5.3 objective; bad settings are refused by name.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from kdviz.distill.specialists import (
    combine, confusable_subsets, kmeans_columns, split_large_clusters, without_diagonal,
)
from kdviz.engine import TrainConfig
from kdviz.engine.setup import dataset_for
from kdviz.engine.teacher_cache import load_trained_model
from kdviz.methods.specialist import specialist_probabilities
from kdviz.present.specialists import (
    GENERALIST, SpecialistsPlan, generalist_config, specialist_name, specialists_caption, specialists_experiment,
    specialists_figures, stage_lines,
)
from kdviz.present import as_run_view

from _support.run_files import metric_lines

MAX_CONCURRENT = 2
HELD_OUT = 250


@pytest.fixture(scope="module")
def finished(manager, tmp_path_factory):
    root = tmp_path_factory.mktemp("specialist-runs")
    base = TrainConfig(dataset="digits", model_options={"hidden": [16]}, epochs=12, lr=0.05, batch_size=32,
                       snapshot_every=0, runs_root=str(root), seed=1)
    plan = SpecialistsPlan(generalist_config(base, HELD_OUT), clusters=6, count=2, min_size=2, max_size=3,
                           enriched_fraction=0.7, epochs=3, lr=0.02, top_n=2)
    exp = specialists_experiment(plan, manager)
    exp.wait(240)
    return exp


def test_the_generalist_holds_out_images_for_the_covariance(finished):
    g = Path(finished.job(GENERALIST).path)
    config = json.loads((g / "config.json").read_text())
    assert config["train_subset"] == 1347 - HELD_OUT and config["method"] == "ce"
    analysis = finished.analysis()
    assert analysis.held_out and analysis.images == HELD_OUT
    # the images it did not train on: every training image but the balanced subset it drew
    everything = dataset_for(TrainConfig(dataset="digits"))
    seen = dataset_for(TrainConfig.load(g)).train_images.reshape(-1, 64).numpy()
    rows = {r.tobytes() for r in seen}
    unseen = torch.as_tensor(np.stack([r for r in everything.train_images.reshape(-1, 64).numpy() if r.tobytes() not in rows]))
    with torch.no_grad():
        probs = torch.softmax(load_trained_model(g).eval()(unseen.reshape(-1, 1, 8, 8)).double(), 1).numpy()
    np.testing.assert_allclose(analysis.covariance, np.cov(probs, rowvar=False, bias=True), atol=1e-12)
    runs = [kmeans_columns(without_diagonal(analysis.covariance), 6, seed=1 + r) for r in range(10)]
    clusters = min(runs, key=lambda c: c.inertia)
    assert analysis.clusters.inertia == pytest.approx(clusters.inertia)
    groups = split_large_clusters(without_diagonal(analysis.covariance), clusters.members(), 3, seed=1)
    assert list(analysis.groups) == groups and sorted(c for g in groups for c in g) == list(range(10))
    assert all(len(g) <= 3 for g in groups)
    assert list(analysis.subsets) == confusable_subsets(analysis.covariance, groups, 2, 3, 2)


def test_each_specialist_starts_from_the_generalist_with_its_subset(finished):
    subsets = finished.analysis().subsets
    assert subsets, "the clustering found no confusable subset: the test's settings need changing"
    g_path = str(finished.job(GENERALIST).path)
    for i, subset in enumerate(subsets):
        saved = json.loads((Path(finished.job(specialist_name(i)).path) / "config.json").read_text())
        assert saved["init_from"] == g_path and saved["epochs"] == 3 and saved["lr"] == 0.02
        assert saved["hooks"] == [{"name": "specialist", "classes": list(subset), "enriched_fraction": 0.7}]
    for i in range(len(subsets), 2):
        assert "none left for this specialist" in finished.blocked[specialist_name(i)]


def test_the_result_is_the_section_5_3_combination_on_the_test_set(finished):
    result = finished.result()
    g_path = finished.job(GENERALIST).path
    assert result.generalist_acc == pytest.approx(metric_lines(Path(g_path), "eval")[-1]["test_acc"], abs=1e-6)
    data = dataset_for(TrainConfig.load(g_path))
    with torch.no_grad():
        p_g = torch.softmax(load_trained_model(g_path).eval()(data.test_images).double(), 1)
    runs = [finished.job(specialist_name(i)).path for i in range(len(result.subsets))]
    p_ms = [torch.as_tensor(specialist_probabilities(load_trained_model(r), data.test_images, TrainConfig.load(r)))
            for r in runs]
    q = combine(p_g, p_ms, list(result.subsets), top_n=2).q
    labels = data.test_labels.numpy()
    assert result.combined_acc == pytest.approx((q.argmax(1).numpy() == labels).mean(), abs=1e-9)
    covered = sorted({c for s in result.subsets for c in s})
    inside = np.isin(labels, covered)
    assert result.covered_generalist_acc == pytest.approx((p_g.argmax(1).numpy() == labels)[inside].mean(), abs=1e-9)
    assert [r.label for r in result.covered] == covered
    assert result.total_params == result.generalist_params * (1 + len(runs)) and result.total_bytes == 4 * result.total_params


def test_figures_caption_and_stages_follow_the_result(finished):
    result = finished.result()
    views = {name: as_run_view(job, name) for name, job in finished.jobs.items()}
    for view in views.values():
        view.refresh()
    figures = specialists_figures(finished, views)
    bars = figures["gain"].data
    np.testing.assert_allclose(bars[1].y, [100 * r.combined for r in result.covered])
    heat = figures["subsets"].data[0]
    assert np.asarray(heat.z).shape == (10, 10)
    g_curve = next(t for t in figures["accuracy"].data if t.name == GENERALIST)
    assert g_curve.y[-1] == pytest.approx(100 * result.generalist_acc)
    caption = specialists_caption(finished)
    assert f"{100 * result.combined_acc:.1f} %" in caption and f"{result.total_params:,} " in caption
    names = [line[0] for line in stage_lines(finished)]
    assert names == [GENERALIST, "confusable subsets", "specialist 1", "specialist 2", "combination"]


def test_a_finished_generalist_is_reused_without_training_it_again(finished, manager):
    g_path = str(finished.job(GENERALIST).path)
    plan = replace(finished.plan, generalist_run=g_path, count=1, epochs=1)
    again = specialists_experiment(plan, manager)
    assert GENERALIST not in again.jobs and list(again.jobs) == [specialist_name(0)]
    again.wait(120)
    assert again.result().generalist_acc == pytest.approx(finished.result().generalist_acc)
    assert stage_lines(again)[0][2] == f"reused: {g_path}"


@pytest.mark.parametrize("change,message", [
    (dict(min_size=4, max_size=3), "min_size <= max_size"),
    (dict(enriched_fraction=1.5), "enriched_fraction"),
    (dict(count=0), "whole numbers >= 1"),
])
def test_bad_settings_are_refused_by_name(finished, manager, change, message):
    with pytest.raises(ValueError, match=message):
        specialists_experiment(replace(finished.plan, **change), manager)


def test_too_many_held_out_images_are_refused():
    with pytest.raises(ValueError, match=r"held_out must be a whole number of training images, 0..1346"):
        generalist_config(TrainConfig(dataset="digits"), 1347)


def test_a_stopped_pipeline_says_why_nothing_was_combined(finished, manager):
    plan = replace(finished.plan, generalist=replace(finished.plan.generalist, pace_s=30.0))
    exp = specialists_experiment(plan, manager)
    exp.stop()
    exp.wait(60)
    assert exp.result() is None and exp.analysis() is None
    assert "did not finish" in specialists_caption(exp)
    lines = {name: text for name, _, text in stage_lines(exp)}
    assert "stopped before it started" in lines["specialist 1"] and "no specialist finished" in lines["combination"]
