"""The Diagnose view's numbers on real tiny runs (digits): a teacher, a scratch student and KD students
at non-default (T, alpha). Expected values are computed here from the checkpoints (``load_checkpoint``:
safetensors, nothing unpickled) and the run files, never through the code under test."""
from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from kdviz.engine import TrainConfig, load_checkpoint, start
from kdviz.models import build_model
from kdviz.present.diagnose import (
    CAPACITY_GAP, LOW_NON_TARGET_MASS, diagnose, diagnosis_figures, diagnosis_warnings, find_scratch,
)

from _support.jobs import slow_step_hook
from _support.polling import wait_for
from _support.run_files import metric_lines

STUDENT = dict(dataset="digits", model="mlp", model_options={"hidden": [16]}, batch_size=32, lr=0.05, epochs=4,
               max_steps=60, train_subset=300, eval_every=30, snapshot_every=0, eval_train_samples=300, seed=3,
               device="cpu", log_every=10)
KD_SETTINGS = {"cold": (0.2, 0.9), "warm": (8.0, 0.5), "all_soft": (8.0, 0.98)}  # (T, alpha)


@pytest.fixture(scope="module")
def runs(manager, tmp_path_factory):
    root = tmp_path_factory.mktemp("diagnose-runs")
    teacher = start(TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [64]}, epochs=6, lr=0.05,
                                snapshot_every=0, eval_train_samples=500, device="cpu", runs_root=str(root),
                                name="teacher"), manager)
    assert teacher.wait(120).state == "finished", teacher.status()
    jobs = {"scratch": start(TrainConfig(method="ce", name="scratch-student", runs_root=str(root), **STUDENT), manager)}
    for name, (T, alpha) in KD_SETTINGS.items():
        jobs[name] = start(TrainConfig(method="kd", teacher=str(teacher.path), T=T, alpha=alpha, name=f"kd-{name}",
                                       runs_root=str(root), **STUDENT), manager)
    assert all(job.wait(120).state == "finished" for job in jobs.values())
    return {"teacher": Path(teacher.path), **{name: Path(job.path) for name, job in jobs.items()}}


def test_logits(run: Path) -> tuple[np.ndarray, np.ndarray]:
    """The run's model on every digits test image, rebuilt here from config.json and last.pt."""
    from kdviz.data import load_dataset

    config = TrainConfig.load(run)
    state = load_checkpoint(run)
    model = build_model(config.model, input_shape=tuple(state["input_shape"]), num_classes=int(state["num_classes"]),
                        **config.model_options)
    model.load_state_dict(state["model"])
    data = load_dataset("digits")
    with torch.no_grad():
        return model.eval()(data.test_images).numpy(), data.test_labels.numpy()


test_logits.__test__ = False  # a helper, not a test


def per_class_accuracy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.array([np.mean(logits[labels == c].argmax(axis=1) == c) for c in range(10)])


def folder_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.name.encode() + file.read_bytes())
    return digest.hexdigest()


def test_gain_and_agreement_equal_an_independent_count(runs):
    before = {name: folder_digest(path) for name, path in runs.items()}
    d = diagnose(runs["warm"], runs["scratch"])
    kd_logits, labels = test_logits(runs["warm"])
    scratch_logits, _ = test_logits(runs["scratch"])
    teacher_logits, _ = test_logits(runs["teacher"])
    np.testing.assert_allclose(d.gain, per_class_accuracy(kd_logits, labels) - per_class_accuracy(scratch_logits, labels),
                               atol=1e-12)
    agree = kd_logits.argmax(axis=1) == teacher_logits.argmax(axis=1)
    np.testing.assert_allclose(d.agreement, [agree[labels == c].mean() for c in range(10)], atol=1e-12)
    assert d.student_test_acc == pytest.approx(metric_lines(runs["warm"], "eval")[-1]["test_acc"], abs=1e-6)
    assert d.student_train_acc == metric_lines(runs["warm"], "eval")[-1]["train_acc"]
    assert d.teacher_train_acc == metric_lines(runs["teacher"], "eval")[-1]["train_acc"]
    assert d.training_images == 300 and d.ended and (d.T, d.alpha) == (8.0, 0.5)
    confidence = np.exp(teacher_logits - teacher_logits.max(axis=1, keepdims=True))
    confidence = (confidence / confidence.sum(axis=1, keepdims=True)).max(axis=1)
    assert d.teacher_bins.total == len(labels) and d.teacher_bins.counts[-1] == np.sum(confidence > 14 / 15)
    assert {name: folder_digest(path) for name, path in runs.items()} == before  # run data only read


def test_a_cold_teacher_is_overconfident_and_a_warm_one_is_not(runs):
    cold, warm = diagnose(runs["cold"]), diagnose(runs["warm"])
    cold_mass, warm_mass = cold.mass_by_temperature[0.2], warm.mass_by_temperature[8.0]
    assert cold_mass < LOW_NON_TARGET_MASS < warm_mass
    cold_warning = next(w for w in cold.warnings if w.kind == "overconfident")
    assert "overconfident at T = 0.2" in cold_warning.text and f"only {100 * cold_mass:.1f}%" in cold_warning.text
    assert "raise T" in cold_warning.text
    assert not any(w.kind == "overconfident" for w in warm.warnings)
    assert cold.scratch_label is not None  # the scratch run beside it was found by its config
    assert find_scratch(replace_view(runs["cold"])) == runs["scratch"]


