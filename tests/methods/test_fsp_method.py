"""The "fsp" training hook and the two-stage configs (Yim et al. 2017, section 3.3)."""
import copy
import types

import numpy as np
import pytest
import torch

from kdviz.distill import fsp_matrix
from kdviz.methods.fsp import FSPHook, fsp_snapshot_pairs
from kdviz.engine.hooks import HOOKS, StepBatch, TrainContext, build_hook
from kdviz.models import build_model


def make(digits, student_blocks=(1, 1, 1), channels=(16, 32, 64)):
    torch.manual_seed(0)
    teacher = build_model("resnet", input_shape=(1, 8, 8), blocks_per_stage=(2, 2, 2)).eval()
    student = build_model("resnet", input_shape=(1, 8, 8), blocks_per_stage=student_blocks, channels=channels)
    ctx = TrainContext(model=student, teacher=teacher, config=types.SimpleNamespace(), dataset=digits,
                       device=torch.device("cpu"))
    return teacher, student, ctx


def step_batch(student, teacher, digits, n=16, teacher_grad=False):
    x = digits.train_images[:n]
    logits, fs = student.forward_with_features(x)
    with torch.set_grad_enabled(teacher_grad):
        tl, ft = teacher.forward_with_features(x)
    return StepBatch(images=x, labels=digits.train_labels[:n], indices=torch.arange(n), logits=logits,
                     features=fs, teacher_logits=tl, teacher_features=ft)


def test_fsp_hook_loss_matches_direct_formula_and_grad_reaches_student_only(digits):
    teacher, student, ctx = make(digits)
    hook = build_hook({"name": "fsp", "pairs": [["stage1_in", "stage1_out"], ["stage3_in", "stage3_out"]],
                       "weights": [1.0, 0.5]})
    assert isinstance(hook, FSPHook) and "fsp" in HOOKS and hook.needs_features
    hook.setup(ctx)
    # teacher features built with autograd on: the hook itself must keep the teacher fixed
    batch = step_batch(student, teacher, digits, teacher_grad=True)
    term = hook.loss_terms(ctx, batch)["fsp"]
    fs, ft = batch.features, batch.teacher_features
    expected = 0.0
    with torch.no_grad():
        for lam, (a, b) in zip([1.0, 0.5], hook.pairs):
            d = fsp_matrix(ft[a], ft[b]) - fsp_matrix(fs[a], fs[b])
            expected += lam * float((d ** 2).sum()) / 16
    assert term.item() == pytest.approx(expected, rel=1e-5)
    term.backward()
    assert student.stem[0].weight.grad.abs().sum() > 0
    assert student.stage3[0].conv2.weight.grad.abs().sum() > 0
    assert student.fc.weight.grad is None  # the logits are not part of the FSP loss
    assert all(p.grad is None for p in teacher.parameters())


def test_fsp_hook_auto_pairs_snapshot_and_metrics(digits):
    teacher, student, ctx = make(digits)
    hook = FSPHook(probe_size=32)
    hook.setup(ctx)
    assert hook.pairs == [("stage1_in", "stage1_out"), ("stage2_in", "stage2_out"), ("stage3_in", "stage3_out")]
    was_bn = student.stem[1].running_mean.clone()
    student.train()
    snap = hook.snapshot(ctx)
    assert student.training and torch.equal(student.stem[1].running_mean, was_bn)  # probe leaves BN alone
    pairs = fsp_snapshot_pairs(snap, label="")
    assert [p["label"] for p in pairs] == ["stage1_in->stage1_out", "stage2_in->stage2_out", "stage3_in->stage3_out"]
    assert [p["teacher"].shape for p in pairs] == [(16, 16), (16, 32), (32, 64)]
    # an independent recomputation of the probe-batch means: teacher in eval mode, student with
    # BatchNorm on the probe batch's statistics (as in a training step), on a copy
    probe = digits.test_images[:32]
    with torch.no_grad():
        ft = teacher.eval().forward_with_features(probe)[1]
        fs = copy.deepcopy(student).train().forward_with_features(probe)[1]
    gt = fsp_matrix(ft["stage2_in"], ft["stage2_out"])
    gs = fsp_matrix(fs["stage2_in"], fs["stage2_out"])
    np.testing.assert_allclose(pairs[1]["teacher"], gt.mean(0).numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(pairs[1]["difference"], (gt - gs).mean(0).numpy(), rtol=1e-4, atol=1e-6)
    assert pairs[1]["loss"] == pytest.approx(float(((gt - gs) ** 2).sum(dim=(1, 2)).mean()), rel=1e-4)
    assert float(snap["loss"]) == pytest.approx(sum(p["loss"] for p in pairs), rel=1e-5)
    metrics = hook.metrics(ctx)
    assert metrics["probe_loss"] == pytest.approx(float(snap["loss"]), rel=1e-5)
    assert metrics["probe_loss/stage2_in->stage2_out"] == pytest.approx(pairs[1]["loss"], rel=1e-5)
    for value in snap.values():
        assert value.dtype != object  # storable with allow_pickle=False


def test_fsp_hook_errors(digits):
    teacher, student, ctx = make(digits, channels=(8, 32, 64))
    with pytest.raises(ValueError, match="channel counts"):
        FSPHook().setup(ctx)
    with pytest.raises(ValueError, match="needs a teacher"):
        FSPHook().setup(TrainContext(model=student, teacher=None, config=None, dataset=digits, device=torch.device("cpu")))
    _, _, ok_ctx = make(digits)
    with pytest.raises(ValueError, match="1 weights for 3 pairs"):
        FSPHook(weights=[1.0]).setup(ok_ctx)
    with pytest.raises(ValueError, match="student has no feature"):
        FSPHook(pairs=[["stage1_in", "fc1"]]).setup(ok_ctx)
    with pytest.raises(ValueError, match="hook 'fsp' has no option.*'pair'.*known: pairs"):
        build_hook({"name": "fsp", "pair": "auto"})


def test_fsp_hook_on_mlp_features(digits):
    torch.manual_seed(0)
    teacher = build_model("mlp", input_shape=(1, 8, 8), hidden=(24, 12)).eval()
    student = build_model("mlp", input_shape=(1, 8, 8), hidden=(24, 12))
    ctx = TrainContext(model=student, teacher=teacher, config=None, dataset=digits, device=torch.device("cpu"))
    hook = FSPHook(probe_size=8)
    hook.setup(ctx)
    assert hook.pairs == [("fc1", "fc2")]
    assert fsp_snapshot_pairs({f"fsp/{k}": v for k, v in hook.snapshot(ctx).items()})[0]["student"].shape == (24, 12)
