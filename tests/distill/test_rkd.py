"""Relational KD (Park, Kim, Lu, Cho, CVPR 2019, eqs. 3-6) against hand-written numpy and a peer.

The numpy side forms every difference vector t_i - t_j explicitly (the module uses the Gram matrix
of the centred batch instead), loops over the paper's sets X^2 (i != j) and X^3 (distinct i, j, k)
and applies the Huber loss with delta 1. The peer is RepDistiller's ``RKDLoss``
(HobbitLong/RepDistiller, distiller_zoo/RKD.py), re-implemented here from its reading: the mean over
all N^2 pairs and all N^3 triplets, mu over the positive distances, ``smooth_l1_loss``.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdviz.distill.rkd import (
    angle_potentials, distance_potentials, huber, mean_distance, pairwise_distances, rkd_angle_loss,
    rkd_distance_loss, rkd_loss,
)


def numpy_huber(x: np.ndarray) -> np.ndarray:
    a = np.abs(x)
    return np.where(a <= 1.0, 0.5 * x ** 2, a - 0.5)


def numpy_psi_d(e: np.ndarray) -> np.ndarray:
    """Eq. 3: ||t_i - t_j|| / mu, mu the mean over i != j."""
    n = len(e)
    d = np.array([[np.linalg.norm(e[i] - e[j]) for j in range(n)] for i in range(n)])
    mu = sum(d[i, j] for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    return d / mu


def numpy_psi_a(e: np.ndarray, i: int, j: int, k: int) -> float:
    """Eq. 5: <e_ij, e_kj> with e_ij = (t_i - t_j) / ||t_i - t_j||."""
    u, v = e[i] - e[j], e[k] - e[j]
    return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


def numpy_rkd_d(s: np.ndarray, t: np.ndarray) -> float:
    ps, pt = numpy_psi_d(s), numpy_psi_d(t)
    pairs = [(i, j) for i, j in itertools.product(range(len(s)), repeat=2) if i != j]
    return float(np.mean([numpy_huber(ps[i, j] - pt[i, j]) for i, j in pairs]))


def numpy_rkd_a(s: np.ndarray, t: np.ndarray) -> float:
    triplets = [(i, j, k) for i, j, k in itertools.product(range(len(s)), repeat=3) if len({i, j, k}) == 3]
    return float(np.mean([numpy_huber(numpy_psi_a(s, i, j, k) - numpy_psi_a(t, i, j, k)) for i, j, k in triplets]))


def peer_rkd(f_s: torch.Tensor, f_t: torch.Tensor, w_d: float = 25.0, w_a: float = 50.0) -> tuple[float, float, float]:
    """RepDistiller's RKDLoss semantics (distances and angles over all N^2 / N^3 entries), written anew."""
    def distances(e):
        diff = e[:, None, :] - e[None, :, :]
        return diff.pow(2).sum(-1).sqrt()

    def angles(e):
        unit = F.normalize(e[None, :, :] - e[:, None, :], p=2, dim=2)  # [j, i] = (e_i - e_j) / ||.||
        return torch.einsum("jid,jkd->ijk", unit, unit).reshape(-1)

    s, t = f_s.flatten(1), f_t.flatten(1)
    ds, dt = distances(s), distances(t)
    ds, dt = ds / ds[ds > 0].mean(), dt / dt[dt > 0].mean()
    loss_d = F.smooth_l1_loss(ds, dt)
    loss_a = F.smooth_l1_loss(angles(s), angles(t))
    return float(loss_d), float(loss_a), float(w_d * loss_d + w_a * loss_a)


def embeddings(seed: int, n: int = 7, d_s: int = 5, d_t: int = 12):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(n, d_s, generator=g, dtype=torch.float64)
    t = 3.0 * torch.randn(n, d_t, generator=g, dtype=torch.float64) + 1.5
    return s, t


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_potentials_match_eqs_3_and_5_by_hand(seed):
    s, t = embeddings(seed)
    e = t.numpy()
    np.testing.assert_allclose(distance_potentials(t).numpy(), numpy_psi_d(e), rtol=1e-10, atol=1e-12)
    d = pairwise_distances(t)
    assert float(mean_distance(d)) == pytest.approx(float(d.sum()) / (7 * 6), rel=1e-12)
    psi = angle_potentials(t).numpy()
    for i, j, k in itertools.product(range(7), repeat=3):
        expected = 0.0 if j in (i, k) else numpy_psi_a(e, i, j, k)
        assert psi[i, j, k] == pytest.approx(expected, abs=1e-10), (i, j, k)
    assert psi[2, 4, 2] == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_losses_match_eqs_4_and_6_by_hand(seed):
    s, t = embeddings(seed)
    assert float(rkd_distance_loss(s, t)) == pytest.approx(numpy_rkd_d(s.numpy(), t.numpy()), rel=1e-10)
    assert float(rkd_angle_loss(s, t)) == pytest.approx(numpy_rkd_a(s.numpy(), t.numpy()), rel=1e-10)
    total = rkd_loss(s, t, distance_weight=3.0, angle_weight=0.5)
    assert float(total) == pytest.approx(3.0 * numpy_rkd_d(s.numpy(), t.numpy()) + 0.5 * numpy_rkd_a(s.numpy(), t.numpy()),
                                         rel=1e-10)


