"""``DMLMonitor`` without a browser: it follows a live deep-mutual-learning run beside a scratch student.

Expected values come from the run folders (``metrics.jsonl`` lines read here with json), never from the
widget code under test.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

import kdviz.methods.dml  # noqa: E402,F401  (registers the hook until kdviz.methods imports it)
from kdviz.engine import TrainConfig, start  # noqa: E402
from kdviz.methods.dml import dml_config  # noqa: E402
from kdviz.present import Experiment  # noqa: E402
from kdviz.widgets.dml import DMLMonitor  # noqa: E402  (imported before a run starts: ipywidgets takes seconds)

from _support.polling import wait_for  # noqa: E402
from _support.run_files import metric_lines  # noqa: E402

COMMON = dict(dataset="digits", model="mlp", batch_size=64, eval_train_samples=100, device="cpu",
              model_options={"hidden": [16]}, lr=0.05)


def test_monitor_follows_both_students_live(manager, tmp_path):
    base = TrainConfig(epochs=2, max_steps=40, eval_every=8, snapshot_every=0, pace_s=2.0, runs_root=str(tmp_path),
                       **COMMON)
    exp = Experiment(manager)
    exp.start("DML student", replace(dml_config(base, weight=1.5, T=2.0), name="dml-student").validate())
    exp.start("scratch student", replace(base, name="scratch-student").validate())
    monitor = DMLMonitor(exp, interval_ms=50)
    seen: dict[int, list[float]] = {}

    def collect() -> bool:
        data = monitor.mutual_chart.widget.data
        if len(data) == 3 and len(data[1].x):
            seen.setdefault(int(data[1].x[-1]), list(data[1].y))
        return exp.done and not monitor.poller.running

    wait_for(collect, 90, "both runs to end and the monitor to stop polling")
    monitor.refresh()
    path = exp.job("DML student").path
    evals = metric_lines(path, "eval")
    assert len(seen) >= 2, f"the students' chart was drawn only at steps {sorted(seen)}"
    for step, peer_curve in seen.items():  # each drawing held the peer's accuracy up to that evaluation
        logged = [100 * r["dml/peer_test_acc"] for r in evals if r["step"] <= step]
        assert peer_curve == pytest.approx(logged)

    student, peer, agree = (list(t.y) for t in monitor.mutual_chart.widget.data)
    assert student == pytest.approx([100 * r["test_acc"] for r in evals])
    assert agree == pytest.approx([100 * r["dml/agreement"] for r in evals])
    assert peer[-1] > 50 and peer[-1] > peer[0] + 30  # the peer learns (chance: 10 %)
    kl, peer_kl = (list(t.y) for t in monitor.kl_chart.widget.data)
    assert kl == pytest.approx([r["dml/probe_kl"] for r in evals])
    assert peer_kl == pytest.approx([r["dml/probe_peer_kl"] for r in evals])

    last = evals[-1]
    caption = monitor.mutual_caption.value
    gap = last["dml/peer_test_acc"] - last["test_acc"]
    who = "level" if abs(gap) < 0.005 else ("peer leads" if gap > 0 else "student leads")
    assert caption.startswith(f"Step {last['step']}: the ") and who in caption
    assert f"{100 * last['test_acc']:.1f}% against {100 * last['dml/peer_test_acc']:.1f}%" in caption
    assert f"same class for {100 * last['dml/agreement']:.0f}% of test images" in caption
    kl_text = monitor.kl_caption.value
    assert f"T = 2: KL(peer ‖ student) = {last['dml/probe_kl']:.4f}" in kl_text and "weight 1.5" in kl_text
    names = [t.name for t in monitor.accuracy_chart.widget.data]
    assert names == ["DML student", "scratch student"]
    assert "finished" in monitor.status["DML student"].value and monitor.stop_button.layout.display == "none"
    assert not monitor.errors.outputs
    monitor.close()

    reopened = DMLMonitor(str(path), autostart=False)  # a finished run from its folder draws at once
    assert np.allclose(reopened.mutual_chart.widget.data[1].y, [100 * r["dml/peer_test_acc"] for r in evals])
    reopened.close()


def test_monitor_needs_a_dml_run(manager, tmp_path):
    job = start(TrainConfig(max_steps=2, runs_root=str(tmp_path), **COMMON), manager)
    assert job.wait(60).state == "finished"
    with pytest.raises(ValueError, match="needs a deep-mutual-learning run.*'dml' hook"):
        DMLMonitor(job, autostart=False)
