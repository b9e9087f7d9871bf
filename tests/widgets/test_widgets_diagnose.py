"""``KDDiagnosis`` without a browser: it follows a live KD student beside its scratch student and ends
with the same warnings and charts as the app's section. Expected numbers are recomputed here from the
saved checkpoints (``load_checkpoint``: safetensors, nothing unpickled)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("ipywidgets")

from kdviz.data import load_dataset  # noqa: E402
from kdviz.engine import TrainConfig, start  # noqa: E402
from kdviz.engine.run_folder import load_checkpoint  # noqa: E402
from kdviz.models import build_model  # noqa: E402
from kdviz.widgets.diagnose import KDDiagnosis  # noqa: E402

STUDENT = dict(dataset="digits", model="mlp", model_options={"hidden": [16]}, batch_size=32, lr=0.05, epochs=3,
               max_steps=50, train_subset=200, eval_every=25, snapshot_every=0, eval_train_samples=200, seed=1,
               device="cpu", log_every=10)


@pytest.fixture(scope="module")
def teacher(manager, tmp_path_factory):
    job = start(TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [64]}, epochs=5, lr=0.05,
                            snapshot_every=0, eval_train_samples=300, device="cpu", name="teacher",
                            runs_root=str(tmp_path_factory.mktemp("diagnose-widget-runs"))), manager)
    assert job.wait(120).state == "finished"
    return job


def per_class_accuracy(run_path: str) -> np.ndarray:
    config = TrainConfig.load(run_path)
    state = load_checkpoint(run_path)
    model = build_model(config.model, input_shape=tuple(state["input_shape"]), num_classes=10, **config.model_options)
    model.load_state_dict(state["model"])
    data = load_dataset("digits")
    with torch.no_grad():
        predicted = model.eval()(data.test_images).argmax(dim=1).numpy()
    labels = data.test_labels.numpy()
    return np.array([np.mean(predicted[labels == c] == c) for c in range(10)])


def test_the_widget_follows_a_live_run_to_its_diagnosis(teacher, manager):
    root = str(Path(teacher.path).parent)
    kd = start(TrainConfig(method="kd", teacher=str(teacher.path), T=0.25, alpha=0.7, name="kd-student", runs_root=root,
                           **STUDENT), manager)
    scratch = start(TrainConfig(method="ce", name="scratch-student", runs_root=root, **STUDENT), manager)
    widget = KDDiagnosis(kd, scratch, interval_ms=50)
    widget.wait(120)
    assert widget.poller is not None and not widget.poller.running
    d = widget.diagnosis
    assert d is not None and d.ended and widget.note.value == ""
    assert "overconfident at T = 0.25" in widget.warnings.value
    assert {"diagnose-agreement", "diagnose-gain", "diagnose-dark-knowledge", "diagnose-reliability"} <= set(widget.charts)
    gain = np.asarray(widget.charts["diagnose-gain"].widget.data[0].y)
    np.testing.assert_allclose(gain, 100 * (per_class_accuracy(str(kd.path)) - per_class_accuracy(str(scratch.path))),
                               atol=1e-9)
    bins = widget.charts["diagnose-reliability"].widget
    assert f"ECE = {100 * d.teacher_ece:.1f}%" in bins.layout.title.text
    assert int(np.sum(bins.data[0].customdata)) == len(load_dataset("digits").test_labels)
    widget.close()


def test_a_run_without_a_teacher_is_named_in_the_note(teacher):
    widget = KDDiagnosis(str(teacher.path), autostart=False)
    assert "learns from no teacher" in widget.note.value and widget.diagnosis is None and not widget.charts
    widget.close()
