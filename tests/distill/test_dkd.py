"""Decoupled KD (Zhao et al., CVPR 2022): eq. 7's identity, the parts recomputed by hand, and the numbers
of mdistiller's ``dkd_loss`` (megvii-research/mdistiller, mdistiller/distillers/DKD.py, read at commit
a08d46f) re-implemented here independently in its own style: p-hat as softmax(z/T - 1000 onehot(t)),
``F.kl_div`` summed over the batch, times T^2, divided by B.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdviz.distill.dkd import (binary_log_probs, dkd_loss, dkd_parts, nckd, nckd_per_sample, non_target_log_probs,
                               tckd, tckd_per_sample)
from kdviz.distill.kd_loss import soft_target_loss

TEMPERATURES = (0.5, 1.0, 4.0, 10.0)


def random_batch(seed: int, batch: int = 32, classes: int = 10, scale: float = 4.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(batch, classes, generator=g, dtype=dtype) * scale
    teacher = torch.randn(batch, classes, generator=g, dtype=dtype) * scale
    targets = torch.randint(0, classes, (batch,), generator=g)
    return student, teacher, targets


def mdistiller_style_dkd(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, alpha: float, beta: float,
                         T: float) -> tuple[float, float, float]:
    """mdistiller's dkd_loss written from its description: (alpha TCKD + beta NCKD, TCKD, NCKD)."""
    onehot = F.one_hot(y, s.shape[1]).to(s.dtype)
    ps, pt = F.softmax(s / T, dim=1), F.softmax(t / T, dim=1)
    bs = torch.stack([(ps * onehot).sum(1), (ps * (1 - onehot)).sum(1)], dim=1)
    bt = torch.stack([(pt * onehot).sum(1), (pt * (1 - onehot)).sum(1)], dim=1)
    tc = F.kl_div(torch.log(bs), bt, reduction="sum") * T ** 2 / y.shape[0]
    nc = F.kl_div(F.log_softmax(s / T - 1000.0 * onehot, dim=1), F.softmax(t / T - 1000.0 * onehot, dim=1),
                  reduction="sum") * T ** 2 / y.shape[0]
    return float(alpha * tc + beta * nc), float(tc), float(nc)


@pytest.mark.parametrize("T", TEMPERATURES)
def test_eq7_kd_is_tckd_plus_teacher_weighted_nckd(T):
    for seed in range(3):
        s, t, y = random_batch(seed)
        parts = dkd_parts(s, t, y, T)
        assert parts.residual.abs().max() < 1e-6
        # KD here is Hinton's soft loss (T^2 KL, batch mean) of kdviz.distill.kd_loss
        assert float(parts.kd.mean()) == pytest.approx(float(soft_target_loss(s, t, T)), rel=1e-9)
        p_t = F.softmax(t / T, dim=1).gather(1, y[:, None]).squeeze(1)
        np.testing.assert_allclose(parts.teacher_target.numpy(), p_t.numpy(), rtol=1e-12)
        np.testing.assert_allclose(parts.nckd_weight.numpy(), 1 - p_t.numpy(), rtol=1e-9, atol=1e-15)
        # the weight is the TEACHER's: using the student's p_t breaks the identity
        q_t = F.softmax(s / T, dim=1).gather(1, y[:, None]).squeeze(1)
        assert (parts.kd - (parts.tckd + (1 - q_t) * parts.nckd)).abs().max() > 1e-3


@pytest.mark.parametrize("T", TEMPERATURES)
def test_matches_mdistiller_dkd_loss(T):
    for seed, (alpha, beta) in enumerate([(1.0, 8.0), (0.5, 2.0), (2.0, 0.5)]):
        s, t, y = random_batch(10 + seed, batch=16, classes=7, scale=3.0)
        total, tc, nc = mdistiller_style_dkd(s, t, y, alpha, beta, T)
        assert abs(float(tckd(s, t, y, T)) - tc) < 1e-6
        assert abs(float(nckd(s, t, y, T)) - nc) < 1e-6
        assert abs(float(dkd_loss(s, t, y, alpha, beta, T)) - total) < 1e-6
        assert total > 0.01  # not a comparison of zeros
        # in float32 (as trained) the two agree to float32 rounding: mdistiller's 1 - p_t as a sum of
        # the other probabilities loses digits that our logsumexp keeps
        s32, t32 = s.float(), t.float()
        total32 = mdistiller_style_dkd(s32, t32, y, alpha, beta, T)[0]
        assert float(dkd_loss(s32, t32, y, alpha, beta, T)) == pytest.approx(total32, rel=1e-5)


