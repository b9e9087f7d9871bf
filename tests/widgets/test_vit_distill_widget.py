"""``ViTDistillMonitor`` without a browser: it follows a live distilled ViT student beside the same
student trained alone. Expected values come from the run folders (snapshot ``.npz`` files and
``metrics.jsonl`` lines read here), never from the widget code under test."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from kdviz.engine import start  # noqa: E402
from kdviz.present import Experiment  # noqa: E402
from kdviz.present.vit_configs import teacher_config  # noqa: E402
from kdviz.present.vit_story import distill_experiment  # noqa: E402

from _support.polling import wait_for  # noqa: E402
from _support.run_files import metric_lines, snapshot_array  # noqa: E402

TINY = dict(train_subset=200, batch_size=32, eval_train_samples=100, device="cpu")


@pytest.fixture(scope="module")
def teacher(manager, tmp_path_factory):
    job = start(teacher_config("digits", epochs=1, max_steps=10, snapshot_every=0, model_options={"dim": 32},
                               runs_root=str(tmp_path_factory.mktemp("vit-widget-runs")), **TINY), manager)
    assert job.wait(120).state == "finished", job.status().message
    return job


def test_monitor_follows_live_attention_losses_and_accuracy(teacher, manager):
    exp = Experiment(manager)
    configs = distill_experiment(str(teacher.path), "digits", runs_root=str(Path(teacher.path).parent), epochs=4,
                                 max_steps=14, pace_s=None, embedding_weight=0.5, train_subset=200, batch_size=32,
                                 eval_train_samples=100)
    for name, config in configs.items():
        exp.start(name, config)
    from kdviz.widgets.vit import ViTDistillMonitor

    monitor = ViTDistillMonitor(exp, interval_ms=50)
    seen: dict[int, np.ndarray] = {}

    def collect() -> bool:
        step, data = monitor.maps_step, monitor.student_chart.widget.data
        if step is not None and len(data) == 4:  # 2 layers x 2 heads
            seen.setdefault(step, np.asarray(data[3].z))  # layer 2, head 2
        return exp.done and not monitor.poller.running

    wait_for(collect, 90, "both runs to end and the monitor to stop polling")
    monitor.refresh()
    path = exp.job("TinyBERT student").path
    assert len(seen) >= 2, f"the maps were drawn at only {sorted(seen)}"
    for step, z in seen.items():  # each drawn map is the snapshot's class-token row over the 4 x 4 patches
        expected = snapshot_array(path, step, "vit_distill/student_1")[1, 0, 1:].reshape(4, 4)
        np.testing.assert_allclose(z, expected, rtol=1e-6)
    assert not np.allclose(seen[min(seen)], seen[max(seen)])  # the student's attention moved while it trained
    assert len(monitor.teacher_chart.widget.data) == 16  # 4 layers x 4 heads
    steps = metric_lines(path, "step")
    losses = {t.name: t for t in monitor.loss_chart.widget.data}
    assert sorted(losses) == ["attention (eq. 7)", "embedding (eq. 9)", "hidden states (eq. 8)", "prediction (eq. 10)"]
    assert list(losses["embedding (eq. 9)"].y) == pytest.approx([r["vit_distill/embedding"] for r in steps])
    evals = metric_lines(path, "eval")
    accuracy = {t.name: t for t in monitor.accuracy_chart.widget.data}
    assert sorted(accuracy) == ["TinyBERT student", "scratch student"]
    assert list(accuracy["TinyBERT student"].y) == pytest.approx([100 * r["test_acc"] for r in evals])
    assert "attention-matrix loss" in monitor.caption.value
    assert "finished" in monitor.status["TinyBERT student"].value and monitor.stop_button.disabled
    monitor.close()
