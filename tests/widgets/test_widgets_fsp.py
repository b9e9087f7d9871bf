"""``FSPMonitor`` without a browser: it follows running FSP jobs and its FigureWidgets change.

Expected values come from the run folders (the snapshot ``.npz`` files and ``metrics.jsonl`` lines,
read here with numpy and json), never from the widget code under test.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from kdviz.methods.base import METHOD_SPECS, MethodSpec  # noqa: E402
from kdviz.methods.two_stage import (  # noqa: E402
    LAYERS, Stage1Method, TwoStageFSP, hints_stage1_from_choice, scratch_config, stage1_methods,
)
from kdviz.engine import TrainConfig, start  # noqa: E402
from kdviz.widgets.fsp import FSPMonitor, role_of, stage1_requirement  # noqa: E402

from _support.polling import wait_for  # noqa: E402
from _support.run_files import metric_lines, snapshot_array  # noqa: E402

COMMON = dict(dataset="digits", model="resnet", batch_size=32, eval_train_samples=200, device="cpu")
STUDENT = {"blocks_per_stage": [1, 1, 1], "channels": [4, 8, 16]}


@pytest.fixture(scope="module")
def teacher(manager, tmp_path_factory):
    """A tiny ResNet-14 teacher with the student's channels per stage (15 steps on digits)."""
    job = start(TrainConfig(model_options={"blocks_per_stage": [2, 2, 2], "channels": [4, 8, 16]}, max_steps=15, lr=0.05,
                            snapshot_every=0, runs_root=str(tmp_path_factory.mktemp("fsp-widget-runs")), name="teacher",
                            **COMMON), manager)
    assert job.wait(120).state == "finished"
    return job


def base(teacher, **kw) -> TrainConfig:
    options = dict(COMMON, model_options=STUDENT, teacher=str(teacher.path), lr=0.05, epochs=1, snapshot_every=4,
                   eval_every=4, runs_root=str(Path(teacher.path).parent), name="student")
    return TrainConfig(**{**options, **kw})


def test_monitor_follows_stage_1_snapshots_then_stage_2_and_scratch(teacher, manager):
    b = base(teacher, max_steps=12, epochs=2)
    stages = TwoStageFSP(b, stage1_steps=60, stage2_steps=12, stage1_lr=1e-4, manager=manager)
    monitor = FSPMonitor(stages, scratch=start(scratch_config(b), manager), interval_ms=50)
    seen: dict[int, np.ndarray] = {}

    def collect() -> bool:
        step, widget = monitor.heatmap_step, monitor.heatmap_chart.widget
        if step is not None and monitor.pair_picker.value == "stage1_in->stage1_out":
            z = np.asarray(widget.data[1].z, dtype=float).copy()
            if step == monitor.heatmap_step:  # not redrawn while we copied
                seen.setdefault(step, z)
        return len(seen) >= 2

    wait_for(lambda: monitor.heatmap_step is not None, 90, "the first heatmap")
    assert not stages.stage1.done, "stage 1 ended before the monitor drew its first heatmap"
    wait_for(collect, 90, "a second heatmap")
    monitor.wait(90)
    assert not monitor.poller.running and monitor.done
    assert stages.stage2 is not None and set(monitor.views) == {"stage 1", "stage 2", "scratch"}
    assert len({z.tobytes() for z in seen.values()}) == 2, "the student's heatmap did not change with the step"
    snap_path = Path(stages.stage1.path)
    for step, z in seen.items():  # a heatmap drawn live is the snapshot written to disk at that step
        assert np.allclose(z, snapshot_array(snap_path, step, "fsp/student_0"), rtol=1e-6), step
    # the pair dropdown switches the heatmaps to another section's (C_in x C_out) matrix
    monitor.pair_picker.value = "stage3_in->stage3_out"
    monitor._throttle.flush()
    last = monitor.snapshot.step
    assert np.asarray(monitor.heatmap_chart.widget.data[1].z).shape == (8, 16)
    assert np.allclose(np.asarray(monitor.heatmap_chart.widget.data[1].z, dtype=float), snapshot_array(snap_path, last, "fsp/student_2"))
    # the loss curve is the stage-1 probe loss from metrics.jsonl; accuracy pays for stage 1 on the x axis
    loss = monitor.loss_chart.widget.data[0]
    assert np.allclose(np.asarray(loss.y, dtype=float), [r["fsp/probe_loss"] for r in metric_lines(snap_path, "eval")], rtol=1e-6)
    traces = {t.name: t for t in monitor.accuracy_chart.widget.data}
    stage2 = metric_lines(Path(stages.stage2.path), "eval")
    assert np.allclose(np.asarray(traces["FSP student (stage 2)"].x, dtype=float), [r["step"] + 60 for r in stage2])
    assert np.allclose(np.asarray(traces["scratch student"].y, dtype=float),
                       [100 * r["test_acc"] for r in metric_lines(Path(monitor.views["scratch"].path), "eval")])
    assert monitor.stop_button.disabled and monitor.stop_button.layout.display == "none"
    assert monitor.replay.layout.display == "flex" and not monitor.errors.outputs
    monitor.close()


