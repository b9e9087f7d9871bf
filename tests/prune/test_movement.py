"""Movement pruning (Sanh, Wolf, Rush 2020, section 3) against an independent numpy computation of
the whole loop (forward with W ⊙ M, hand-derived gradients, SGD on the kept weights, the score
update S -= alpha * dL/dW' * W, Top_v re-masking), and the straight-through gradient against autograd."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from kdviz.prune.movement import (MovementPruner, magnitude_agreement, min_kept, score_update, threshold_mask,
                                  top_v_mask)


def numpy_top_v(scores: np.ndarray, sparsity: float) -> np.ndarray:
    flat = scores.astype(np.float64).ravel()
    keep = np.ones(flat.size, dtype=bool)
    keep[np.argsort(flat, kind="stable")[: int(math.floor(sparsity * flat.size + 0.5))]] = False
    return keep.reshape(scores.shape)


def test_scores_and_weights_match_a_numpy_reimplementation_step_by_step():
    torch.manual_seed(3)
    rng = np.random.default_rng(7)
    layer = nn.Linear(6, 4)
    model = nn.Sequential(layer)
    x, y = rng.normal(size=(16, 6)).astype(np.float32), rng.normal(size=(16, 4)).astype(np.float32)
    lr, score_lr, sparsity = 0.05, 0.7, 0.4
    pruner = MovementPruner(model)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    w_np = layer.weight.detach().numpy().astype(np.float64).copy()
    b_np = layer.bias.detach().numpy().astype(np.float64).copy()
    s_np, m_np = np.zeros_like(w_np), np.ones_like(w_np, dtype=bool)
    for step in range(12):
        out = model(torch.from_numpy(x))
        loss = ((out - torch.from_numpy(y)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        pruner.accumulate(model, score_lr)
        pruner.remask(sparsity=sparsity)
        pruner.apply(model)
        # numpy: a = x (W ⊙ M)^T + b, L = mean((a - y)^2), dL/da = 2 (a - y) / (B * K)
        a = x @ (w_np * m_np).T + b_np
        d_a = 2.0 * (a - y) / a.size
        grad_w_eff, grad_b = d_a.T @ x, d_a.sum(axis=0)
        s_np = s_np - score_lr * grad_w_eff * w_np  # eq. of section 3: S -= alpha * dL/dW' * W
        w_np = np.where(m_np, w_np - lr * grad_w_eff, w_np)  # dL/dW = dL/dW' ⊙ M: pruned weights stay
        b_np = b_np - lr * grad_b
        m_np = numpy_top_v(s_np, sparsity)
        np.testing.assert_allclose(pruner.scores["0.weight"].numpy(), s_np, atol=1e-6, err_msg=f"step {step}")
        np.testing.assert_array_equal(pruner.masks["0.weight"].numpy(), m_np)
        np.testing.assert_allclose(layer.weight.detach().numpy(), w_np * m_np, atol=1e-6)
    assert 0 < (~m_np).sum() == round(0.4 * 24)
    # the scores of pruned weights still move (their gradient w.r.t. W' exists), their values do not
    assert np.all(np.abs(s_np[~m_np]) > 0)


class StraightThroughTopV(torch.autograd.Function):
    """Autograd's view of hard movement: forward M = Top_v(S), backward the identity (Bengio et al. 2013)."""

    @staticmethod
    def forward(ctx, scores, sparsity):
        return top_v_mask(scores, sparsity).to(scores.dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad, None


def test_score_step_equals_minus_lr_times_the_straight_through_gradient():
    torch.manual_seed(0)
    w = torch.randn(5, 7)
    scores = torch.randn(5, 7, requires_grad=True)
    x, target = torch.randn(9, 7), torch.randn(9, 5)
    w_eff = w * StraightThroughTopV.apply(scores, 0.6)
    w_leaf = w_eff.detach().requires_grad_(True)
    nn.functional.mse_loss(x @ w_leaf.T, target).backward()
    nn.functional.mse_loss(x @ w_eff.T, target).backward()
    updated = score_update(scores.detach(), w, w_leaf.grad, score_lr=0.3)
    torch.testing.assert_close(updated, scores.detach() - 0.3 * scores.grad, atol=1e-7, rtol=0)


def test_soft_movement_penalty_is_the_gradient_of_lambda_sum_sigmoid():
    scores = torch.tensor([[-2.0, 0.0, 1.5]], requires_grad=True)
    (0.25 * torch.sigmoid(scores).sum()).backward()
    zero = torch.zeros(1, 3)
    torch.testing.assert_close(score_update(scores.detach(), zero, zero, 2.0, penalty=0.25),
                               scores.detach() - 2.0 * scores.grad)


def test_top_v_mask_prunes_the_exact_count_and_breaks_ties_by_position():
    scores = torch.tensor([[0.0, 0.0, 1.0], [0.0, -1.0, 2.0]])
    mask = top_v_mask(scores, 0.5)  # floor(0.5 * 6 + 0.5) = 3 pruned: -1, then the first two zeros
    assert mask.tolist() == [[False, False, True], [True, False, True]]
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        top_v_mask(scores, 1.0)


def test_threshold_mask_keeps_sigmoid_above_tau_and_never_empties_a_layer():
    scores = torch.tensor([-3.0, -0.1, 0.2, 4.0])
    assert threshold_mask(scores, 0.5).tolist() == [False, False, True, True]
    assert threshold_mask(scores, 0.0).all()
    low = torch.full((300,), -10.0)
    low[17] = -9.0
    kept = threshold_mask(low, 0.9)
    assert int(kept.sum()) == min_kept(300) == 2 and bool(kept[17])
    with pytest.raises(ValueError, match="threshold"):
        threshold_mask(scores, 1.2)


def test_state_dict_round_trip_and_a_misshapen_state_is_named():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    pruner = MovementPruner(model)
    pruner.scores["0.weight"] = torch.arange(12.0).reshape(3, 4)
    pruner.remask(sparsity=0.5)
    fresh = MovementPruner(model)
    fresh.load_state_dict(pruner.state_dict())
    assert torch.equal(fresh.masks["0.weight"], pruner.masks["0.weight"])
    assert torch.equal(fresh.scores["0.weight"], pruner.scores["0.weight"])
    bad = pruner.state_dict()
    bad["score/2.weight"] = torch.zeros(5)
    with pytest.raises(ValueError, match="score/2.weight"):
        fresh.load_state_dict(bad)
    with pytest.raises(ValueError, match="hard movement pruning needs a sparsity"):
        pruner.remask()
    with pytest.raises(ValueError, match="movement-pruning mode 'medium'"):
        MovementPruner(model, mode="medium")


def test_magnitude_agreement_counts_the_shared_kept_weights():
    abs_w = np.array([0.9, 0.1, 0.5, 0.3])
    assert magnitude_agreement(abs_w, np.array([True, False, True, False])) == 1.0
    assert magnitude_agreement(abs_w, np.array([False, True, False, True])) == 0.0
    assert magnitude_agreement(abs_w, np.array([True, True, False, False])) == 0.5
