"""``kdviz.app.dc_live`` through AppTest, on real (tiny) Deep Compression experiments: the running
pruning stage drawn live, a finished experiment's stages replayed, and the collapse warning.
Expected values come from the stage runs' snapshot arrays and the report's stages."""
from __future__ import annotations

import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from kdviz.engine import TrainConfig
from kdviz.methods.deep_compression import PRUNE_STAGE, QUANTIZE_STAGE, deep_compression_experiment, preset
from kdviz.present.deep_compression import DeepCompressionView

from _support.apptest import charts, ok, ok_without_errors, texts, values
from _support.jobs import finished_job, job_manager

VIEW_KEY = "dc_live_test_view"
PAGE = f'''
import streamlit as st
from kdviz.app.dc_live import show_collapse_warning, show_stage_live
view = st.session_state["{VIEW_KEY}"]
view.refresh()
show_stage_live(view)
show_collapse_warning(view)
'''


@pytest.fixture(scope="module")
def manager():
    with job_manager(2) as m:
        yield m


@pytest.fixture(scope="module")
def baseline(lab_env, manager):
    return finished_job(TrainConfig(dataset="digits", model="lenet300", epochs=2, runs_root=str(lab_env), name="base"),
                        manager, timeout=60)


def page(baseline, manager, **options) -> tuple[AppTest, DeepCompressionView]:
    view = DeepCompressionView(deep_compression_experiment(baseline.path, preset("digits", **options), manager))
    at = AppTest.from_string(PAGE, default_timeout=60)
    at.session_state[VIEW_KEY] = view
    return at, view


def test_the_running_pruning_stage_is_drawn_live(baseline, manager):
    at, view = page(baseline, manager, hidden_sparsity=0.7, round_epochs=200.0)
    try:
        end = time.monotonic() + 60
        while "Now: stage 1 of 2" not in texts(ok(at.run())):
            assert time.monotonic() < end, texts(at)
            time.sleep(0.2)
        shown = charts(at)
        bars = shown["dc-live-progress"]["data"][0]
        assert bars["x"] == ["fc1", "fc2", "fc3"] and "frames" not in shown["dc-live-progress"]
        snapshots = view.views[PRUNE_STAGE].snapshots  # the bars are one of the pruning run's snapshots
        assert any(np.allclose(values(bars["y"]), 100 * np.asarray(s.arrays["prune/sparsity"], dtype=float))
                   for s in snapshots)
        curve = values(shown["dc-live-accuracy"]["data"][0]["y"])
        evals = [100 * r["test_acc"] for r in view.views[PRUNE_STAGE].evals]
        assert len(curve) >= 1 and np.allclose(curve, evals[: len(curve)])
        assert not at.warning
    finally:
        view.stop()
        view.experiment.wait(30)


def test_a_finished_experiment_replays_the_stage_picked(baseline, manager):
    at, view = page(baseline, manager, hidden_sparsity=0.8, output_sparsity=0.6, bits=3, prune_rounds=2,
                    round_epochs=1.0, retrain_epochs=1.0, finetune_epochs=1.0)
    view.experiment.wait(60)
    ok_without_errors(at.run())
    replay = charts(at)["dc-live-progress"]
    assert len(replay["frames"]) >= 2 and "press ▶" in texts(at)  # the k-means stage, last by default
    assert view.views[QUANTIZE_STAGE].snapshots and at.segmented_control(key="dc_live_layer").value == "fc1"
    at.segmented_control(key="dc_live_stage").set_value(PRUNE_STAGE).run()
    frames = charts(ok_without_errors(at))["dc-live-progress"]["frames"]
    prune_snaps = view.views[PRUNE_STAGE].snapshots
    assert np.allclose(values(frames[0]["data"][0]["y"]), 100 * np.asarray(prune_snaps[0].arrays["prune/sparsity"]))
    assert np.allclose(values(frames[-1]["data"][0]["y"]), 100 * np.asarray(prune_snaps[-1].arrays["prune/sparsity"]))
    assert "stage 1 of 2, pruning + retraining" in texts(at)
    report = view.report()
    dense, final = report.stages[0], report.stages[-1]
    assert not (final.error > 2 * dense.error and final.error - dense.error >= 0.05) and not at.warning


def test_a_collapse_is_a_visible_warning(baseline, manager):
    at, view = page(baseline, manager, hidden_sparsity=0.99, output_sparsity=0.95, prune_rounds=1, round_epochs=0.0,
                    retrain_epochs=0.1, prune_lr=1e-4, finetune_epochs=0.1)
    view.experiment.wait(60)
    ok(at.run())
    final = view.report().stages[-1]
    assert len(at.warning) == 1
    text = at.warning[0].value
    assert f"{100 * final.error:.0f} % error" in text and "accuracy collapsed in the pruning stage" in text
    assert "Try less sparsity" in text
