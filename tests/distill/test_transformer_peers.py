"""kdviz's TinyBERT losses beside the peers' conventions, recomputed here from their published
formulas (read, not copied): TinyBERT's task_distill.py (huawei-noah/Pretrained-Language-Model),
TextBrewer's losses.py (airaria/TextBrewer) and vit-explain's rollout (jacobgil/vit-explain)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kdviz.distill import transformer as tb


def _pair(seed: int, heads: int = 4, n: int = 5):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(3, heads, n, n, generator=g, dtype=torch.float64) * 2 for _ in range(2)]


def tinybert_att_mse(student: torch.Tensor, teacher: torch.Tensor) -> float:
    """TinyBERT: scores <= -100 (its padding mask) set to 0 on both sides, then one MSE over every entry."""
    s = torch.where(student <= -1e2, torch.zeros_like(student), student)
    t = torch.where(teacher <= -1e2, torch.zeros_like(teacher), teacher)
    return float(((s - t) ** 2).mean())


def textbrewer_att_mse(student: torch.Tensor, teacher: torch.Tensor) -> float:
    """TextBrewer's att_mse_loss without a mask: entries <= -0.001 set to 0 on both sides, then the MSE."""
    s = torch.where(student <= -1e-3, torch.zeros_like(student), student)
    t = torch.where(teacher <= -1e-3, torch.zeros_like(teacher), teacher)
    return float(((s - t) ** 2).mean())


def test_eq7_on_scores_equals_tinybert_and_differs_from_textbrewer_on_negative_scores():
    student, teacher = _pair(0)
    ours = float(tb.attention_pair_losses([student], [teacher], [(1, 1)])[0])
    assert ours == pytest.approx(tinybert_att_mse(student, teacher), rel=1e-12)
    assert (student < 0).any() and ours != pytest.approx(textbrewer_att_mse(student, teacher), rel=1e-3)


def test_eq7_on_probabilities_equals_textbrewer_and_its_head_sum_is_h2_times_our_head_mean():
    student, teacher = (torch.softmax(x, -1) for x in _pair(1))
    ours = float(tb.attention_pair_losses([student], [teacher], [(1, 1)])[0])
    assert ours == pytest.approx(textbrewer_att_mse(student, teacher), rel=1e-12)
    summed = float(((student.sum(1) - teacher.sum(1)) ** 2).mean())  # att_mse_sum_loss
    mean = float(tb.attention_pair_losses([student], [teacher], [(1, 1)], "mean")[0])
    assert summed == pytest.approx(16 * mean, rel=1e-12)


def test_hidden_mse_with_an_identity_projection_equals_textbrewers_hid_mse():
    student, teacher = (x[:, 0] for x in _pair(2))  # (B, N, D) states
    identity = torch.nn.Linear(5, 5, bias=False).double()
    with torch.no_grad():
        identity.weight.copy_(torch.eye(5))
    assert float(tb.projected_mse(student, teacher, identity).detach()) == pytest.approx(
        float(((student - teacher) ** 2).mean()), rel=1e-12)


def test_prediction_loss_against_tinyberts_soft_cross_entropy():
    """TinyBERT: mean over batch *and* classes of -softmax(t/T) log_softmax(s/T), no T^2. Ours is
    T^2 (K * theirs - H(p_T)): the same gradient up to the factor T^2 K."""
    g = torch.Generator().manual_seed(3)
    s, t = torch.randn(6, 10, generator=g, dtype=torch.float64), torch.randn(6, 10, generator=g, dtype=torch.float64)
    T = 2.0
    p = torch.softmax(t / T, -1)
    theirs = float((-p * torch.log_softmax(s / T, -1)).mean())
    entropy = float(-(p * p.log()).sum(-1).mean())
    assert float(tb.prediction_loss(s, t, T)) == pytest.approx(T * T * (10 * theirs - entropy), rel=1e-10)


def test_rollout_equals_vit_explains_without_discarding():
    atts = [torch.softmax(x, -1) for x in _pair(4)]
    result = np.eye(5)
    for layer in atts:  # vit-explain: head mean, (A + I) / 2, divide by a.sum(dim=-1) (no keepdim), left-multiply
        a = (layer[0].numpy().mean(0) + np.eye(5)) / 2
        result = (a / a.sum(axis=-1)) @ result
    np.testing.assert_allclose(tb.attention_rollout(atts)[0].numpy(), result, rtol=1e-12)
