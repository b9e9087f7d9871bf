"""``RKDMonitor`` without a browser: it follows a live RKD student beside a scratch student.

The runs are built by the distillation family (``family_configs`` with the RKD member). Expected
values come from the run folders (snapshot ``.npz`` files and ``metrics.jsonl`` lines read here with
numpy and json), never from the widget code under test.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from kdviz.engine import TrainConfig, start  # noqa: E402
from kdviz.methods.rkd import RKD  # noqa: E402
from kdviz.present import Experiment  # noqa: E402
from kdviz.present.family import family_configs  # noqa: E402

from _support.jobs import slow_step_hook  # noqa: E402
from _support.polling import wait_for  # noqa: E402
from _support.run_files import metric_lines, snapshot_array  # noqa: E402

COMMON = dict(dataset="digits", model="mlp", batch_size=32, eval_train_samples=100, device="cpu")


@pytest.fixture(scope="module")
def teacher(manager, tmp_path_factory):
    job = start(TrainConfig(model_options={"hidden": [64]}, max_steps=40, lr=0.1, snapshot_every=0,
                            runs_root=str(tmp_path_factory.mktemp("rkd-widget-runs")), name="teacher", **COMMON), manager)
    assert job.wait(120).state == "finished"
    return job


def family_runs(teacher, manager, max_steps: int, every: int, step_s: float = 0.0) -> Experiment:
    """The scratch and RKD students of the family; ``step_s`` slows the RKD student's steps so a
    poller sees it live (a tiny MLP trains 60 steps in well under a second)."""
    base = TrainConfig(model_options={"hidden": [20]}, teacher=str(teacher.path), lr=0.1, max_steps=max_steps,
                       eval_every=every, snapshot_every=every, runs_root=str(Path(teacher.path).parent),
                       hooks=[slow_step_hook(step_s)] if step_s else [], **COMMON)
    exp = Experiment(manager)
    for label, config in family_configs(base, {RKD.name: {"distance_weight": 10.0, "angle_weight": 20.0}}).items():
        exp.start(label, config)
    return exp


def test_monitor_follows_live_matrices_losses_and_accuracy(teacher, manager):
    exp = family_runs(teacher, manager, max_steps=60, every=10, step_s=0.03)
    from kdviz.widgets.rkd import RKDMonitor

    monitor = RKDMonitor(exp, interval_ms=50)
    seen: dict[int, list] = {}

    def collect() -> bool:
        step, data = monitor.matrices_step, monitor.matrices_chart.widget.data
        if step is not None and len(data) == 2:
            seen.setdefault(step, [np.asarray(data[0].z), np.asarray(data[1].z)])
        return exp.done and not monitor.poller.running

    wait_for(collect, 90, "both runs to end and the monitor to stop polling")
    monitor.refresh()
    rkd_path = exp.job(RKD.label).path
    assert len(seen) >= 2, f"the matrices were drawn at only {sorted(seen)}"
    for step, (teacher_z, student_z) in seen.items():  # each drawn matrix is the snapshot's
        np.testing.assert_allclose(teacher_z, snapshot_array(rkd_path, step, "rkd/teacher_distances"), rtol=1e-6)
        np.testing.assert_allclose(student_z, snapshot_array(rkd_path, step, "rkd/student_distances"), rtol=1e-6)
    first, last = min(seen), max(seen)
    assert not np.allclose(seen[first][1], seen[last][1])  # the student's matrix changed while it trained
    np.testing.assert_allclose(seen[first][0], seen[last][0])  # the teacher's did not

    evals = metric_lines(rkd_path, "eval")
    names = [t.name for t in monitor.loss_chart.widget.data]
    assert names == ["distance loss", "angle loss", "r(ψ_D teacher, student)"]
    assert list(monitor.loss_chart.widget.data[0].y) == pytest.approx([r["rkd/probe_distance"] for r in evals])
    assert list(monitor.loss_chart.widget.data[2].y) == pytest.approx([r["rkd/distance_corr"] for r in evals])
    assert f"r = {evals[-1]['rkd/distance_corr']:.2f}" in monitor.matrices_chart.widget.layout.title.text
    acc_names = [t.name for t in monitor.accuracy_chart.widget.data]
    assert set(acc_names) == {"RKD student", "scratch student"}
    rkd_trace = monitor.accuracy_chart.widget.data[acc_names.index("RKD student")]
    assert list(rkd_trace.y) == pytest.approx([100 * r["test_acc"] for r in evals])
    assert rkd_trace.line.color == RKD.colour
    assert "finished" in monitor.status["RKD student"].value and monitor.stop_button.disabled
    assert monitor.replay.layout.display == "flex" and not monitor.errors.outputs
    monitor.close()


def test_monitor_of_a_finished_run_replays_the_matrices(teacher, manager):
    exp = family_runs(teacher, manager, max_steps=24, every=6)
    assert all(s.state == "finished" for s in exp.wait(90).values())
    from kdviz.widgets.rkd import RKDMonitor

    path = exp.job(RKD.label).path
    monitor = RKDMonitor(str(path), autostart=False)
    bar = monitor.replay
    assert bar.layout.display == "flex" and bar.scrubber.max == len(bar.snapshots) - 1 >= 3
    first, last = bar.snapshots[0].step, bar.snapshots[-1].step
    at_last = np.asarray(monitor.matrices_chart.widget.data[1].z, dtype=float)
    np.testing.assert_allclose(at_last, snapshot_array(path, last, "rkd/student_distances"), rtol=1e-6)
    bar.scrubber.value = 0
    bar.flush()
    assert monitor.matrices_step == first
    at_first = np.asarray(monitor.matrices_chart.widget.data[1].z, dtype=float)
    np.testing.assert_allclose(at_first, snapshot_array(path, first, "rkd/student_distances"), rtol=1e-6)
    assert not np.allclose(at_first, at_last, rtol=1e-4)
    monitor.close()


def test_monitor_needs_an_rkd_run(teacher):
    from kdviz.widgets.rkd import RKDMonitor

    with pytest.raises(ValueError, match="needs a relational-KD run.*'rkd' hook"):
        RKDMonitor(teacher, autostart=False)
