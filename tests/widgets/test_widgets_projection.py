"""``ProjectionMonitor`` without a browser: it follows live ProjectionNet runs (two bit budgets) on digits.

Expected values come from the run folders (snapshot ``.npz`` files and ``metrics.jsonl`` lines read
here with numpy and json) and the layer shapes, never from the widget code under test.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from kdviz.engine import TrainConfig  # noqa: E402
from kdviz.methods.projection import projection_config  # noqa: E402
from kdviz.present import Experiment  # noqa: E402

from _support.polling import wait_for  # noqa: E402
from _support.run_files import metric_lines, snapshot_array  # noqa: E402

TRAINER = {"trainer_model_options": {"hidden": [32]}, "probe_size": 5}


def test_monitor_follows_live_bits_losses_and_accuracy_against_bits(manager, tmp_path):
    from kdviz.widgets.projection import ProjectionMonitor  # imported first: the paced runs start below

    base = TrainConfig(dataset="digits", device="cpu", epochs=2, eval_every=6, snapshot_every=6, eval_train_samples=100,
                       pace_s=4.0, runs_root=str(tmp_path))  # paced: several snapshots reach the monitor
    exp = Experiment(manager)
    for t in (4, 1):
        exp.start(f"pn-{t}", projection_config(base, num_hashes=t, bits_per_hash=5, hidden=[16], lambda3=0.5,
                                               **TRAINER))
    monitor = ProjectionMonitor(exp, interval_ms=50)
    seen: dict[int, np.ndarray] = {}

    def collect() -> bool:
        step, data = monitor.bits_step, monitor.bits_chart.widget.data
        if step is not None and len(data) == 2:
            seen.setdefault(step, np.asarray(data[1].z, dtype=float))
        return exp.done and not monitor.poller.running

    wait_for(collect, 180, "both runs to end and the monitor to stop polling")
    monitor.refresh()
    main = exp.job("pn-4").path
    assert len(seen) >= 2, f"the bits chart was drawn at only {sorted(seen)}"
    for step, probs in seen.items():  # the softmax panel is the snapshot's, step by step
        np.testing.assert_allclose(probs, snapshot_array(main, step, "projection/probs"), rtol=1e-6)
    assert not np.allclose(seen[min(seen)], seen[max(seen)])
    bits = np.asarray(monitor.bits_chart.widget.data[0].z, dtype=float)
    np.testing.assert_array_equal(bits, snapshot_array(main, max(seen), "projection/bits"))
    assert bits.shape == (5, 20)
    steps = metric_lines(main, "step")
    label = next(t for t in monitor.loss_chart.widget.data if t.name.startswith("λ3"))
    assert list(label.y) == pytest.approx([r["projection/label"] for r in steps])
    accuracy = {t.name: t for t in monitor.accuracy_chart.widget.data}
    assert list(accuracy["projection net"].x) == [5, 20]
    last = [metric_lines(exp.job(n).path, "eval")[-1]["test_acc"] for n in ("pn-1", "pn-4")]
    assert list(accuracy["projection net"].y) == pytest.approx([100 * a for a in last])
    assert f"{4 * (20 * 16 + 16 + 16 * 10 + 10) + 8:,} bytes" in monitor.sizes.value
    assert "finished" in monitor.status["pn-4"].value and "finished" in monitor.status["pn-1"].value
    assert monitor.replay.layout.display == "flex"
    monitor.close()


def test_monitor_needs_a_projection_run(manager, tmp_path):
    from kdviz.engine import start
    from kdviz.widgets.projection import ProjectionMonitor

    job = start(TrainConfig(dataset="digits", model_options={"hidden": [8]}, max_steps=2, runs_root=str(tmp_path)),
                manager)
    assert job.wait(60).state == "finished"
    with pytest.raises(ValueError, match="needs a ProjectionNet run"):
        ProjectionMonitor(job, autostart=False)
