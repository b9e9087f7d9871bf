"""Jupyter widgets without a browser: controls change the FigureWidget data, monitors follow live jobs.

Expected values are recomputed independently (numpy softmax and entropy, metrics read straight from
the run folder's JSON lines), never taken from the widget code under test.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

pytest.importorskip("ipywidgets")

from kdviz import build_model, load_dataset  # noqa: E402
from kdviz.engine import TrainConfig, start  # noqa: E402
from kdviz.methods import get_method  # noqa: E402
from kdviz.widgets import RunComparison, TemperatureExplorer, TrainingMonitor  # noqa: E402
from kdviz.widgets._live import LiveFigure, Poller, RateLimiter, Throttle, same_value, sync_figure  # noqa: E402

from _support.polling import wait_for  # noqa: E402

SMALL = dict(dataset="digits", model="mlp", model_options={"hidden": [16]}, lr=0.05)


def _softmax(z: np.ndarray, T: float) -> np.ndarray:
    e = np.exp((z - z.max()) / T)
    return e / e.sum()


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("widget-runs")


@pytest.fixture(scope="module")
def finished_runs(manager, runs_root):
    """A finished teacher and a finished KD student, both tiny (digits, 2 epochs)."""
    teacher = start(TrainConfig(**{**SMALL, "model_options": {"hidden": [64]}}, epochs=2, runs_root=str(runs_root), name="teacher"), manager)
    assert teacher.wait(120).state == "finished"
    student = start(TrainConfig(**SMALL, method="kd", teacher=str(teacher.path), epochs=2, runs_root=str(runs_root), name="kd"), manager)
    assert student.wait(120).state == "finished"
    return teacher, student


# ---- _live plumbing --------------------------------------------------------------------------
def test_same_value_compares_arrays_lists_and_dicts():
    assert same_value({"y": np.arange(3.0)}, {"y": [0.0, 1.0, 2.0]})
    assert not same_value({"y": np.arange(3.0)}, {"y": [0.0, 1.0, 2.5]})
    assert not same_value([1, 2], [1, 2, 3])
    assert same_value((1, {"a": "b"}), [1, {"a": "b"}])


def test_sync_figure_adds_removes_and_updates_traces():
    widget = go.FigureWidget(go.Figure([go.Bar(y=[1, 2]), go.Bar(y=[3, 4])], layout={"shapes": [{"type": "line", "x0": 0, "x1": 1, "y0": 0, "y1": 1}]}))
    fresh = go.Figure([go.Bar(y=[5, 6]), go.Bar(y=[7, 8]), go.Scatter(y=[9])], layout={"title": {"text": "new"}})
    sync_figure(widget, fresh)
    assert [t.type for t in widget.data] == ["bar", "bar", "scatter"]
    assert [list(t.y) for t in widget.data] == [[5, 6], [7, 8], [9]]
    assert widget.layout.title.text == "new" and widget.layout.shapes == ()
    assert sync_figure(widget, go.Figure([go.Bar(y=[5, 6])], layout={"title": {"text": "new"}})) > 0
    assert len(widget.data) == 1
    with pytest.raises(TypeError, match="FigureWidget"):
        sync_figure(go.Figure(), fresh)


def test_live_figure_sends_one_batched_update_and_keeps_user_zoom():
    live = LiveFigure(go.Figure(go.Scatter(x=[0, 1, 2], y=[1, 2, 3]), layout={"title": {"text": "a"}}))
    live.widget.layout.xaxis.range = [0.5, 1.5]  # as if the user had zoomed in the browser
    sent = []
    original = live.widget._send_update_msg
    live.widget._send_update_msg = lambda *a, **k: (sent.append(a), original(*a, **k))[1]
    assert live.show(go.Figure(go.Scatter(x=[0, 1, 2], y=[4, 5, 6], name="n"), layout={"title": {"text": "b"}})) == 3
    assert len(sent) == 1, "trace and layout changes must go in one batch_update message"
    assert list(live.widget.data[0].y) == [4, 5, 6] and live.widget.layout.title.text == "b"
    assert tuple(live.widget.layout.xaxis.range) == (0.5, 1.5)
    assert live.show(go.Figure(go.Scatter(x=[0, 1, 2], y=[4, 5, 6], name="n"), layout={"title": {"text": "b"}})) == 0


def test_rate_limiter_with_a_fake_clock():
    now = [0.0]
    limiter = RateLimiter(200, clock=lambda: now[0])
    assert limiter.try_acquire() and not limiter.try_acquire()
    now[0] = 0.15
    assert not limiter.try_acquire() and limiter.wait_time() == pytest.approx(0.05)
    now[0] = 0.2
    assert limiter.try_acquire()
    with pytest.raises(ValueError):
        RateLimiter(-1)


def test_throttle_merges_calls_and_always_draws_the_last_value():
    state, drawn = {"v": 0}, []
    throttle = Throttle(lambda: drawn.append(state["v"]), min_interval_ms=300)
    for v in range(1, 11):  # ten quick "slider moves"
        state["v"] = v
        throttle()
    assert drawn == [1]  # the first ran at once, the rest wait for one trailing call
    wait_for(lambda: len(drawn) == 2, 5, "the trailing call")
    time.sleep(0.4)
    assert drawn == [1, 10]


def test_poller_runs_off_the_main_thread_survives_errors_and_stops():
    threads, errors, calls = set(), [], []

    def tick():
        threads.add(threading.current_thread())
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("one bad frame")
        return len(calls) < 4

    poller = Poller(tick, interval_ms=10, on_error=errors.append).start()
    poller.join(5)
    assert not poller.running and len(calls) == 4
    assert threading.main_thread() not in threads
    assert [str(e) for e in errors] == ["one bad frame"]
    with pytest.raises(ValueError):
        Poller(tick, interval_ms=0)


# ---- TemperatureExplorer ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def explorer():
    torch.manual_seed(0)
    model = build_model("mlp", input_shape=(1, 8, 8), num_classes=10, hidden=(32,))
    return TemperatureExplorer(model, "digits", T=1.0, index=3)


def _independent_logits(explorer, index: int | None = None) -> np.ndarray:
    """The model's logits straight from torch: one test image, or all of them (index None)."""
    images = load_dataset("digits").test_images
    with torch.no_grad():
        z = explorer.model.eval()(images if index is None else images[index : index + 1]).double().numpy()
    return z if index is None else z[0]