def test_parts_recomputed_by_hand_with_numpy():
    s, t, y = random_batch(5, batch=4, classes=5)
    T = 3.0

    def softmax(z):
        e = np.exp(z - z.max())
        return e / e.sum()

    for i in range(4):
        ps, pt, k = softmax(s[i].numpy() / T), softmax(t[i].numpy() / T), int(y[i])
        bt, bs = np.array([pt[k], 1 - pt[k]]), np.array([ps[k], 1 - ps[k]])
        others = [j for j in range(5) if j != k]
        ht, hs = pt[others] / pt[others].sum(), ps[others] / ps[others].sum()
        assert float(tckd_per_sample(s, t, y, T)[i]) == pytest.approx(T * T * (bt * np.log(bt / bs)).sum(), rel=1e-9)
        assert float(nckd_per_sample(s, t, y, T)[i]) == pytest.approx(T * T * (ht * np.log(ht / hs)).sum(), rel=1e-9)
        np.testing.assert_allclose(non_target_log_probs(s, y, T)[i].exp().numpy(), hs, rtol=1e-12)
        np.testing.assert_allclose(binary_log_probs(s, y, T)[i].exp().numpy(), bs, rtol=1e-9)


def test_t_squared_scaling_and_zero_when_student_equals_teacher():
    s, t, y = random_batch(7)
    for T in (2.0, 8.0):  # T^2 times the plain KL of the same tempered distributions
        plain_t = float(tckd(s, t, y, T)) / T ** 2
        b_s, b_t = binary_log_probs(s, y, T), binary_log_probs(t, y, T)
        assert plain_t == pytest.approx(float((b_t.exp() * (b_t - b_s)).sum(1).mean()), rel=1e-9)
    assert float(tckd(t, t, y, 4.0)) == pytest.approx(0.0, abs=1e-12)
    assert float(nckd(t, t, y, 4.0)) == pytest.approx(0.0, abs=1e-12)
    # a confident teacher: p_t near 1 keeps 1 - p_t exact (from logsumexp), not rounded to 0
    sharp = torch.tensor([[40.0, 0.0, 0.0]], dtype=torch.float64)
    parts = dkd_parts(torch.zeros(1, 3, dtype=torch.float64), sharp, torch.tensor([0]), 1.0)
    assert float(parts.nckd_weight[0]) == pytest.approx(2 * np.exp(-40.0), rel=1e-9)


def test_gradients_reach_the_student_only():
    s, t, y = random_batch(3, dtype=torch.float32)
    s.requires_grad_(True)
    t.requires_grad_(True)
    loss = dkd_loss(s, t, y, 1.0, 8.0, 4.0)
    loss.backward()
    assert torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0 and t.grad is None
    # NCKD ignores the target logit; TCKD sees it
    s2 = s.detach().clone().requires_grad_(True)
    nckd(s2, t.detach(), y, 4.0).backward()
    assert float(s2.grad.gather(1, y[:, None]).abs().max()) == 0.0


def test_bad_inputs_name_the_problem():
    s, t, y = random_batch(0, batch=4, classes=3)
    with pytest.raises(ValueError, match="same shape"):
        tckd(s, t[:, :2], y, 4.0)
    with pytest.raises(ValueError, match="at least 2 classes"):
        nckd(s[:, :1], t[:, :1], torch.zeros(4, dtype=torch.long), 4.0)
    with pytest.raises(ValueError, match="class indices in 0..2"):
        tckd(s, t, torch.tensor([0, 1, 2, 3]), 4.0)
    with pytest.raises(ValueError, match="temperature T must be a positive"):
        nckd(s, t, y, 0.0)
    with pytest.raises(ValueError, match="beta must be finite and >= 0"):
        dkd_loss(s, t, y, 1.0, -1.0, 4.0)
    with pytest.raises(ValueError, match="alpha must be a number"):
        dkd_loss(s, t, y, "1", 8.0, 4.0)
