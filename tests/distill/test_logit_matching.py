"""Logit matching (Ba & Caruana 2014) and the high-temperature limit of Hinton's loss (Hinton et al.
2015, section 2.1, eqs. 2-4), against numpy and against the peers' building block.

Peers: torchdistill (github.com/yoshitomo-matsubara/torchdistill, read at commit 3e4373c) has no loss
class of its own for logit matching; its configs wrap ``torch.nn.MSELoss`` around the classifier
outputs of student and teacher (``SimpleLossWrapper`` in torchdistill/losses/mid_level.py, e.g.
configs/legacy/sample/glue/stsb/kd/...: ``MSELoss`` with ``reduction: 'sum'`` and ``factor: 1.0``), and
mmrazor-style ``Logits`` losses are ``F.mse_loss(out_s, out_t) * lambda`` (reduction 'mean'). Both are
torch's MSE, called below as those configs call it (no peer code copied), and compared with kdviz's
normalisation: logit_l2 = MSE_sum / (2B) = MSE_mean * K / 2.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kdviz.distill import soft_target_loss
from kdviz.distill.logit_matching import (
    center_logits, hinton_limit, limit_ratios, logit_l2_loss, scaled_hinton_losses,
)


def _logits(seed=0, batch=32, classes=10, scale=3.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, classes, generator=g, dtype=dtype) * scale,
            torch.randn(batch, classes, generator=g, dtype=dtype) * scale)


def numpy_ba_caruana(student: np.ndarray, teacher: np.ndarray) -> float:
    """1/(2T) sum_t ||g(x_t) - z_t||^2 (Ba & Caruana 2014, section 2.2), written out with a loop."""
    total = 0.0
    for s_row, t_row in zip(student, teacher):
        total += float(np.dot(s_row - t_row, s_row - t_row))
    return total / (2 * len(student))


def numpy_kl_times_t2(student: np.ndarray, teacher: np.ndarray, T: float) -> float:
    """T^2 * mean_b KL(softmax(t/T) || softmax(s/T)), from the definitions."""
    def log_softmax(z):
        z = z / T
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    log_p, log_q = log_softmax(teacher), log_softmax(student)
    return float(T * T * (np.exp(log_p) * (log_p - log_q)).sum(axis=1).mean())


def test_loss_matches_numpy_and_its_gradient_is_the_difference_over_b():
    s, t = _logits(seed=1, batch=7, classes=5)
    s.requires_grad_(True)
    loss = logit_l2_loss(s, t)
    assert float(loss.detach()) == pytest.approx(numpy_ba_caruana(s.detach().numpy(), t.numpy()), rel=1e-12)
    loss.backward()
    torch.testing.assert_close(s.grad, (s.detach() - t) / 7)  # dL/dz_s = (z_s - z_t) / B
    centred = logit_l2_loss(s.detach() + 5.0, t, center=True)  # a shift of every logit changes nothing
    c = lambda x: x - x.mean(axis=1, keepdims=True)  # noqa: E731
    assert float(centred) == pytest.approx(numpy_ba_caruana(c(s.detach().numpy()), c(t.numpy())), rel=1e-12)
    assert float(logit_l2_loss(s.detach() + 5.0, t)) > float(centred) + 5.0 ** 2 * 5 / 2 - 1e-9
    torch.testing.assert_close(center_logits(s.detach()).mean(dim=1), torch.zeros(7, dtype=torch.float64))


def test_the_teacher_side_gets_no_gradient():
    s, t = _logits(seed=2, batch=4, classes=3)
    s.requires_grad_(True)
    t.requires_grad_(True)
    logit_l2_loss(s, t, center=True).backward()
    assert t.grad is None and s.grad.abs().sum() > 0


@pytest.mark.parametrize("classes", [3, 10, 100])
def test_against_torch_mse_as_the_peers_configure_it(classes):
    s, t = _logits(seed=classes, batch=9, classes=classes, dtype=torch.float32)
    ours = float(logit_l2_loss(s, t))
    mse_sum = float(torch.nn.MSELoss(reduction="sum")(s, t))  # torchdistill's STS-B config, factor 1
    mse_mean = float(torch.nn.functional.mse_loss(s, t))  # the 'Logits' loss, lambda 1
    assert abs(ours - mse_sum / (2 * 9)) < 1e-6 * max(1.0, ours)
    assert abs(ours - mse_mean * classes / 2) < 1e-6 * max(1.0, ours)
    # and the high-T limit of Hinton's loss is half the peers' mean MSE on centred logits
    sc, tc = center_logits(s.double()), center_logits(t.double())
    limit = hinton_limit(sc, tc)
    assert abs(limit - float(torch.nn.functional.mse_loss(sc, tc)) / 2) < 1e-6 * limit


def test_scaled_hinton_losses_match_numpy_and_kdviz_kd_loss():
    s, t = _logits(seed=3, batch=6, classes=10)
    temperatures = [0.5, 1.0, 4.0, 20.0]
    ours = scaled_hinton_losses(s, t, temperatures)
    for T, value in zip(temperatures, ours):
        assert value == pytest.approx(numpy_kl_times_t2(s.numpy(), t.numpy(), T), rel=1e-10)
        assert value == pytest.approx(float(soft_target_loss(s, t, T)), rel=1e-12)  # the KD method's own loss


def first_order_coefficient(student: np.ndarray, teacher: np.ndarray) -> float:
    """c1 in ratio = 1 + c1/T + O(1/T^2), derived independently of the code under test.

    KL(softmax(w) || softmax(w + d)) is the Bregman divergence of logsumexp: 1/2 d'Sigma(w)d + 1/6 k3(w)[d,d,d]
    + O(d^4), with the cumulants of the uniform categorical at w -> 0: Sigma0[a,b] = mean_x(a~ b~) and
    k3[a,b,c] = mean_x(a~ b~ c~) (x~: x minus its mean over classes), and Sigma(w) ~ Sigma0 + k3[., ., w].
    With w = v/T and d = D/T (D = z - v), T^2 KL = 1/(2K) sum D~^2 + 1/(2TK) sum (D~^2 v~ + D~^3/3) + O(1/T^2)."""
    D = student - teacher
    Dc, vc = D - D.mean(axis=1, keepdims=True), teacher - teacher.mean(axis=1, keepdims=True)
    return float(((Dc ** 2 * vc).sum() + (Dc ** 3).sum() / 3) / (Dc ** 2).sum())


@pytest.mark.parametrize("seed", [0, 4])
def test_ratio_tends_to_one_for_zero_mean_logits_at_rate_one_over_t(seed):
    s, t = _logits(seed=seed)
    s, t = center_logits(s), center_logits(t)
    temperatures = np.array([1.0, 4.0, 20.0, 100.0, 1000.0, 10000.0])
    ratios = limit_ratios(s, t, temperatures)
    errors = np.abs(ratios - 1.0)
    assert np.all(np.diff(errors[2:]) < 0), ratios  # closer at every higher T from T = 20 on
    assert errors[0] > 0.3  # at T = 1 they are different losses
    c1 = first_order_coefficient(s.numpy(), t.numpy())
    # the bound at T = 100: |ratio - 1| <= (|c1| + 0.05) / T; here |c1| is 0.04 (seed 0) or 0.21 (seed 4)
    assert errors[3] <= (abs(c1) + 0.05) / 100, (ratios, c1)
    # and the error is the predicted third-order term, to O(1/T^2)
    assert abs(ratios[3] - (1 + c1 / 100)) < 2e-4
    assert abs(ratios[4] - (1 + c1 / 1000)) < 3e-6
    # the limit itself is the L2 loss over K, as Hinton's eq. 4 says: (z_i - v_i) / (N T^2) per class
    assert hinton_limit(s, t) == pytest.approx(float(logit_l2_loss(s, t)) / 10, rel=1e-12)


def test_without_zero_mean_only_the_centred_distance_is_the_limit():
    s, t = _logits(seed=5)
    s = s + torch.linspace(-4, 4, 32, dtype=torch.float64)[:, None]  # a different mean logit per image
    at_high_t = limit_ratios(s, t, [1e4])[0]
    assert at_high_t == pytest.approx(1.0, abs=1e-4)
    plain = limit_ratios(s, t, [1e4], center=False)[0]
    c = (s - t) - (s - t).mean(dim=1, keepdim=True)
    expected = float((c ** 2).sum() / ((s - t) ** 2).sum())  # ||c(d)||^2 / ||d||^2
    assert plain == pytest.approx(expected, rel=1e-4) and plain < 0.8


def test_numpy_input_float32_and_identical_logits():
    s, t = _logits(seed=6, batch=5, classes=4)
    r64 = limit_ratios(s.numpy(), t.numpy(), [100.0])
    r32 = limit_ratios(s.float().numpy(), t.float().numpy(), [100.0])  # computed in float64 either way
    assert r32[0] == pytest.approx(r64[0], rel=1e-5)
    assert np.isnan(limit_ratios(s, s + 2.0, [1.0, 10.0])).all()  # centred logits equal: no ratio


def test_bad_input_is_a_clear_value_error():
    s, t = _logits(batch=4, classes=3)
    with pytest.raises(ValueError, match="must have the same shape"):
        logit_l2_loss(s, t[:, :2])
    with pytest.raises(ValueError, match="student logits must be 2-D"):
        logit_l2_loss(s[0], t[0])
    with pytest.raises(ValueError, match="teacher logits: the batch is empty"):
        hinton_limit(s, t[:0])
    with pytest.raises(ValueError, match="temperature T must be a positive"):
        limit_ratios(s, t, [4.0, -1.0])
    with pytest.raises(ValueError, match="at least one temperature"):
        scaled_hinton_losses(s, t, [])
    with pytest.raises(ValueError, match="floating-point"):
        hinton_limit(np.ones((2, 3), dtype=int), np.ones((2, 3)))
