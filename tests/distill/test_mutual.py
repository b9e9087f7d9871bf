"""Deep mutual learning's losses (Zhang et al., CVPR 2018, eqs. 1-4) against the paper's equations,
re-derived here in float64 numpy, and against a peer's formula; the detached side gets no gradient."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdviz.distill.mutual import mutual_kl, mutual_kl_per_sample, mutual_terms


def np_softmax(z: np.ndarray, T: float) -> np.ndarray:
    e = np.exp((z - z.max(axis=1, keepdims=True)) / T)
    return e / e.sum(axis=1, keepdims=True)


def paper_terms(z1: np.ndarray, z2: np.ndarray, y: np.ndarray, T: float) -> dict[str, float]:
    """Eqs. 1-2 as written (sums over classes), averaged over the batch, KL times T^2."""
    n = len(y)
    p1, p2 = np_softmax(z1, 1.0), np_softmax(z2, 1.0)
    q1, q2 = np_softmax(z1, T), np_softmax(z2, T)
    onehot = np.eye(z1.shape[1])[y]
    return {"ce1": float(-(onehot * np.log(p1)).sum() / n), "ce2": float(-(onehot * np.log(p2)).sum() / n),
            "kl21": float(T * T * (q2 * np.log(q2 / q1)).sum() / n),
            "kl12": float(T * T * (q1 * np.log(q1 / q2)).sum() / n)}


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(11)
    z1 = (3 * torch.randn(32, 10, generator=g, dtype=torch.float64)).requires_grad_()
    z2 = (3 * torch.randn(32, 10, generator=g, dtype=torch.float64)).requires_grad_()
    y = torch.randint(0, 10, (32,), generator=g)
    return z1, z2, y


@pytest.mark.parametrize("weight,T", [(1.0, 1.0), (0.3, 4.0), (2.5, 0.5)])
def test_terms_match_eqs_1_to_4(batch, weight, T):
    z1, z2, y = batch
    terms = mutual_terms(z1, z2, y, weight=weight, T=T)
    ref = paper_terms(z1.detach().numpy(), z2.detach().numpy(), y.numpy(), T)
    assert float(terms.ce.detach()) == pytest.approx(ref["ce1"], rel=1e-10)
    assert float(terms.peer_ce.detach()) == pytest.approx(ref["ce2"], rel=1e-10)
    assert float(terms.kl.detach()) == pytest.approx(weight * ref["kl21"], rel=1e-9)  # D_KL(p2 || p1), eq. 3
    assert float(terms.peer_kl.detach()) == pytest.approx(weight * ref["kl12"], rel=1e-9)  # D_KL(p1 || p2), eq. 4
    assert float(terms.loss.detach()) == pytest.approx(ref["ce1"] + weight * ref["kl21"], rel=1e-9)
    assert float(terms.peer_loss.detach()) == pytest.approx(ref["ce2"] + weight * ref["kl12"], rel=1e-9)
    assert ref["kl21"] != pytest.approx(ref["kl12"], rel=1e-3)  # KL is not symmetric: the two terms differ


def test_matches_a_peer_implementation(batch):
    """Knowledge-Distillation-Zoo (kd_losses/dml.py, read via the search tool; re-written here):
    ``F.kl_div(F.log_softmax(out1), F.softmax(out2), reduction='batchmean')`` with out2 detached in its loop."""
    z1, z2, _ = batch
    zoo = F.kl_div(F.log_softmax(z1, dim=1), F.softmax(z2.detach(), dim=1), reduction="batchmean")
    assert abs(float(mutual_kl(z1, z2).detach()) - float(zoo.detach())) < 1e-6
    per_sample = mutual_kl_per_sample(z1.float(), z2.float(), 3.0)
    assert per_sample.shape == (32,) and bool((per_sample >= 0).all())
    assert float(mutual_kl(z1, z1).detach()) == pytest.approx(0.0, abs=1e-12)


def test_the_detached_side_gets_no_gradient(batch):
    z1, z2, y = batch
    T = 2.0
    kl = mutual_kl(z1, z2, T)
    g1, g2 = torch.autograd.grad(kl, (z1, z2), allow_unused=True)
    assert g2 is None  # the peer's predictions are a constant in eq. 3
    q1, q2 = torch.softmax(z1 / T, 1), torch.softmax(z2 / T, 1)
    torch.testing.assert_close(g1, T * (q1 - q2).detach() / len(y))  # d/dz1 of T^2 KL(q2 || q1), batch mean
    terms = mutual_terms(z1, z2, y, weight=0.7, T=T)
    total = terms.loss + terms.peer_loss  # one backward through the sum = each network's own equation
    d1, d2 = torch.autograd.grad(total, (z1, z2), retain_graph=True)
    e1 = torch.autograd.grad(terms.loss, z1, retain_graph=True)[0]
    e2 = torch.autograd.grad(terms.peer_loss, z2)[0]
    torch.testing.assert_close(d1, e1)
    torch.testing.assert_close(d2, e2)
    assert torch.autograd.grad(mutual_terms(z1, z2, y).peer_kl, z1, allow_unused=True)[0] is None


def test_bad_inputs_name_the_problem(batch):
    z1, z2, y = batch
    with pytest.raises(ValueError, match="same shape"):
        mutual_kl(z1, z2[:, :5])
    with pytest.raises(ValueError, match="temperature T must be a positive"):
        mutual_terms(z1, z2, y, T=0.0)
    with pytest.raises(ValueError, match="weight must be finite and >= 0"):
        mutual_terms(z1, z2, y, weight=-1.0)
    with pytest.raises(ValueError, match="targets must be class indices in 0..9"):
        mutual_terms(z1, z2, y + 10)
