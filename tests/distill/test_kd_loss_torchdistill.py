"""kdviz's alpha against torchdistill's KDLoss convention (issue 15).

torchdistill (github.com/yoshitomo-matsubara/torchdistill, torchdistill/losses/mid_level.py,
class KDLoss; read at commit 3e4373c, July 2026) computes, with ``reduction='batchmean'``,

    soft = KLDivLoss(batchmean)(log_softmax(s / T), softmax(t / T))
    if alpha is None or alpha == 0 or targets is None:  return soft          # no T^2
    return alpha * CE(s, y) + beta * T^2 * soft,   beta = 1 - alpha by default

so its alpha weights the hard labels. It is written out below from that definition (torchdistill
is not a dependency) and compared with ``kd_loss``: kdviz's alpha = a is torchdistill's 1 - a.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from kdviz.distill import kd_loss


def torchdistill_kd_loss(student, teacher, targets, T, alpha):
    """torchdistill's KDLoss.forward (mid_level.py), beta left at its default 1 - alpha."""
    log_q = torch.log_softmax(student / T, dim=1)
    p = torch.softmax(teacher / T, dim=1)
    soft = F.kl_div(log_q, p, reduction="batchmean")
    if alpha is None or alpha == 0 or targets is None:
        return soft
    hard = F.cross_entropy(student, targets, reduction="mean")
    return alpha * hard + (1 - alpha) * (T ** 2) * soft


def _batch(seed=0, batch=7, classes=10):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(batch, classes, generator=g, dtype=torch.float64) * 3
    t = torch.randn(batch, classes, generator=g, dtype=torch.float64) * 3
    y = torch.randint(0, classes, (batch,), generator=g)
    return s, t, y


@pytest.mark.parametrize("T", [1.0, 2.0, 4.0, 8.5, 20.0])
@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.3, 0.5, 0.9, 0.99])
def test_kdviz_alpha_is_torchdistill_one_minus_alpha(T, alpha):
    s, t, y = _batch(seed=int(T * 10))
    s.requires_grad_(True)
    ours = kd_loss(s, t, y, T, alpha).total
    (grad_ours,) = torch.autograd.grad(ours, s)
    theirs = torchdistill_kd_loss(s, t, y, T, 1.0 - alpha)
    (grad_theirs,) = torch.autograd.grad(theirs, s)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-10, abs=1e-12)
    torch.testing.assert_close(grad_ours, grad_theirs, rtol=1e-9, atol=1e-12)
    if alpha not in (0.0, 0.5):  # the same alpha in both tools is a different loss (but at 0.5)
        assert torchdistill_kd_loss(s, t, y, T, alpha).item() != pytest.approx(ours.item(), rel=1e-6)


@pytest.mark.parametrize("T", [2.0, 4.0, 20.0])
def test_soft_only_keeps_t_squared_where_torchdistill_drops_it(T):
    """kdviz's alpha = 1 (torchdistill's alpha = 0): torchdistill returns the KL alone, T^2 smaller."""
    s, t, y = _batch(seed=3)
    ours = kd_loss(s, t, None, T, 1.0).total
    theirs = torchdistill_kd_loss(s, t, y, T, 0.0)
    assert ours.item() == pytest.approx(T * T * theirs.item(), rel=1e-10)
    assert ours.item() > 1.5 * theirs.item()