def test_explorer_rejects_bad_input(finished_runs):
    model = build_model("mlp", input_shape=(1, 8, 8), num_classes=5, hidden=(8,))
    with pytest.raises(ValueError, match="logits of shape"):
        TemperatureExplorer(model, "digits")
    with pytest.raises(ValueError, match="T must be in"):
        TemperatureExplorer(finished_runs[0].path, "digits", T=500)
    with pytest.raises(TypeError, match="teacher"):
        TemperatureExplorer(42, "digits")


def test_explorer_takes_a_finished_run_folder(finished_runs):
    teacher = finished_runs[0]
    from_path = TemperatureExplorer(str(teacher.path), "digits", T=4.0)
    from_job = TemperatureExplorer(teacher, load_dataset("digits"), T=4.0)
    np.testing.assert_allclose(from_path.logits, from_job.logits)


# ---- TrainingMonitor --------------------------------------------------------------------------
def _long_job(manager, runs_root, name):
    return start(TrainConfig(**SMALL, epochs=500, runs_root=str(runs_root), name=name, snapshot_every=20), manager)


def test_monitor_follows_a_running_job_and_stop_button_stops_it(manager, runs_root):
    job = _long_job(manager, runs_root, "live")
    try:
        monitor = TrainingMonitor(job, interval_ms=200)
        assert monitor.poller.running
        wait_for(lambda: len(job.store.metrics("step")) >= 5, 60, "the job's first steps")
        wait_for(lambda: monitor.loss_chart.updates >= 2, 30, "the monitor to draw new steps")
        drawn = list(monitor.loss_chart.widget.data[0].x)
        on_disk = [json.loads(line) for line in (job.path / "metrics.jsonl").read_text().splitlines()]
        assert drawn == [r["step"] for r in on_disk if r["kind"] == "step"][: len(drawn)]
        assert "running" in monitor.status_html["live"].value
        monitor.stop_buttons["live"].click()
        assert job.wait(30).state == "stopped"
        wait_for(lambda: not monitor.poller.running, 10, "the poller to end after the job")
        assert monitor.stop_buttons["live"].disabled and "stopped" in monitor.status_html["live"].value
        # issue 14 bug 11: no red Stop button stays beside a run that has ended
        assert monitor.stop_buttons["live"].layout.display == "none"
        assert monitor.pause_buttons["live"].layout.display == "none"
    finally:
        job.stop()


def test_monitor_pause_button_pauses_and_resumes(manager, runs_root):
    job = _long_job(manager, runs_root, "pausable")
    try:
        monitor = TrainingMonitor({"pausable": job}, interval_ms=200)
        wait_for(lambda: job.status().step > 0, 60, "the job to start")
        monitor.pause_buttons["pausable"].click()
        wait_for(lambda: job.status().state == "paused", 20, "the job to pause")
        step = job.status().step
        time.sleep(0.5)
        assert job.status().step == step
        assert monitor.pause_buttons["pausable"].description == "Resume"
        monitor.pause_buttons["pausable"].click()
        wait_for(lambda: job.status().step > step, 20, "the job to resume")
        monitor.stop()
        assert job.wait(30).state == "stopped"
    finally:
        job.stop()


def test_monitor_of_finished_runs_draws_at_once(finished_runs):
    teacher, student = finished_runs
    monitor = TrainingMonitor([teacher.path, student.path])
    assert not monitor.poller.running
    kd = get_method("kd")
    assert [(t.name, t.line.color) for t in monitor.accuracy_chart.widget.data] == [("kd", kd.colour)]  # the teacher is the dashed line
    assert monitor.run_picker.value == "kd"
    teacher_bars, student_bars = monitor.probe_chart.widget.data
    assert (student_bars.name, student_bars.marker.color) == ("kd", kd.colour)
    evals = [json.loads(x) for x in (student.path / "metrics.jsonl").read_text().splitlines() if '"eval"' in x]
    line = monitor.status_html["kd"].value
    assert line.startswith(f"<span style='color:{kd.colour};font-weight:bold'>kd</span> <b>finished</b>")
    assert f"test accuracy {evals[-1]['test_acc']:.1%}" in line and f"{student.status().total_steps} steps in" in line