def test_stop_ends_stage_1_and_no_stage_2_starts(teacher, manager):
    stages = TwoStageFSP(base(teacher, epochs=200), stage1_steps=5000, stage1_lr=1e-4, manager=manager)
    monitor = FSPMonitor(stages, interval_ms=50)
    wait_for(lambda: monitor.snapshot is not None, 60, "the first FSP snapshot")
    assert not monitor.stop_button.disabled
    monitor.stop_button.click()
    wait_for(lambda: not monitor.poller.running, 60, "the monitor to see the end")
    assert stages.stage1.status().state == "stopped" and stages.stage2 is None and monitor.done
    monitor._update_status()
    assert monitor.stop_button.disabled and "will not start" in monitor.status_html["stage 2"].value
    monitor.close()


def test_monitor_of_run_folders_and_bad_input(teacher, manager):
    b = base(teacher, max_steps=4)
    stages = TwoStageFSP(b, stage1_steps=8, stage2_steps=4, manager=manager, stage1_lr=1e-4)
    scratch = stages.start("scratch", scratch_config(b))  # the scratch student is part of the experiment
    assert set(stages.wait(60)) == {"stage 1", "stage 2", "scratch"}
    paths = [str(stages.stage2.path), str(scratch.path), str(stages.stage1.path)]
    monitor = FSPMonitor(paths, autostart=False)  # roles come from the configs, order does not matter
    assert [role_of(v.config) for v in monitor.views.values()] == ["stage 2", "scratch", "stage 1"]
    assert len(monitor.heatmap_chart.widget.data) == 3 and len(monitor.accuracy_chart.widget.data) >= 2
    monitor.close()
    with pytest.raises(ValueError, match="needs a stage-1 run"):
        FSPMonitor([str(scratch.path)], autostart=False)
    with pytest.raises(ValueError, match="is not a stage 1"):
        role_of(TrainConfig(method="kd", teacher="t"))
    with pytest.raises(ValueError, match="two runs are the stage 1 run"):
        FSPMonitor([str(stages.stage1.path), str(stages.stage1.path)], autostart=False)
    # the experiment itself: its three jobs, roles from their configs
    monitor = FSPMonitor(stages, autostart=False)
    assert {role: v.path for role, v in monitor.views.items()} == {
        "stage 1": stages.stage1.path, "stage 2": stages.stage2.path, "scratch": scratch.path}
    assert monitor.done and monitor.stop_button.disabled
    monitor.close()


