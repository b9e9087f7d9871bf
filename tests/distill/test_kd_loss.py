"""kd_loss against Hinton et al. 2015 section 2, each quantity re-derived with numpy."""
import numpy as np
import pytest
import torch

from kdviz.distill import kd_loss, soft_target_loss


def np_softmax(z, T):
    z = np.asarray(z, dtype=np.float64) / T
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_kl_batchmean(p, q):
    return float(np.sum(p * (np.log(p) - np.log(q))) / p.shape[0])


def np_cross_entropy(z, y):
    logp = np.log(np_softmax(z, 1.0))
    return float(-logp[np.arange(len(y)), y].mean())


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(6, 10, generator=g, dtype=torch.float64) * 3
    t = torch.randn(6, 10, generator=g, dtype=torch.float64) * 3
    y = torch.randint(0, 10, (6,), generator=g)
    return s, t, y


@pytest.mark.parametrize("T", [1.0, 2.0, 4.0, 20.0])
@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_parts_match_formula_with_t_squared_for_every_alpha(batch, T, alpha):
    s, t, y = batch
    parts = kd_loss(s, t, y, T, alpha)
    p, q = np_softmax(t.numpy(), T), np_softmax(s.numpy(), T)
    assert parts.soft.item() == pytest.approx(alpha * T * T * np_kl_batchmean(p, q), rel=1e-10, abs=1e-12)
    assert parts.hard.item() == pytest.approx((1 - alpha) * np_cross_entropy(s.numpy(), y.numpy()), rel=1e-10, abs=1e-12)
    assert parts.total.item() == pytest.approx(parts.soft.item() + parts.hard.item(), rel=1e-12)


def test_t_squared_scaling_is_kept(batch):
    s, t, y = batch
    unscaled = np_kl_batchmean(np_softmax(t.numpy(), 8.0), np_softmax(s.numpy(), 8.0))
    assert soft_target_loss(s, t, 8.0).item() == pytest.approx(64.0 * unscaled, rel=1e-10)


@pytest.mark.parametrize("T", [1.0, 3.0, 10.0])
def test_soft_gradient_is_T_times_q_minus_p_over_batch(batch, T):
    s, t, _ = batch
    s = s.clone().requires_grad_(True)
    kd_loss(s, t, None, T, alpha=1.0).total.backward()
    expected = T * (np_softmax(s.detach().numpy(), T) - np_softmax(t.numpy(), T)) / s.shape[0]
    np.testing.assert_allclose(s.grad.numpy(), expected, rtol=1e-9, atol=1e-12)


def test_soft_gradient_matches_finite_differences(batch):
    s, t, _ = batch
    T, eps = 4.0, 1e-6
    s_req = s.clone().requires_grad_(True)
    soft_target_loss(s_req, t, T).backward()
    numeric = np.zeros_like(s.numpy())
    for i in range(s.shape[0]):
        for j in range(s.shape[1]):
            plus, minus = s.clone(), s.clone()
            plus[i, j] += eps
            minus[i, j] -= eps
            numeric[i, j] = (soft_target_loss(plus, t, T).item() - soft_target_loss(minus, t, T).item()) / (2 * eps)
    np.testing.assert_allclose(s_req.grad.numpy(), numeric, rtol=1e-5, atol=1e-9)


def test_high_temperature_limit_is_logit_matching():
    """Hinton 2.1: for zero-mean logits and large T, the gradient tends to (z - v) / (N T^2) per sample;
    with the T^2 factor and the batch mean, T^2 * KL -> sum_i (z_i - v_i)^2 / (2 N), gradient (z - v) / (N B)."""
    g = torch.Generator().manual_seed(3)
    z = torch.randn(4, 10, generator=g, dtype=torch.float64)
    v = torch.randn(4, 10, generator=g, dtype=torch.float64)
    z, v = z - z.mean(1, keepdim=True), v - v.mean(1, keepdim=True)
    N, B, T = 10, 4, 1e4
    z_req = z.clone().requires_grad_(True)
    loss = soft_target_loss(z_req, v, T)
    loss.backward()
    np.testing.assert_allclose(z_req.grad.numpy(), ((z - v) / (N * B)).numpy(), rtol=1e-3, atol=1e-9)
    matching = float(((z - v) ** 2).sum() / (2 * N * B))
    assert loss.item() == pytest.approx(matching, rel=1e-3)


def test_soft_part_zero_when_student_equals_teacher(batch):
    _, t, y = batch
    parts = kd_loss(t.clone(), t, y, 5.0, 0.7)
    assert parts.soft.item() == pytest.approx(0.0, abs=1e-12)


def test_teacher_gets_no_gradient(batch):
    s, t, y = batch
    t = t.clone().requires_grad_(True)
    kd_loss(s.clone().requires_grad_(True), t, y, 2.0, 0.5).total.backward()
    assert t.grad is None


def test_bad_inputs(batch):
    s, t, y = batch
    with pytest.raises(ValueError, match="alpha"):
        kd_loss(s, t, y, 2.0, 1.5)
    with pytest.raises(ValueError, match="targets"):
        kd_loss(s, t, None, 2.0, 0.5)
    with pytest.raises(ValueError, match="teacher_logits"):
        kd_loss(s, None, y, 2.0, 0.5)
    with pytest.raises(ValueError, match="temperature"):
        kd_loss(s, t, y, 0.0, 0.5)
    with pytest.raises(ValueError, match="same shape"):
        kd_loss(s, t[:, :5], y, 2.0, 0.5)
