"""FSP matrix and loss (Yim et al. 2017, eqs. 1-2) against nested-loop numpy re-derivations."""
import math

import numpy as np
import pytest
import torch

from kdviz.distill import fsp_loss, fsp_matrix
from kdviz.distill.fsp import fsp_pair_losses, resolve_pairs, section_pairs
from kdviz.models import build_model


def loop_fsp(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """G_ij = sum_{s,t} a_i(s,t) b_j(s,t) / (h w), by explicit loops; a, b already the same h x w."""
    n, c1, h, w = a.shape
    c2 = b.shape[1]
    g = np.zeros((n, c1, c2))
    for x in range(n):
        for i in range(c1):
            for j in range(c2):
                total = 0.0
                for s in range(h):
                    for t in range(w):
                        total += float(a[x, i, s, t]) * float(b[x, j, s, t])
                g[x, i, j] = total / (h * w)
    return g


def numpy_max_pool(x: np.ndarray, k: int) -> np.ndarray:
    """Non-overlapping k x k max pooling (kernel = stride = k), as in the paper."""
    n, c, h, w = x.shape
    out = np.zeros((n, c, h // k, w // k))
    for s in range(h // k):
        for t in range(w // k):
            out[:, :, s, t] = x[:, :, s * k:(s + 1) * k, t * k:(t + 1) * k].max(axis=(2, 3))
    return out


def numpy_adaptive_max_pool(x: np.ndarray, oh: int, ow: int) -> np.ndarray:
    """Window i covers [floor(i H / oh), ceil((i + 1) H / oh)): every input row lands in a window."""
    n, c, h, w = x.shape
    out = np.zeros((n, c, oh, ow))
    for s in range(oh):
        r0, r1 = (s * h) // oh, math.ceil((s + 1) * h / oh)
        for t in range(ow):
            c0, c1 = (t * w) // ow, math.ceil((t + 1) * w / ow)
            out[:, :, s, t] = x[:, :, r0:r1, c0:c1].max(axis=(2, 3))
    return out


def rand(*shape, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).normal(size=shape)).double()


def test_fsp_matrix_equal_sizes_matches_loops():
    a, b = rand(2, 3, 4, 5, seed=1), rand(2, 4, 4, 5, seed=2)
    g = fsp_matrix(a, b)
    assert g.shape == (2, 3, 4)
    np.testing.assert_allclose(g.numpy(), loop_fsp(a.numpy(), b.numpy()), rtol=1e-10, atol=1e-12)


def test_fsp_matrix_pools_larger_map_by_integer_ratio():
    a, b = rand(2, 3, 8, 8, seed=3), rand(2, 2, 4, 4, seed=4)
    expected = loop_fsp(numpy_max_pool(a.numpy(), 2), b.numpy())
    np.testing.assert_allclose(fsp_matrix(a, b).numpy(), expected, rtol=1e-10, atol=1e-12)
    # the pooled map may be either argument
    expected_t = loop_fsp(b.numpy(), numpy_max_pool(a.numpy(), 2))
    np.testing.assert_allclose(fsp_matrix(b, a).numpy(), expected_t, rtol=1e-10, atol=1e-12)


def test_fsp_matrix_28_to_14_and_7_like_mnist_resnet():
    a, b = rand(1, 2, 28, 28, seed=5), rand(1, 3, 7, 7, seed=6)
    expected = loop_fsp(numpy_max_pool(a.numpy(), 4), b.numpy())
    np.testing.assert_allclose(fsp_matrix(a, b).numpy(), expected, rtol=1e-10, atol=1e-12)


def test_fsp_matrix_non_integer_ratio_uses_covering_windows():
    a, b = rand(2, 3, 7, 7, seed=7), rand(2, 2, 4, 4, seed=8)
    expected = loop_fsp(numpy_adaptive_max_pool(a.numpy(), 4, 4), b.numpy())
    np.testing.assert_allclose(fsp_matrix(a, b).numpy(), expected, rtol=1e-10, atol=1e-12)


def test_fsp_matrix_pools_each_side_to_the_smaller_size():
    a, b = rand(1, 2, 6, 3, seed=9), rand(1, 2, 3, 6, seed=10)
    pa = numpy_adaptive_max_pool(a.numpy(), 3, 3)
    pb = numpy_adaptive_max_pool(b.numpy(), 3, 3)
    np.testing.assert_allclose(fsp_matrix(a, b).numpy(), loop_fsp(pa, pb), rtol=1e-10, atol=1e-12)


def test_fsp_matrix_mlp_features_are_1x1_maps():
    a, b = rand(3, 5, seed=11), rand(3, 4, seed=12)
    g = fsp_matrix(a, b)
    expected = np.array([[[a[x, i].item() * b[x, j].item() for j in range(4)] for i in range(5)] for x in range(3)])
    np.testing.assert_allclose(g.numpy(), expected, rtol=1e-12)


def test_fsp_matrix_mixes_mlp_and_conv_by_global_max_pool():
    a, b = rand(2, 3, 4, 4, seed=13), rand(2, 5, seed=14)
    pooled = a.numpy().max(axis=(2, 3))[:, :, None, None]
    expected = loop_fsp(pooled, b.numpy()[:, :, None, None])
    np.testing.assert_allclose(fsp_matrix(a, b).numpy(), expected, rtol=1e-10)


@pytest.mark.parametrize("a_shape,b_shape,match", [
    ((2, 3, 4), (2, 3, 4, 4), "4-D"),
    ((2, 3, 4, 4, 1), (2, 3, 4, 4), "4-D"),
    ((2, 3, 4, 4), (5,), "2-D"),
    ((2, 3, 4, 4), (3, 3, 4, 4), "batch sizes differ"),
    ((2, 3), (4, 3), "batch sizes differ"),
])
def test_fsp_matrix_rejects_bad_shapes(a_shape, b_shape, match):
    with pytest.raises(ValueError, match=match):
        fsp_matrix(torch.zeros(a_shape), torch.zeros(b_shape))


def test_fsp_matrix_rejects_non_tensors():
    with pytest.raises(TypeError, match="torch.Tensor"):
        fsp_matrix(np.zeros((2, 3, 4, 4)), torch.zeros(2, 3, 4, 4))


def numpy_fsp_loss(students, teachers, weights):
    n = students[0].shape[0]
    total = 0.0
    for x in range(n):
        for lam, gs, gt in zip(weights, students, teachers):
            sq = 0.0
            for i in range(gs.shape[1]):
                for j in range(gs.shape[2]):
                    sq += (gt[x, i, j] - gs[x, i, j]) ** 2
            total += lam * sq
    return total / n


def test_fsp_loss_matches_formula_with_weights_and_default():
    shapes = [(4, 3, 5), (4, 2, 2)]
    s = [rand(*sh, seed=20 + k) for k, sh in enumerate(shapes)]
    t = [rand(*sh, seed=30 + k) for k, sh in enumerate(shapes)]
    sn, tn = [x.numpy() for x in s], [x.numpy() for x in t]
    assert fsp_loss(s, t).item() == pytest.approx(numpy_fsp_loss(sn, tn, [1.0, 1.0]), rel=1e-12)
    assert fsp_loss(s, t, weights=[0.3, 2.0]).item() == pytest.approx(numpy_fsp_loss(sn, tn, [0.3, 2.0]), rel=1e-12)
    per_pair = fsp_pair_losses(s, t).numpy()
    assert per_pair[1] == pytest.approx(numpy_fsp_loss([sn[1]], [tn[1]], [1.0]), rel=1e-12)
    assert fsp_loss(s[0], t[0]).item() == pytest.approx(numpy_fsp_loss(sn[:1], tn[:1], [1.0]), rel=1e-12)


def test_fsp_loss_gradient_reaches_student_only():
    s = rand(3, 2, 4, seed=40).requires_grad_()
    t = rand(3, 2, 4, seed=41).requires_grad_()
    fsp_loss([s], [t], weights=[0.5]).backward()
    assert t.grad is None
    # d/dS of 0.5 * (1/N) sum ||T - S||^2 = -(T - S) / N
    np.testing.assert_allclose(s.grad.numpy(), -(t - s).detach().numpy() / 3, rtol=1e-12)


def test_fsp_loss_errors():
    with pytest.raises(ValueError, match="channel counts.*1x1"):
        fsp_loss([torch.zeros(2, 3, 4)], [torch.zeros(2, 3, 5)])
    with pytest.raises(ValueError, match="2 student matrices but 1 teacher"):
        fsp_loss([torch.zeros(2, 3, 4)] * 2, [torch.zeros(2, 3, 4)])
    with pytest.raises(ValueError, match="1 weights for 2"):
        fsp_loss([torch.zeros(2, 3, 4)] * 2, [torch.zeros(2, 3, 4)] * 2, weights=[1.0])
    with pytest.raises(ValueError, match="non-negative"):
        fsp_loss([torch.zeros(2, 3, 4)], [torch.zeros(2, 3, 4)], weights=[-1.0])
    with pytest.raises(ValueError, match=r"\(B, C1, C2\)"):
        fsp_loss([torch.zeros(2, 3)], [torch.zeros(2, 3)])
    with pytest.raises(TypeError, match="non-empty list"):
        fsp_loss([], [])


def test_section_pairs_for_resnet_and_mlp():
    resnet = build_model("resnet", input_shape=(1, 8, 8))
    assert section_pairs(resnet.feature_names) == [
        ("stage1_in", "stage1_out"), ("stage2_in", "stage2_out"), ("stage3_in", "stage3_out")]
    assert section_pairs(build_model("mlp", hidden=(20, 10)).feature_names) == [("fc1", "fc2")]


def test_resolve_pairs_checks_names():
    names = ("stage1_in", "stage1_out", "pool")
    assert resolve_pairs("auto", names, names) == [("stage1_in", "stage1_out")]
    assert resolve_pairs([["stage1_in", "pool"]], names, names) == [("stage1_in", "pool")]
    with pytest.raises(ValueError, match="teacher has no feature 'pool'"):
        resolve_pairs([["stage1_in", "pool"]], names, names[:2])
    with pytest.raises(ValueError, match="'auto' or a list"):
        resolve_pairs("all", names, names)
    with pytest.raises(ValueError, match=r"\[in_name, out_name\]"):
        resolve_pairs([["stage1_in"]], names, names)


def test_deep_teacher_and_shallow_student_have_matching_fsp_shapes():
    torch.manual_seed(0)
    teacher = build_model("resnet", input_shape=(1, 8, 8), blocks_per_stage=(3, 3, 3))
    student = build_model("resnet", input_shape=(1, 8, 8), blocks_per_stage=(1, 1, 1))
    x = torch.rand(4, 1, 8, 8)
    ft, fs = teacher.forward_with_features(x)[1], student.forward_with_features(x)[1]
    for a, b in section_pairs(student.feature_names):
        gt, gs = fsp_matrix(ft[a], ft[b]), fsp_matrix(fs[a], fs[b])
        assert gt.shape == gs.shape == (4, ft[a].shape[1], ft[b].shape[1])
    assert fsp_loss([fsp_matrix(fs["stage2_in"], fs["stage2_out"])],
                    [fsp_matrix(ft["stage2_in"], ft["stage2_out"])]).item() > 0
