"""``LogitMatchingMonitor`` without a browser: it follows a live logit-matching student beside a scratch
student, built by the distillation family's ``family_configs``.

Expected values come from the run folders (snapshot ``.npz`` files and ``metrics.jsonl`` lines read
here with numpy and json), never from the widget, figure or presenter code under test.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from kdviz.engine import TrainConfig, start  # noqa: E402
from kdviz.present import Experiment  # noqa: E402
from kdviz.present.family import family_configs  # noqa: E402
from kdviz.present.family_logit_matching import CURVE_TEMPERATURES  # noqa: E402

from _support.polling import wait_for  # noqa: E402
from _support.run_files import metric_lines, snapshot_array  # noqa: E402

COMMON = dict(dataset="digits", model="mlp", batch_size=64, eval_train_samples=200, device="cpu")
STUDENT_LABEL = "logit-matching student"


@pytest.fixture(scope="module")
def teacher(manager, tmp_path_factory):
    job = start(TrainConfig(model_options={"hidden": [48]}, max_steps=40, lr=0.05, snapshot_every=0,
                            runs_root=str(tmp_path_factory.mktemp("lm-widget-runs")), name="teacher", **COMMON), manager)
    assert job.wait(120).state == "finished"
    return job


def base_config(teacher, **fields) -> TrainConfig:
    return TrainConfig(model_options={"hidden": [16]}, teacher=str(teacher.path), lr=0.05, epochs=3,
                       runs_root=str(Path(teacher.path).parent), **{**COMMON, **fields})


def numpy_ratio(student: np.ndarray, teacher: np.ndarray, T: float) -> float:
    """T^2 mean KL over (1/(2nK)) sum ||c(z_s - z_t)||^2, from the definitions."""
    def log_softmax(z):
        z = z / T - (z / T).max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    log_p, log_q = log_softmax(teacher), log_softmax(student)
    t2kl = T * T * (np.exp(log_p) * (log_p - log_q)).sum(axis=1).mean()
    d = student - teacher
    d = d - d.mean(axis=1, keepdims=True)
    return float(t2kl / ((d ** 2).sum() / (2 * len(d) * d.shape[1])))


def test_monitor_follows_the_live_logits_and_the_limit(teacher, manager):
    # the student paced to 6 s (it cannot finish before the pause below lands); the scratch run unpaced
    base = base_config(teacher, max_steps=36, eval_every=12, snapshot_every=12, pace_s=6.0)
    exp = Experiment(manager)
    for name, config in family_configs(base, {"logit_matching": {"weight": 0.2}}).items():
        exp.start(name, config if name == STUDENT_LABEL else replace(config, pace_s=None))
    from kdviz.widgets.logit_matching import LogitMatchingMonitor

    student_job = exp.job(STUDENT_LABEL)
    student_job.pause()  # held at an early snapshot until the monitor has drawn it (a loaded machine drew only the last)
    monitor = LogitMatchingMonitor(exp, interval_ms=50)
    seen: dict[int, np.ndarray] = {}

    def collect() -> bool:
        step, data = monitor.shown_step, monitor.charts[1].widget.data
        if step is not None and len(data) >= 2:
            seen.setdefault(step, np.concatenate([np.asarray(t.y, dtype=float) for t in data[1:]]))
        return exp.done and not monitor.poller.running

    wait_for(lambda: collect() or bool(seen), 60, "the monitor to draw the paused student's snapshot")
    student_job.resume()
    wait_for(collect, 90, "both runs to end and the monitor to stop polling")
    monitor.refresh()
    path = exp.job(STUDENT_LABEL).path
    assert len(seen) >= 2, f"the scatter was drawn at only {sorted(seen)}"
    for step, ys in seen.items():  # every drawn scatter holds that snapshot's student logits
        student = snapshot_array(path, step, "logit_matching/student_logits")
        np.testing.assert_allclose(np.sort(ys), np.sort(student.ravel()), rtol=1e-6)
    assert not np.allclose(np.sort(seen[min(seen)]), np.sort(seen[max(seen)]))  # the logits moved while it trained

    last = monitor.shown_step
    student = snapshot_array(path, last, "logit_matching/student_logits").astype(np.float64)
    teacher_logits = snapshot_array(path, last, "logit_matching/teacher_logits").astype(np.float64)
    curve = monitor.charts[0].widget.data[0]
    np.testing.assert_allclose(curve.x, CURVE_TEMPERATURES)
    expected = [numpy_ratio(student, teacher_logits, T) for T in CURVE_TEMPERATURES]
    np.testing.assert_allclose(curve.y, expected, rtol=1e-4)
    assert abs(curve.y[-1] - 1) < 1e-2 and abs(curve.y[0] - 1) > 0.1  # 1 at T = 1000, not at T = 1
    caption = monitor.captions[0].value
    assert f"{numpy_ratio(student, teacher_logits, 100.0):.3f}× at T = 100" in caption
    l2 = ((student - teacher_logits) ** 2).sum() / (2 * len(student))
    evals = metric_lines(path, "eval")
    assert f"At step {last} Ba &amp; Caruana's loss on the probe batch is {l2:.3g}" in monitor.captions[1].value
    assert "below the first evaluation's" in monitor.captions[1].value  # it fell, and the caption says so
    distance = monitor.charts[2].widget.data[0]
    assert list(distance.y) == pytest.approx([r["logit_matching/probe_l2"] for r in evals])
    assert distance.y[-1] < 0.5 * distance.y[0]
    names = [t.name for t in monitor.accuracy_chart.widget.data]
    assert names[:2] == ["scratch student", STUDENT_LABEL] or names[:2] == [STUDENT_LABEL, "scratch student"]
    assert "finished" in monitor.status[STUDENT_LABEL].value and monitor.stop_button.disabled
    assert monitor.replay.layout.display == "flex" and not monitor.errors.outputs
    monitor.close()


def test_monitor_of_a_finished_run_replays_its_snapshots(teacher, manager):
    config = family_configs(base_config(teacher, max_steps=24, eval_every=8, snapshot_every=8),
                            {"logit_matching": {"weight": 0.3, "center": 1, "labels": 0}})[STUDENT_LABEL]
    assert config.method == "none" and config.hooks[0]["center"] is True
    job = start(config, manager)
    assert job.wait(90).state == "finished"
    from kdviz.widgets.logit_matching import LogitMatchingMonitor

    monitor = LogitMatchingMonitor(str(job.path), autostart=False)
    bar = monitor.replay
    assert bar.layout.display == "flex" and bar.scrubber.max == len(bar.snapshots) - 1 >= 3
    first, last = bar.snapshots[0].step, bar.snapshots[-1].step
    assert monitor.shown_step == last
    bar.scrubber.value = 0
    bar.flush()
    assert monitor.shown_step == first
    xs = np.concatenate([np.asarray(t.x, dtype=float) for t in monitor.charts[1].widget.data[1:]])
    ys = np.concatenate([np.asarray(t.y, dtype=float) for t in monitor.charts[1].widget.data[1:]])
    np.testing.assert_allclose(np.sort(ys), np.sort(snapshot_array(job.path, first, "logit_matching/student_logits").ravel()),
                               rtol=1e-6)
    np.testing.assert_allclose(np.sort(xs), np.sort(snapshot_array(job.path, first, "logit_matching/teacher_logits").ravel()),
                               rtol=1e-6)
    assert f"At step {first} " in monitor.captions[1].value and "as at the first evaluation" in monitor.captions[1].value
    student = snapshot_array(job.path, first, "logit_matching/student_logits").astype(np.float64)
    teacher_logits = snapshot_array(job.path, first, "logit_matching/teacher_logits").astype(np.float64)
    d = student - teacher_logits
    share = ((d - d.mean(axis=1, keepdims=True)) ** 2).sum() / (d ** 2).sum()  # the plain ratio's limit
    raw = numpy_ratio(student, teacher_logits, 1000.0) * share
    np.testing.assert_allclose(monitor.charts[0].widget.data[1].y[-1], raw, rtol=1e-4)  # the dashed curve
    if abs(raw - numpy_ratio(student, teacher_logits, 1000.0)) > 0.01:
        assert f"levels off at {raw:.3f}, not 1: the student's mean logit differs" in monitor.captions[0].value
    else:
        assert "The plain and centred distances agree" in monitor.captions[0].value
    assert not monitor.errors.outputs
    monitor.close()


def test_monitor_needs_a_logit_matching_run(teacher):
    from kdviz.widgets.logit_matching import LogitMatchingMonitor

    with pytest.raises(ValueError, match="needs a logit-matching run.*'logit_matching' hook"):
        LogitMatchingMonitor(teacher, autostart=False)


def test_the_figures_refuse_bad_data_by_name():
    from kdviz.figures.logit_matching import hinton_limit_curve, logit_distance_curve, logit_scatter

    with pytest.raises(ValueError, match="3 ratios for 2 temperatures"):
        hinton_limit_curve([1.0, 10.0], [0.5, 0.9, 1.0])
    with pytest.raises(ValueError, match="temperatures must be positive"):
        hinton_limit_curve([0.0, 10.0], [0.5, 0.9])
    with pytest.raises(ValueError, match=r"student \(2, 3\) and teacher \(2, 4\) logits"):
        logit_scatter(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="labels must be 2 class indices in 0..2"):
        logit_scatter(np.zeros((2, 3)), np.ones((2, 3)), labels=[0, 3])
    with pytest.raises(ValueError, match="not finite"):
        logit_scatter(np.full((2, 3), np.nan), np.ones((2, 3)))
    with pytest.raises(ValueError, match="2 distances for 3 steps"):
        logit_distance_curve([0, 1, 2], [5.0, 4.0])
    fig = logit_scatter([[1.0, 2.0], [3.0, 0.0]], [[1.0, 2.0], [2.0, 0.0]], labels=[1, 0])
    assert "L2 = 0.25" in fig.layout.title.text  # 1/(2*2) * 1^2
    assert [t.name for t in fig.data] == ["y = x (matched)", "other classes", "true class"]
    assert list(fig.data[2].x) == [2.0, 2.0] and list(fig.data[2].y) == [2.0, 3.0]  # (teacher, student) of true classes