def test_huber_has_delta_one_as_smooth_l1():
    x = torch.linspace(-3, 3, 61, dtype=torch.float64)
    np.testing.assert_allclose(huber(x).numpy(), numpy_huber(x.numpy()), rtol=1e-12)
    np.testing.assert_allclose(huber(x).numpy(), F.smooth_l1_loss(x, torch.zeros_like(x), reduction="none").numpy())
    assert float(huber(torch.tensor(2.5))) == pytest.approx(2.0) and float(huber(torch.tensor(-0.4))) == pytest.approx(0.08)


@pytest.mark.parametrize("seed,n", [(0, 6), (1, 16), (2, 33)])
def test_against_repdistiller_rkd_loss(seed, n):
    """peer_D = (N-1)/N * L_D and peer_A = (N-1)(N-2)/N^2 * L_A; differences below 1e-6."""
    s, t = embeddings(seed, n=n, d_s=8, d_t=20)
    peer_d, peer_a, peer_total = peer_rkd(s, t)
    ours_d, ours_a = float(rkd_distance_loss(s, t)), float(rkd_angle_loss(s, t))
    assert abs(peer_d - (n - 1) / n * ours_d) < 1e-6
    assert abs(peer_a - (n - 1) * (n - 2) / n ** 2 * ours_a) < 1e-6
    assert abs(peer_total - (25 * (n - 1) / n * ours_d + 50 * (n - 1) * (n - 2) / n ** 2 * ours_a)) < 1e-6
    assert ours_d > 1e-3 and ours_a > 1e-3  # unrelated embeddings: the comparison is not of zeros


def random_rotation(dim: int, seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q


def test_invariances_scale_rotation_translation():
    s, t = embeddings(5, n=10)
    base_d, base_a = float(rkd_distance_loss(s, t)), float(rkd_angle_loss(s, t))
    for scale in (0.01, 7.0):  # psi_D divides by mu; cosines have no scale
        assert float(rkd_distance_loss(scale * s, t)) == pytest.approx(base_d, rel=1e-9)
        assert float(rkd_angle_loss(scale * s, t)) == pytest.approx(base_a, rel=1e-9)
        assert float(rkd_distance_loss(s, scale * t)) == pytest.approx(base_d, rel=1e-9)
    rs, rt = s @ random_rotation(5, 1), t @ random_rotation(12, 2)
    assert float(rkd_distance_loss(rs, rt)) == pytest.approx(base_d, rel=1e-9)
    assert float(rkd_angle_loss(rs, rt)) == pytest.approx(base_a, rel=1e-9)
    assert float(rkd_angle_loss(s + 100.0, t)) == pytest.approx(base_a, rel=1e-7)
    # a different relation structure is not invariant: stretching one axis changes both losses
    stretch = s * torch.tensor([5.0, 1, 1, 1, 1], dtype=torch.float64)
    assert abs(float(rkd_distance_loss(stretch, t)) - base_d) > 1e-3
    assert abs(float(rkd_angle_loss(stretch, t)) - base_a) > 1e-3


def test_zero_when_student_copies_the_teachers_geometry_and_gradients_flow():
    _, t = embeddings(3, n=9)
    student = (2.0 * t @ random_rotation(12, 4)).float().requires_grad_(True)
    assert float(rkd_distance_loss(student, t.float()).detach()) < 1e-10
    assert float(rkd_angle_loss(student, t.float()).detach()) < 1e-10
    s = torch.randn(9, 4, dtype=torch.float32, requires_grad=True)
    teacher = t.float().requires_grad_(True)
    rkd_loss(s, teacher).backward()
    assert torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0 and teacher.grad is None


def test_float32_close_to_float64_and_duplicates_stay_finite():
    s, t = embeddings(7, n=32, d_s=64, d_t=200)
    for fn in (rkd_distance_loss, rkd_angle_loss):
        assert float(fn(s.float(), t.float())) == pytest.approx(float(fn(s, t)), rel=1e-4)
    dup = torch.cat([s[:5], s[:1]]).float().requires_grad_(True)  # two identical embeddings: distance 0
    loss = rkd_loss(dup, t[:6].float())
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(dup.grad).all()


def test_zero_weight_skips_a_term_and_bad_input_is_named():
    s, t = embeddings(0)
    assert float(rkd_loss(s, t, 0.0, 2.0)) == pytest.approx(2.0 * float(rkd_angle_loss(s, t)))
    assert float(rkd_loss(s, t, 4.0, 0.0)) == pytest.approx(4.0 * float(rkd_distance_loss(s, t)))
    assert float(rkd_loss(s[:2], t[:2], 1.0, 0.0)) >= 0.0  # two samples: a distance, no angle needed
    with pytest.raises(ValueError, match="distance_weight must be finite and non-negative"):
        rkd_loss(s, t, -1.0, 1.0)
    with pytest.raises(ValueError, match="same batch size"):
        rkd_distance_loss(s, t[:5])
    with pytest.raises(ValueError, match="N >= 3 samples"):
        rkd_angle_loss(s[:2], t[:2])
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        rkd_distance_loss(s.numpy(), t)
