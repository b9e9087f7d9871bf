"""``QATMonitor`` without a browser: it follows a live LSQ fine-tune of a small LeNet-5 on digits.

Expected values come from the run folder (snapshot ``.npz`` files and ``metrics.jsonl`` lines read
here with numpy and json), never from the widget code under test."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from kdviz.engine import TrainConfig, start  # noqa: E402
from kdviz.methods.qat import qat_hook  # noqa: E402
from kdviz.widgets.qat import QATMonitor  # noqa: E402

from _support.polling import wait_for  # noqa: E402
from _support.run_files import metric_lines, snapshot_array  # noqa: E402

COMMON = dict(dataset="digits", model="lenet5", model_options={"channels": [6, 12], "hidden": 32}, batch_size=32,
              eval_train_samples=200, device="cpu")


@pytest.fixture(scope="module")
def baseline(manager, tmp_path_factory):
    job = start(TrainConfig(max_steps=60, lr=0.05, snapshot_every=0, name="float",
                            runs_root=str(tmp_path_factory.mktemp("qat-widget-runs")), **COMMON), manager)
    assert job.wait(120).state == "finished"
    return job


def test_monitor_follows_steps_and_the_moving_grid(baseline, manager):
    config = TrainConfig(init_from=str(baseline.path), lr=0.02, max_steps=40, eval_every=8, snapshot_every=8,
                         pace_s=2.0, name="lsq", runs_root=str(Path(baseline.path).parent),
                         hooks=[qat_hook("lsq", 2, first_last_bits=None, calibration=64)], **COMMON)
    job = start(config, manager)
    monitor = QATMonitor(job, ptq={2: 0.5, 4: 0.8}, float_accuracy=0.9, interval_ms=50)
    grids: dict[int, np.ndarray] = {}

    def collect() -> bool:
        step, data = monitor.shown_grid()  # read together: the chart could change between two reads
        if step is not None and len(data) == 2:
            grids.setdefault(step, np.asarray([x for x in data[1].x if x is not None], dtype=float)[::2])
        return job.done and not monitor.poller.running

    wait_for(collect, 90, "the run to end and the monitor to stop polling")
    monitor.refresh()
    assert len(grids) >= 2, f"the grid was drawn at only {sorted(grids)}"
    layer = monitor.layer_picker.value
    assert layer == "conv1" and list(monitor.layer_picker.options) == ["conv1", "conv2", "fc1", "fc2"]
    for step, drawn in grids.items():  # each drawn grid is the snapshot's, at that step
        np.testing.assert_allclose(drawn, snapshot_array(job.path, step, f"lsq/grid/{layer}"), rtol=1e-6)
    assert not np.allclose(grids[min(grids)], grids[max(grids)])  # the learned step moved the grid
    evals = metric_lines(job.path, "eval")
    fc1 = next(t for t in monitor.steps_chart.widget.data if t.name == "fc1")
    assert list(fc1.y) == pytest.approx([r["lsq/w_step/fc1"] for r in evals])
    bits = {t.name: t for t in monitor.bits_chart.widget.data}
    assert list(bits) == ["PTQ (no training)", "LSQ"]
    assert list(bits["LSQ"].x) == [2] and bits["LSQ"].y[0] == pytest.approx(100 * evals[-1]["test_acc"])
    monitor.layer_picker.value = "fc2"
    monitor._throttle.flush()
    assert len([x for x in monitor.grid_chart.widget.data[1].x if x is not None]) == 2 * 4  # 2 bits: 4 levels
    assert "finished" in monitor.status[monitor.student.label].value and monitor.stop_button.disabled
    monitor.close()


def test_monitor_refuses_runs_without_a_quantizer(baseline):
    with pytest.raises(ValueError, match="needs a QAT or LSQ run"):
        QATMonitor(baseline, autostart=False)
