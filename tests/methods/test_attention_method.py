"""The "attention" hook and method (Zagoruyko & Komodakis 2017, eq. 2) through the real engine.

A tiny ResNet teacher is trained on digits, then an AT student through ``start()``; the expected
maps are recomputed here from the teacher's checkpoint with numpy.
"""
from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
import torch

from kdviz.engine import TrainConfig, load_trained_model, open_run, start, train_teacher_cached
from kdviz.engine.hooks import StepBatch, TrainContext, build_hook
from kdviz.methods import get_method, method_of
from kdviz.methods.attention import ATTENTION, AttentionHook, attention_configs, read_attention_snapshot
from kdviz.models import build_model
from kdviz.present import as_run_view

STUDENT = {"blocks_per_stage": [1, 1, 1], "channels": [4, 8, 16]}


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    root = tmp_path_factory.mktemp("at-runs")
    job = train_teacher_cached("digits", "resnet", model_options={"blocks_per_stage": [2, 2, 2], "channels": [8, 16, 32]},
                               epochs=3, lr=0.05, runs_root=str(root), name="teacher-resnet14")
    assert job.wait(120).state == "finished"
    return job


@pytest.fixture(scope="module")
def at_run(teacher):
    config = TrainConfig(dataset="digits", model="resnet", model_options=STUDENT, teacher=str(teacher.path), lr=0.05,
                         epochs=3, max_steps=45, eval_every=15, snapshot_every=15, eval_train_samples=200,
                         runs_root=str(Path(teacher.path).parent), name="at-student",
                         hooks=[{"name": "attention", "beta": 3.0, "shown": 3, "probe_size": 32}])
    job = start(config)
    assert job.wait(180).state == "finished", job.status().message
    return job


def eq2_maps(features: np.ndarray) -> np.ndarray:
    """Q/||Q||_2 with Q = sum_c A_c^2 per image, as (B, H, W)."""
    q = (features ** 2).sum(axis=1)
    return q / np.sqrt((q ** 2).sum(axis=(1, 2), keepdims=True))


def test_training_lowers_the_probe_attention_loss(at_run):
    evals = open_run(at_run.path).metrics("eval")
    key = ATTENTION.metric_key(at_run.config, "probe_loss")
    losses = [r[key] for r in evals]
    assert key == "attention/probe_loss" and len(losses) >= 3
    assert losses[-1] < 0.7 * losses[0], losses
    pair_keys = sorted(k for k in evals[-1] if k.startswith(key + "/"))
    assert pair_keys == [f"{key}/stage{k}" for k in ("1_in", "1_out", "2_out", "3_out")]
    # the total is beta/2 = 1.5 times the sum of the per-pair distances
    assert evals[-1][key] == pytest.approx(1.5 * sum(evals[-1][k] for k in pair_keys), rel=1e-5)
    term = ATTENTION.metric_key(at_run.config, "attention")  # the loss term, logged under the hook's label
    for r in open_run(at_run.path).metrics("step"):
        assert r["loss"] == pytest.approx(r["hard"] + r[term], rel=1e-5)  # eq. 2: cross-entropy + AT term