def replace_view(path: Path):
    from kdviz.present import as_run_view

    return as_run_view(path)


def test_the_dark_knowledge_is_the_teachers_soft_targets_on_the_transfer_set(runs):
    from kdviz.engine.setup import dataset_for

    d = diagnose(runs["warm"])
    data = dataset_for(TrainConfig.load(runs["warm"]))  # the 300-image class-balanced transfer set
    teacher_logits = []
    state = load_checkpoint(runs["teacher"])
    model = build_model("mlp", input_shape=tuple(state["input_shape"]), num_classes=10, hidden=[64])
    model.load_state_dict(state["model"])
    with torch.no_grad():
        teacher_logits = model.eval()(data.train_images).double() / 8.0
    p = torch.softmax(teacher_logits, dim=1).numpy()
    labels = data.train_labels.numpy()
    off = 1 - p[np.arange(len(labels)), labels]
    np.testing.assert_allclose(d.non_target_mass, [off[labels == c].mean() for c in range(10)], atol=1e-9)
    right = p.argmax(axis=1) == labels  # the warning reads the images the teacher gets right
    assert d.teacher_right == right.sum() and d.mass_by_temperature[8.0] == pytest.approx(off[right].mean(), abs=1e-9)
    assert d.mean_non_target_mass == pytest.approx(off.mean(), abs=1e-9)
    np.testing.assert_allclose(d.non_target_mass_right, [np.sum(off[(labels == c) & right]) / np.sum(labels == c)
                                                         for c in range(10)], atol=1e-9)


def test_the_surface_finds_the_runs_at_non_default_settings(runs):
    d = diagnose(runs["all_soft"])
    s = d.surface
    assert s is not None and s.temperatures == (0.2, 8.0) and s.alphas == (0.5, 0.9, 0.98)
    scratch_acc = metric_lines(runs["scratch"], "eval")[-1]["test_acc"]
    for name, (T, alpha) in KD_SETTINGS.items():
        cell = s.gain[s.alphas.index(alpha), s.temperatures.index(T)]
        assert cell == pytest.approx(metric_lines(runs[name], "eval")[-1]["test_acc"] - scratch_acc, abs=1e-9)
    assert np.isnan(s.gain[s.alphas.index(0.5), s.temperatures.index(0.2)]) and s.current == (8.0, 0.98)
    assert any(w.kind == "alpha" and "alpha = 0.98" in w.text for w in d.warnings)
    figures = diagnosis_figures(d)
    assert [f.key for f in figures] == ["diagnose-agreement", "diagnose-gain", "diagnose-dark-knowledge",
                                        "diagnose-reliability", "diagnose-surface"]
    heatmap, ring = figures[-1].figure.data
    np.testing.assert_allclose(np.asarray(heatmap.z, dtype=float), 100 * s.gain, equal_nan=True)
    assert (list(heatmap.x), list(heatmap.y)) == (["0.2", "8"], ["0.5", "0.9", "0.98"])
    assert (ring.x, ring.y) == (("8",), ("0.98",))


def test_capacity_and_catch_up_rules_fire_on_their_numbers(runs):
    d = diagnose(runs["warm"], runs["scratch"])
    weak = replace(d, teacher_train_acc=0.99, student_train_acc=0.99 - CAPACITY_GAP - 0.05)
    assert any(w.kind == "capacity" and "84.0%" in w.text and "99.0%" in w.text for w in diagnosis_warnings(weak))
    able = replace(d, teacher_train_acc=0.99, student_train_acc=0.99 - CAPACITY_GAP + 0.05)
    assert not any(w.kind == "capacity" for w in diagnosis_warnings(able))
    caught = replace(d, student_test_acc=0.9, scratch_test_acc=0.9)
    assert any(w.kind == "transfer_set" and "300 training images" in w.text for w in diagnosis_warnings(caught))
    behind = replace(d, student_test_acc=0.9, scratch_test_acc=0.85)
    assert not any(w.kind == "transfer_set" for w in diagnosis_warnings(behind))


def test_a_run_without_a_teacher_is_refused_with_a_message(runs):
    with pytest.raises(ValueError, match="learns from no teacher"):
        diagnose(runs["scratch"])


def test_a_live_run_is_diagnosed_from_its_latest_checkpoint(runs, manager, tmp_path):
    live = start(TrainConfig(method="kd", teacher=str(runs["teacher"]), T=3.0, alpha=0.6, name="kd-live",
                             runs_root=str(tmp_path), checkpoint_every_steps=5,
                             **{**STUDENT, "hooks": [slow_step_hook(0.03)]}), manager)
    wait_for(lambda: live.status().step >= 12, 60, "step 12 (a checkpoint every 5 steps)")
    live.pause()
    wait_for(lambda: live.status().state == "paused", 30, "the run to pause")
    during, total = diagnose(live), live.status().total_steps
    live.resume()
    saved = load_checkpoint(Path(live.path))["step"]
    assert not during.ended and 10 <= during.step < total and during.step <= saved
    assert live.wait(60).state == "finished"
    after = diagnose(live)
    assert after.gain is None and after.scratch_label is None  # no scratch run in its runs root
    assert "diagnose-gain" not in [f.key for f in diagnosis_figures(after)]
    assert after.ended and after.step == total == metric_lines(Path(live.path), "eval")[-1]["step"]
    kd_logits, labels = test_logits(Path(live.path))
    assert after.student_test_acc == pytest.approx(np.mean(kd_logits.argmax(axis=1) == labels), abs=1e-12)