def test_monitor_of_finished_runs_replays_the_probe_snapshots(finished_runs):
    _, student = finished_runs
    monitor = TrainingMonitor([student.path])
    bar = monitor.replay
    assert bar.layout.display == "flex" and bar.scrubber.max == len(bar.snapshots) - 1 >= 1
    last_bars = list(monitor.probe_chart.widget.data[-1].y)
    first = bar.snapshots[0].arrays["probe/soft"]
    bar.scrubber.value = 0
    bar.flush()
    shown = list(monitor.probe_chart.widget.data[-1].y)
    assert shown != last_bars
    assert bar.where.value.endswith(f"step {bar.snapshots[0].step}")
    assert first.shape[-1] == len(shown)


def test_status_line_renders_the_shared_description():
    from kdviz.present import RunView, describe
    from kdviz.widgets.monitor import status_line

    config = TrainConfig(**SMALL, epochs=3, hooks=[{"name": "prune", "sparsity": 0.5}])
    prune = get_method("prune")
    view = RunView(store=None, config=config, path=None, label="pruned <50%>", method=prune)
    status = {"state": "running", "step": 12, "total_steps": 60, "epoch": 1, "eta_s": 65}
    records = [{"kind": "eval", "test_acc": 0.25}, {"kind": "step", "loss": 1.0}, {"kind": "eval", "test_acc": 0.625}]
    line = status_line(view, status, records)
    text = describe({**status, "test_acc": 0.625}, view.label, epochs=3)
    assert line == (f"<span style='color:{prune.colour};font-weight:bold'>pruned &lt;50%&gt;</span> <b>running</b>"
                    f" · {text.accuracy} · {text.detail}")
    assert "test accuracy 62.5%" in line and "epoch 2/3 · step 12/60 · about 1m 05s left" in line
    queued = status_line(view, {"state": "queued", "queue_position": 2}, [])
    assert queued.endswith("<b>queued</b> · waiting in the queue, place 2")


# ---- RunComparison ----------------------------------------------------------------------------
def test_comparison_selector_and_final_errors(finished_runs):
    teacher, student = finished_runs
    comparison = RunComparison({"teacher": teacher.path, "student": str(student.path)})
    assert [t.name for t in comparison.accuracy_chart.widget.data] == ["teacher", "student"]
    colours = [get_method("teacher").colour, get_method("kd").colour]  # the student distils from the teacher
    assert [t.line.color for t in comparison.accuracy_chart.widget.data] == colours
    assert list(comparison.final_chart.widget.data[0].marker.color) == colours
    comparison.run_toggles["teacher"].value = False
    comparison.metric_picker.value = "agreement_test"
    time.sleep(0.15)
    comparison._throttle.flush()
    assert [t.name for t in comparison.accuracy_chart.widget.data] == ["student"]
    assert "agreement" in comparison.accuracy_chart.widget.layout.yaxis.title.text
    finals = {}
    for label, job in (("teacher", teacher), ("student", student)):
        evals = [json.loads(x) for x in (job.path / "metrics.jsonl").read_text().splitlines() if '"eval"' in x]
        finals[label] = round(100 * (1 - evals[-1]["test_acc"]), 2)
    bars = comparison.final_chart.widget.data[0]
    assert dict(zip(bars.y, bars.x)) == finals
    with pytest.raises(ValueError, match="metric"):
        RunComparison(teacher.path, metric="f1")
    with pytest.raises(ValueError, match="does not exist"):
        RunComparison("/nonexistent/run")


# ---- the plotly widget fixes ------------------------------------------------------------------
def test_figure_widget_opens_with_its_figure_and_one_shared_module(monkeypatch):
    """The comm's opening state already holds traces and layout (no follow-up message needed)."""
    from ipywidgets.widgets import widget as ipywidget_module

    from kdviz.widgets._plotly_widget import FigureWidget

    opened = []
    real_create = ipywidget_module.comm.create_comm
    monkeypatch.setattr(ipywidget_module.comm, "create_comm", lambda **kw: (opened.append(kw), real_create(**kw))[1])
    widget = FigureWidget(go.Figure(go.Bar(y=[3, 1, 2]), layout={"title": {"text": "hello"}, "width": 321}))
    assert len(opened) == 1
    state = opened[0]["data"]["state"]
    assert [t["type"] for t in state["_widget_data"]] == ["bar"]
    assert state["_widget_layout"]["title"]["text"] == "hello" and state["_widget_layout"]["width"] == 321
    assert 'Symbol.for("kdviz:plotly-widget:' in state["_esm"] and "plotlywidget-after-render" in state["_esm"]
    assert widget.comm is not None