def test_snapshot_read_through_the_spec_matches_the_teacher_recomputed(at_run, teacher, digits):
    snapshot = open_run(at_run.path).latest_snapshot()
    snap = ATTENTION.read_snapshot(snapshot.arrays, at_run.config)
    assert snap.labels == ["stage1_in", "stage1_out", "stage2_out", "stage3_out"]
    np.testing.assert_allclose(snap.images, digits.test_images[:3, 0].numpy(), rtol=1e-6)
    model = load_trained_model(teacher.path).eval()
    with torch.no_grad():
        features = model.forward_with_features(digits.test_images[:32])[1]
    for label, size in (("stage1_out", 8), ("stage2_out", 4), ("stage3_out", 2)):
        pair = snap.pair(label)
        assert pair.teacher.shape == pair.student.shape == (3, size, size)
        np.testing.assert_allclose(pair.teacher, eq2_maps(features[label][:3].numpy()), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose((pair.student ** 2).sum(axis=(1, 2)), 1.0, rtol=1e-5)
        assert 0.0 <= pair.loss <= np.sqrt(2.0)
    assert snap.loss == pytest.approx(1.5 * sum(p.loss for p in snap.pairs), rel=1e-5)
    with pytest.raises(ValueError, match="no attention pair 'fc1'"):
        snap.pair("fc1")
    with pytest.raises(ValueError, match="no attention maps under 'prune/'"):
        read_attention_snapshot(snapshot.arrays, "prune")


def test_a_misspelt_option_is_rejected_by_start_before_any_folder(teacher, tmp_path):
    config = {"dataset": "digits", "model": "resnet", "model_options": STUDENT, "teacher": str(teacher.path),
              "runs_root": str(tmp_path), "hooks": [{"name": "attention", "betta": 2.0}]}
    with pytest.raises(ValueError, match="hook 'attention' has no option.*'betta'.*known: pairs, beta"):
        start(config)
    with pytest.raises(ValueError, match="option 'beta' must be float"):
        start({**config, "hooks": [{"name": "attention", "beta": "high"}]})
    with pytest.raises(ValueError, match="shown .* must be 1 to probe_size \\(8\\), got 9"):
        start({**config, "hooks": [{"name": "attention", "probe_size": 8, "shown": 9}]})
    assert list(tmp_path.iterdir()) == []


def test_method_of_labels_the_run_and_the_view(at_run):
    assert method_of(at_run.config) is ATTENTION is get_method("attention")
    assert ATTENTION.run_label(at_run.config) == "AT β=3"
    view = as_run_view(at_run)
    assert view.method is ATTENTION and view.colour == ATTENTION.colour and view.role == "AT student"
    kd_too = TrainConfig(method="kd", teacher="t", hooks=[{"name": "attention"}])  # the paper's AT+KD
    assert method_of(kd_too) is ATTENTION and ATTENTION.run_label(kd_too) == "AT β=2"
    assert method_of(TrainConfig(method="ce")).name == "scratch"
    assert set(ATTENTION.options()) == {"pairs", "beta", "probe_size", "shown"}


def test_attention_configs_pair_an_at_student_with_scratch(teacher):
    base = TrainConfig(dataset="digits", model="resnet", model_options=STUDENT, teacher=str(teacher.path), seed=7,
                       epochs=2, batch_size=32)
    configs = attention_configs(base, beta=0.5, pairs=[("stage3_out", "stage3_out")], evals_per_epoch=3)
    at, scratch = configs["AT student"], configs["scratch student"]
    assert method_of(at) is ATTENTION and method_of(scratch).name == "scratch"
    assert at.hooks == [{"name": "attention", "pairs": [["stage3_out", "stage3_out"]], "beta": 0.5}]
    assert scratch.teacher is None and scratch.hooks == [] and at.teacher == base.teacher
    assert at.seed == scratch.seed == 7 and at.model_options == scratch.model_options
    assert at.eval_every == scratch.eval_every == -(-1347 // 32) // 3  # 1,347 digits training images
    with pytest.raises(ValueError, match="needs a teacher"):
        attention_configs(TrainConfig(model="resnet"))


def test_hook_loss_term_and_errors(digits, teacher):
    torch.manual_seed(0)
    student = build_model("resnet", input_shape=(1, 8, 8), **STUDENT)
    model = load_trained_model(teacher.path).eval()
    ctx = TrainContext(model=student, teacher=model, config=types.SimpleNamespace(), dataset=digits,
                       device=torch.device("cpu"))
    hook = build_hook({"name": "attention", "pairs": [["stage2_out", "stage2_out"]], "beta": 4.0})
    assert isinstance(hook, AttentionHook) and hook.needs_features
    hook.setup(ctx)
    x = digits.train_images[:8]
    logits, fs = student.forward_with_features(x)
    tl, ft = model.forward_with_features(x)  # built with autograd on: the hook keeps the teacher fixed
    term = hook.loss_terms(ctx, StepBatch(x, digits.train_labels[:8], torch.arange(8), logits, fs, tl, ft))["attention"]
    s = eq2_maps(fs["stage2_out"].detach().numpy()).reshape(8, -1)
    t = eq2_maps(ft["stage2_out"].detach().numpy()).reshape(8, -1)
    assert float(term.detach()) == pytest.approx(2.0 * np.linalg.norm(s - t, axis=1).mean(), rel=1e-5)
    term.backward()
    assert student.stage2[0].conv1.weight.grad.abs().sum() > 0 and student.stage3[0].conv1.weight.grad is None
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match="needs a teacher"):
        AttentionHook().setup(TrainContext(student, None, None, digits, torch.device("cpu")))
    mlp = build_model("mlp", input_shape=(1, 8, 8), hidden=(16,))
    with pytest.raises(ValueError, match="no conv feature map of the same name"):
        AttentionHook().setup(TrainContext(mlp, mlp, None, digits, torch.device("cpu")))
    with pytest.raises(ValueError, match="spatial size"):
        AttentionHook(pairs=[["stage1_out", "stage2_out"]]).setup(ctx)