def test_monitor_of_finished_runs_replays_the_stage_1_heatmaps(teacher, manager):
    """Every run ended: the Stop button goes, a replay bar scrubs the stage-1 snapshots, and scrubbing
    back draws the first snapshot's matrices of the section pair picked."""
    b = base(teacher, max_steps=4)
    stages = TwoStageFSP(b, stage1_steps=16, stage2_steps=4, manager=manager, stage1_lr=1e-3)
    assert set(stages.wait(60)) == {"stage 1", "stage 2"}
    stage1 = Path(stages.stage1.path)
    monitor = FSPMonitor(stages, autostart=False)
    bar = monitor.replay
    assert bar.layout.display == "flex" and bar.scrubber.max == len(bar.snapshots) - 1 >= 3
    assert monitor.stop_button.layout.display == "none"
    first, last = bar.snapshots[0].step, bar.snapshots[-1].step
    monitor.pair_picker.value = "stage2_in->stage2_out"
    monitor._throttle.flush()
    pair = monitor.pair_picker.options.index(monitor.pair_picker.value)

    def heatmaps() -> list[np.ndarray]:  # teacher, student, difference
        return [np.asarray(t.z, dtype=float) for t in monitor.heatmap_chart.widget.data]

    at_last = heatmaps()
    assert np.allclose(at_last[1], snapshot_array(stage1, last, f"fsp/student_{pair}"), rtol=1e-6)
    bar.scrubber.value = 0
    bar.flush()
    at_first = heatmaps()
    assert monitor.heatmap_step == first and f"Stage-1 step {first}:" in monitor.caption.value
    assert np.allclose(at_first[1], snapshot_array(stage1, first, f"fsp/student_{pair}"), rtol=1e-6)
    assert np.allclose(at_first[0], snapshot_array(stage1, first, f"fsp/teacher_{pair}"), rtol=1e-6)
    assert not np.allclose(at_first[1], at_last[1], rtol=1e-4) and not np.allclose(at_first[2], at_last[2], rtol=1e-4)
    monitor.pair_picker.value = "stage3_in->stage3_out"  # the picker still applies to the replayed snapshot
    monitor._throttle.flush()
    assert np.allclose(heatmaps()[1], snapshot_array(stage1, first, "fsp/student_2"), rtol=1e-6)
    assert not monitor.errors.outputs
    monitor.close()


def test_the_monitor_accepts_exactly_the_stage1_methods_the_registry_declares(monkeypatch):
    """A new spec with a ``stage1`` field is a stage-1 method for the monitor too, without a change there."""
    before = [m.name for m in stage1_methods()]
    assert before[:2] == ["fsp", "hints"]
    assert "with one of the hooks 'fsp' (FSP), 'hints' (FitNets)" in stage1_requirement()
    spec = MethodSpec("probe_stage1", "probe stage 1", "#000000", "a stage-1 method a test registers", loss="none",
                      stage1=Stage1Method(short="Probe", title="Probe features (a test)", probe_metric="probe_loss",
                                          default_lr=1e-3, inputs=LAYERS, build=hints_stage1_from_choice))
    monkeypatch.setitem(METHOD_SPECS._items, spec.name, spec)
    assert [m.name for m in stage1_methods()] == [*before, "probe_stage1"]
    with pytest.raises(ValueError, match=r"needs a stage-1 run .*'hints' \(FitNets\).*, 'probe_stage1' \(Probe\)\)$"):
        FSPMonitor([], autostart=False)


def test_monitor_of_a_fitnets_hints_stage_1(teacher, manager):
    """Stage 1 with the ``hints`` hook (Romero et al. 2015): the hint loss is drawn, no FSP heatmaps."""
    from dataclasses import replace

    b = base(teacher)
    hint = {"name": "hints", "student_layer": "stage2_out", "teacher_layer": "stage2_out"}
    job = start(replace(b, method="none", hooks=[hint], max_steps=8, lr=1e-3, name="hints stage 1").validate(), manager)
    assert job.wait(60).state == "finished"
    monitor = FSPMonitor({"hints": job}, autostart=False)
    assert monitor.method.name == "hints" and monitor.heatmap_chart.widget not in monitor.children
    loss = monitor.loss_chart.widget
    assert "FitNets" in loss.layout.title.text and "hint loss" in loss.layout.yaxis.title.text
    expected = [r["hints/probe_loss"] for r in metric_lines(Path(job.path), "eval")]
    assert len(expected) >= 2 and np.allclose(np.asarray(loss.data[0].y, dtype=float), expected, rtol=1e-6)
    monitor.close()
