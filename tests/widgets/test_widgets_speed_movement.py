"""``SpeedMeter`` and ``MovementMonitor`` without a browser, on real (tiny) digits runs.

Expected values come from the run folders (``metrics.jsonl`` lines read here with json, the
checkpoint's tensors) or are recomputed here (``torch.save`` of the dense state dict), never read
back from the widget code under test. No timing is asserted."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

pytest.importorskip("ipywidgets")

from kdviz.engine import TrainConfig, load_trained_model  # noqa: E402
from kdviz.methods.movement import MOVEMENT  # noqa: E402
from kdviz.methods.prune import PRUNE  # noqa: E402
from kdviz.present import Experiment  # noqa: E402
from kdviz.present.movement import movement_runs  # noqa: E402

from _support.jobs import finished_job  # noqa: E402
from _support.polling import wait_for  # noqa: E402
from _support.run_files import metric_lines  # noqa: E402


@pytest.fixture(scope="module")
def baseline(manager, tmp_path_factory):
    config = TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [48, 24]}, epochs=1, max_steps=50,
                         batch_size=32, lr=0.1, runs_root=str(tmp_path_factory.mktemp("speed-widget-runs")), name="base")
    return finished_job(config, manager)


def test_speed_meter_measures_in_the_background_and_draws_the_report(baseline):
    from kdviz.widgets.speed import SpeedMeter

    meter = SpeedMeter(baseline, runs=4, warmup=1)
    assert meter.task is None and "press Measure" in meter.chart.widget.layout.title.text
    meter.measure()
    wait_for(lambda: meter.task.done and not meter.poller.running, 120, "the measurement")
    assert meter.task.error is None, meter.task.error
    bars = meter.chart.widget.data
    assert [list(b.x) for b in bars][0] == ["dense", "shrunk", "sparse", "int8", "int8 static"]
    buffer = io.BytesIO()
    torch.save(load_trained_model(baseline.path).state_dict(), buffer)
    assert np.isclose(bars[2].y[0], buffer.getbuffer().nbytes / 1024)  # bytes stored by the dense model
    assert meter.table.value.count("<tr>") == 6 and "Measured now on this machine" in meter.caption.value
    again = SpeedMeter(baseline, runs=4, warmup=1)  # the finished measurement is reused, drawn at once
    assert again.task is meter.task and list(again.chart.widget.data[0].x) == list(bars[0].x)
    meter.close()
    again.close()


def test_movement_monitor_follows_both_runs_live(baseline, manager):
    from kdviz.widgets.movement import MovementMonitor

    exp = Experiment(manager)
    for name, config in movement_runs(baseline, 0.75, epochs=1, max_steps=30, snapshot_every=5, eval_every=5).items():
        exp.start(name, config)
    monitor = MovementMonitor(exp, interval_ms=50)
    seen = []

    def collect() -> bool:
        data = monitor.progress_chart.widget.data
        if data:
            seen.append(sum(len(t.x or ()) for t in data))
        return exp.done and not monitor.poller.running

    wait_for(collect, 120, "both runs and the monitor to finish")
    assert seen == sorted(seen) and seen[-1] > seen[0]  # the chart grew while the runs trained
    names = {t.name for t in monitor.progress_chart.widget.data}
    assert names == {MOVEMENT.label, PRUNE.label}
    moved = exp.job(MOVEMENT.label)
    evals = metric_lines(moved.path, "eval")
    sparsity = [t for t in monitor.progress_chart.widget.data if t.name == MOVEMENT.label and t.xaxis == "x"][0]
    np.testing.assert_allclose(np.asarray(sparsity.y), [100 * r["movement/sparsity"] for r in evals])
    assert monitor.layer_picker.options == ("fc1", "fc2", "fc3")
    assert "chosen differently" in monitor.scatter_chart.widget.layout.title.text
    monitor.layer_picker.value = "fc2"
    assert monitor.scatter_chart.widget.layout.title.text.startswith("<b>fc2")
    with pytest.raises(ValueError, match="needs a movement-pruning run"):
        MovementMonitor({"baseline": baseline})
    monitor.close()
