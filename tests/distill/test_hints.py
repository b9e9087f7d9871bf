"""FitNets hints (Romero et al. 2015, eq. 3): regressor shapes and the loss against a manual computation."""
import types

import numpy as np
import pytest
import torch

from kdviz.data import load_dataset
from kdviz.methods.hints import HintsHook
from kdviz.distill.hints import HintRegressor, hint_loss
from kdviz.engine.hooks import HOOKS, StepBatch, TrainContext, build_hook
from kdviz.models import build_model


def test_regressor_1x1_conv_for_equal_maps():
    r = HintRegressor((16, 8, 8), (32, 8, 8))
    assert r.kind == "conv" and r.map.weight.shape == (32, 16, 1, 1)
    assert r(torch.rand(3, 16, 8, 8)).shape == (3, 32, 8, 8)


def test_regressor_valid_conv_shrinks_larger_guided_map():
    r = HintRegressor((16, 8, 8), (64, 2, 2))
    assert r.map.weight.shape == (64, 16, 7, 7)  # kernel N_g - N_h + 1 (FitNets section 2.2)
    assert r(torch.rand(2, 16, 8, 8)).shape == (2, 64, 2, 2)


def test_regressor_linear_for_fully_connected_features():
    r = HintRegressor((20,), (30,))
    assert r.kind == "linear" and r.map.weight.shape == (30, 20)
    mixed = HintRegressor((4, 2, 2), (6,))
    assert mixed.map.weight.shape == (6, 16) and mixed(torch.rand(5, 4, 2, 2)).shape == (5, 6)


def test_regressor_output_matches_manual_conv_and_relu():
    torch.manual_seed(0)
    r = HintRegressor((3, 4, 4), (2, 3, 3)).double()
    v = torch.randn(2, 3, 4, 4, dtype=torch.double)
    w, b = r.map.weight.detach().numpy(), r.map.bias.detach().numpy()
    vn = v.numpy()
    expected = np.zeros((2, 2, 3, 3))
    for n in range(2):
        for o in range(2):
            for s in range(3):
                for t in range(3):
                    expected[n, o, s, t] = max(0.0, b[o] + (w[o] * vn[n, :, s:s + 2, t:t + 2]).sum())
    np.testing.assert_allclose(r(v).detach().numpy(), expected, rtol=1e-10, atol=1e-12)
    linear = HintRegressor((3, 4, 4), (2, 3, 3), activation="none")
    assert (linear(torch.randn(4, 3, 4, 4)) < 0).any()


def test_regressor_errors():
    with pytest.raises(ValueError, match="smaller than the teacher's hint map"):
        HintRegressor((16, 2, 2), (16, 4, 4))
    with pytest.raises(ValueError, match="activation"):
        HintRegressor((4,), (4,), activation="tanh")
    with pytest.raises(ValueError, match=r"\(C, H, W\) or \(D,\)"):
        HintRegressor((4, 4), (4,))
    with pytest.raises(ValueError, match="regressor expects"):
        HintRegressor((4,), (4,))(torch.rand(2, 5))


def test_hint_loss_is_half_squared_error_summed_per_sample_mean_over_batch():
    rng = np.random.default_rng(0)
    u, r = rng.normal(size=(3, 2, 2, 2)), rng.normal(size=(3, 2, 2, 2))
    manual = 0.0
    for n in range(3):
        manual += 0.5 * sum((u[n].ravel()[k] - r[n].ravel()[k]) ** 2 for k in range(8))
    manual /= 3
    got = hint_loss(torch.from_numpy(u), torch.from_numpy(r))
    assert got.item() == pytest.approx(manual, rel=1e-12)
    with pytest.raises(ValueError, match="same shape"):
        hint_loss(torch.zeros(2, 3), torch.zeros(2, 4))


def make_ctx(student, teacher, dataset):
    return TrainContext(model=student, teacher=teacher, config=types.SimpleNamespace(), dataset=dataset,
                        device=torch.device("cpu"))


def test_hints_hook_trains_regressor_and_student_not_teacher():
    torch.manual_seed(0)
    data = load_dataset("digits")
    teacher = build_model("resnet", input_shape=(1, 8, 8), blocks_per_stage=(2, 2, 2)).eval()
    student = build_model("resnet", input_shape=(1, 8, 8), channels=(8, 16, 32))
    hook = build_hook({"name": "hints", "student_layer": "stage2_out", "teacher_layer": "stage3_out", "weight": 2.0})
    assert isinstance(hook, HintsHook) and "hints" in HOOKS and hook.needs_features
    ctx = make_ctx(student, teacher, data)
    hook.setup(ctx)
    params = hook.extra_parameters()
    assert [tuple(p.shape) for p in params] == [(64, 16, 3, 3), (64,)]  # 4x4 guided -> 2x2 hint
    x = data.train_images[:16]
    logits, fs = student.forward_with_features(x)
    with torch.no_grad():
        ft = teacher.forward_with_features(x)[1]
    batch = StepBatch(images=x, labels=data.train_labels[:16], indices=torch.arange(16), logits=logits,
                      features=fs, teacher_features=ft)
    term = hook.loss_terms(ctx, batch)["hints"]
    expected = 2.0 * 0.5 * ((ft["stage3_out"] - hook.regressor(fs["stage2_out"])) ** 2).sum() / 16
    assert term.item() == pytest.approx(expected.item(), rel=1e-5)
    term.backward()
    assert all(p.grad is not None for p in params)
    assert student.stage2[0].conv1.weight.grad.abs().sum() > 0
    assert student.stage3[0].conv1.weight.grad is None  # beyond the guided layer: untouched
    assert all(p.grad is None for p in teacher.parameters())
    assert set(hook.metrics(ctx)) == {"probe_loss"}


def test_hints_hook_state_round_trip_and_errors():
    data = load_dataset("digits")
    teacher = build_model("resnet", input_shape=(1, 8, 8)).eval()
    student = build_model("resnet", input_shape=(1, 8, 8))
    hook = HintsHook("stage1_out", "stage1_out")
    with pytest.raises(RuntimeError, match="setup"):
        hook.extra_parameters()
    hook.setup(make_ctx(student, teacher, data))
    state = hook.state_dict()
    assert set(state) == {"map.weight", "map.bias"}
    fresh = HintsHook("stage1_out", "stage1_out")
    fresh.load_state_dict(state)  # before setup: kept until the regressor exists
    fresh.setup(make_ctx(student, teacher, data))
    torch.testing.assert_close(fresh.regressor.map.weight, state["map.weight"])
    with pytest.raises(ValueError, match="needs a teacher"):
        HintsHook("stage1_out", "stage1_out").setup(make_ctx(student, None, data))
    with pytest.raises(ValueError, match="teacher has no feature 'fc9'"):
        HintsHook("stage1_out", "fc9").setup(make_ctx(student, teacher, data))
