"""``AttentionMonitor`` without a browser: it follows a live AT student beside a scratch student.

Expected values come from the run folders (snapshot ``.npz`` files and ``metrics.jsonl`` lines read
here with numpy and json), never from the widget code under test.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from kdviz.engine import TrainConfig, start  # noqa: E402
from kdviz.methods.attention import attention_configs  # noqa: E402
from kdviz.present import Experiment  # noqa: E402

from _support.polling import wait_for  # noqa: E402
from _support.run_files import metric_lines, snapshot_array  # noqa: E402

COMMON = dict(dataset="digits", model="resnet", batch_size=32, eval_train_samples=200, device="cpu")


@pytest.fixture(scope="module")
def teacher(manager, tmp_path_factory):
    job = start(TrainConfig(model_options={"blocks_per_stage": [2, 2, 2], "channels": [8, 16, 32]}, max_steps=30,
                            lr=0.05, snapshot_every=0, runs_root=str(tmp_path_factory.mktemp("at-widget-runs")),
                            name="teacher", **COMMON), manager)
    assert job.wait(120).state == "finished"
    return job


def test_monitor_follows_live_maps_and_accuracy(teacher, manager):
    base = TrainConfig(model_options={"blocks_per_stage": [1, 1, 1], "channels": [4, 8, 16]}, teacher=str(teacher.path),
                       lr=0.05, epochs=2, max_steps=60, runs_root=str(Path(teacher.path).parent), **COMMON)
    exp = Experiment(manager)
    for name, config in attention_configs(base, beta=4.0, evals_per_epoch=6).items():
        exp.start(name, config)
    from kdviz.widgets import AttentionMonitor  # exported from the spec's widgets mapping

    monitor = AttentionMonitor(exp, interval_ms=50)
    seen: dict[int, list] = {}

    def collect() -> bool:
        step, data = monitor.maps_step, monitor.maps_chart.widget.data
        if step is not None and len(data) == 3:
            seen.setdefault(step, [np.asarray(data[1].z), np.asarray(data[2].z)])
        return exp.done and not monitor.poller.running

    wait_for(collect, 90, "both runs to end and the monitor to stop polling")
    monitor.refresh()
    at_path = exp.job("AT student").path
    assert len(seen) >= 2, f"the maps were drawn at only {sorted(seen)}"
    pair = monitor.pair_picker.options.index(monitor.pair_picker.value)
    for step, (teacher_z, student_z) in seen.items():  # each drawn map is the snapshot's, image #0
        np.testing.assert_allclose(student_z, snapshot_array(at_path, step, f"attention/student_{pair}")[0], rtol=1e-6)
        np.testing.assert_allclose(teacher_z, snapshot_array(at_path, step, f"attention/teacher_{pair}")[0], rtol=1e-6)
    first, last = min(seen), max(seen)
    assert not np.allclose(seen[first][1], seen[last][1])  # the student's map changed while it trained
    assert list(monitor.pair_picker.options) == ["stage1_in", "stage1_out", "stage2_out", "stage3_out"]

    monitor.pair_picker.value, monitor.image_picker.value = "stage3_out", 2
    monitor._throttle.flush()
    z = np.asarray(monitor.maps_chart.widget.data[2].z)
    np.testing.assert_allclose(z, snapshot_array(at_path, monitor.maps_step, "attention/student_3")[2], rtol=1e-6)
    assert z.shape == (2, 2)

    evals = metric_lines(at_path, "eval")
    distance = monitor.distance_chart.widget.data[0]
    assert list(distance.y) == pytest.approx([r["attention/probe_loss/stage1_in"] for r in evals])
    names = [t.name for t in monitor.accuracy_chart.widget.data]
    assert names == ["AT student", "scratch student"]
    assert list(monitor.accuracy_chart.widget.data[0].y) == pytest.approx([100 * r["test_acc"] for r in evals])
    assert monitor.accuracy_chart.widget.data[0].line.color != monitor.accuracy_chart.widget.data[1].line.color
    assert "finished" in monitor.status["AT student"].value and monitor.stop_button.disabled
    assert monitor.stop_button.layout.display == "none" and monitor.replay.layout.display == "flex"
    monitor.close()


def test_monitor_of_a_finished_run_replays_the_maps(teacher, manager):
    """A finished AT student reopened from its folder: no Stop button, a replay bar over its snapshots,
    and scrubbing back draws the first snapshot's maps of the layer pair and image picked."""
    base = TrainConfig(model_options={"blocks_per_stage": [1, 1, 1], "channels": [4, 8, 16]}, teacher=str(teacher.path),
                       lr=0.05, max_steps=24, runs_root=str(Path(teacher.path).parent), **COMMON)
    job = start(attention_configs(base, beta=4.0, evals_per_epoch=6)["AT student"], manager)
    assert job.wait(90).state == "finished"
    from kdviz.widgets.attention import AttentionMonitor

    monitor = AttentionMonitor(str(job.path), autostart=False)
    bar = monitor.replay
    assert bar.layout.display == "flex" and bar.scrubber.max == len(bar.snapshots) - 1 >= 3
    assert monitor.stop_button.layout.display == "none"
    first, last = bar.snapshots[0].step, bar.snapshots[-1].step
    monitor.pair_picker.value, monitor.image_picker.value = "stage2_out", 1
    monitor._throttle.flush()
    pair = monitor.pair_picker.options.index("stage2_out")

    def student_map() -> np.ndarray:
        return np.asarray(monitor.maps_chart.widget.data[2].z, dtype=float)

    at_last = student_map()
    np.testing.assert_allclose(at_last, snapshot_array(job.path, last, f"attention/student_{pair}")[1], rtol=1e-6)
    bar.scrubber.value = 0
    bar.flush()
    assert monitor.maps_step == first and bar.where.value.endswith(f"step {first}")
    np.testing.assert_allclose(student_map(), snapshot_array(job.path, first, f"attention/student_{pair}")[1], rtol=1e-6)
    assert not np.allclose(student_map(), at_last, rtol=1e-4)
    monitor.image_picker.value = 3  # the pickers still apply to the replayed snapshot
    monitor._throttle.flush()
    np.testing.assert_allclose(student_map(), snapshot_array(job.path, first, f"attention/student_{pair}")[3], rtol=1e-6)
    assert not monitor.errors.outputs
    monitor.close()


def test_monitor_needs_an_attention_run(teacher):
    from kdviz.widgets.attention import AttentionMonitor

    with pytest.raises(ValueError, match="needs an attention-transfer run.*'attention' hook"):
        AttentionMonitor(teacher, autostart=False)
