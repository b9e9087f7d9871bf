"""``DKDMonitor`` without a browser: it follows a live DKD student beside a scratch student.

Expected values come from the run folders (snapshot ``.npz`` files and ``metrics.jsonl`` lines read here
with numpy and json), never from the widget code under test.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

import kdviz.methods.dkd  # noqa: E402,F401  (registers the hook until kdviz.methods imports it)
from kdviz.engine import TrainConfig, start  # noqa: E402
from kdviz.methods.dkd import dkd_config  # noqa: E402
from kdviz.present import Experiment  # noqa: E402
from kdviz.widgets.dkd import DKDMonitor  # noqa: E402  (imported before a run starts: ipywidgets takes seconds)

from _support.polling import wait_for  # noqa: E402
from _support.run_files import metric_lines, snapshot_array  # noqa: E402

COMMON = dict(dataset="digits", model="mlp", batch_size=64, eval_train_samples=100, device="cpu")
NCKD_TRACE, WEIGHT_TRACE = 3, 1  # in nckd_suppression: the hollow NCKD markers, the 1 - p_t markers


@pytest.fixture(scope="module")
def teacher(manager, tmp_path_factory):
    job = start(TrainConfig(model_options={"hidden": [64]}, max_steps=60, lr=0.1, snapshot_every=0,
                            runs_root=str(tmp_path_factory.mktemp("dkd-widget-runs")), name="teacher", **COMMON),
                manager)
    assert job.wait(120).state == "finished"
    return job


def test_monitor_follows_live_parts_and_suppression(teacher, manager):
    base = TrainConfig(model_options={"hidden": [16]}, teacher=str(teacher.path), lr=0.02, epochs=2, max_steps=40,
                       eval_every=8, snapshot_every=8, pace_s=2.0, runs_root=str(Path(teacher.path).parent), **COMMON)
    exp = Experiment(manager)
    exp.start("DKD student", replace(dkd_config(base, alpha=2.0, beta=4.0, T=3.0), name="dkd-student").validate())
    exp.start("scratch student", replace(base, teacher=None, name="scratch-student").validate())
    monitor = DKDMonitor(exp, interval_ms=50)
    seen: dict[int, tuple] = {}

    def collect() -> bool:
        step, data = monitor.snapshot_step, monitor.suppression_chart.widget.data
        if step is not None and len(data) == 5:
            seen.setdefault(step, (np.asarray(data[WEIGHT_TRACE].x), np.asarray(data[NCKD_TRACE].y),
                                   monitor.suppression_caption.value))
        return exp.done and not monitor.poller.running

    wait_for(collect, 90, "both runs to end and the monitor to stop polling")
    monitor.refresh()
    path = exp.job("DKD student").path
    assert len(seen) >= 2, f"the suppression chart was drawn at only {sorted(seen)}"
    for step, (p_t, nckd, caption) in seen.items():  # each drawn chart is that step's snapshot
        np.testing.assert_allclose(p_t, snapshot_array(path, step, "dkd/teacher_target_prob"), rtol=1e-6)
        np.testing.assert_allclose(nckd, snapshot_array(path, step, "dkd/nckd"), rtol=1e-6)
        assert caption.startswith(f"Step {step}: on 64 probe images at T = 3,") and "β = 4 " in caption
    assert not np.allclose(seen[min(seen)][1], seen[max(seen)][1])  # NCKD changed while the student trained

    evals = metric_lines(path, "eval")
    curves = {t.name: list(t.y) for t in monitor.parts_chart.widget.data}
    assert curves["TCKD (target vs rest)"] == pytest.approx([r["dkd/tckd"] for r in evals])
    assert curves["NCKD (among the wrong classes)"] == pytest.approx([r["dkd/nckd"] for r in evals])
    assert curves["Hinton's KD"] == pytest.approx([r["dkd/hinton_kd"] for r in evals])
    last = evals[-1]
    caption = monitor.parts_caption.value
    assert f"Step {last['step']}, probe batch, T = 3:" in caption and "α = 2 and NCKD by β = 4" in caption
    assert f"= {last['dkd/tckd']:.3f} + {last['dkd/nckd_in_kd']:.3f} = {last['dkd/hinton_kd']:.3f}" in caption
    larger = "NCKD" if last["dkd/nckd"] > last["dkd/tckd"] else "TCKD"
    assert f"{larger} ({last[f'dkd/{larger.lower()}']:.3f}) is" in caption or "about the same size" in caption
    names = [t.name for t in monitor.accuracy_chart.widget.data]
    assert names == ["DKD student", "scratch student"]
    assert list(monitor.accuracy_chart.widget.data[0].y) == pytest.approx([100 * r["test_acc"] for r in evals])
    assert "finished" in monitor.status["DKD student"].value and monitor.stop_button.layout.display == "none"

    bar = monitor.replay  # once the runs ended: a replay over the suppression chart
    assert bar.layout.display == "flex" and bar.scrubber.max == len(bar.snapshots) - 1 >= 3
    bar.scrubber.value = 0
    bar.flush()
    first = bar.snapshots[0].step
    assert monitor.snapshot_step == first
    np.testing.assert_allclose(np.asarray(monitor.suppression_chart.widget.data[NCKD_TRACE].y),
                               snapshot_array(path, first, "dkd/nckd"), rtol=1e-6)
    assert not monitor.errors.outputs
    monitor.close()

    reopened = DKDMonitor(str(path), autostart=False)  # a finished run from its folder draws at once
    assert list(reopened.parts_chart.widget.data[0].y) == pytest.approx([r["dkd/tckd"] for r in evals])
    assert reopened.snapshot_step == last["step"] and reopened.stop_button.layout.display == "none"
    reopened.close()


def test_monitor_needs_a_dkd_run(teacher):
    with pytest.raises(ValueError, match="needs a decoupled-KD run.*'dkd' hook"):
        DKDMonitor(teacher, autostart=False)
