"""Relational knowledge distillation: Park, Kim, Lu, Cho, "Relational Knowledge Distillation" (CVPR 2019).

Instead of matching each sample's output, the student matches the *relations* between the
embeddings of a batch, so a student of another width (another embedding size) can still learn from
the teacher: only distances and angles are compared.

Distance-wise potential (eq. 3), with t_i the teacher's embedding of sample i:

    psi_D(t_i, t_j) = ||t_i - t_j||_2 / mu,    mu = 1/|X^2| sum_{(i,j) in X^2} ||t_i - t_j||_2

where X^2 is the set of pairs i != j of the batch, so mu is the mean pairwise distance and the
potential is free of the embedding's scale. Distance-wise loss (eq. 4):

    L_RKD-D = mean_{(i,j) in X^2} l_delta(psi_D(t_i, t_j), psi_D(s_i, s_j))

Angle-wise potential (eq. 5): the cosine of the angle at t_j in the triangle t_i t_j t_k,

    psi_A(t_i, t_j, t_k) = <e_ij, e_kj>,    e_ij = (t_i - t_j) / ||t_i - t_j||_2

and the angle-wise loss (eq. 6) is its Huber loss over the triplets X^3 of distinct i, j, k.
l_delta is the Huber loss with delta = 1 (eq. 4: 0.5 x^2 for |x| <= 1, |x| - 0.5 otherwise), i.e.
PyTorch's ``smooth_l1_loss``. The paper writes eqs. 4 and 6 as sums; like its authors' code we
average, so the weights lambda_D = 25 and lambda_A = 50 (section 4) keep their meaning for any batch.

Peer implementations (the authors' code and RepDistiller's ``RKDLoss``) average over all N^2 pairs
and all N^3 triplets, degenerate ones included; those add zeros to the sum (a pair (i, i) has
distance 0 for both models; a triplet with j = i or j = k has no direction, i = k has cosine 1 for
both), so, for a batch of N distinct embeddings, peer_D = (N-1)/N * L_RKD-D and
peer_A = (N-1)(N-2)/N^2 * L_RKD-A (``tests/distill/test_rkd.py`` checks both).

Distances and cosines come from the Gram matrix of the batch's centred embeddings (distances and
angles do not change under a translation): O(N^2 D) work and O(N^3) memory for the angles, instead of
the O(N^3 D) of forming every difference vector. The teacher side is always detached.
"""
from __future__ import annotations

import numpy as np
import torch

HUBER_DELTA = 1.0  # Park et al. 2019, eq. 4: l_delta with delta = 1
EPS = 1e-12  # a floor for squared distances (sqrt has no finite gradient at 0) and for mu
PAPER_DISTANCE_WEIGHT = 25.0  # lambda_D of the paper's experiments (section 4)
PAPER_ANGLE_WEIGHT = 50.0  # lambda_A


def _embeddings(e: torch.Tensor, which: str, least: int) -> torch.Tensor:
    if not isinstance(e, torch.Tensor):
        raise TypeError(f"rkd: {which} embeddings must be a torch.Tensor, got {type(e).__name__}")
    if e.ndim < 2 or e.shape[0] < least or e[0].numel() == 0:
        raise ValueError(f"rkd: {which} embeddings must be (N, D) with N >= {least} samples and D >= 1, got shape "
                         f"{tuple(e.shape)} ({'pairs' if least == 2 else 'triplets'} of distinct samples are needed)")
    return e.flatten(1)


def _gram(e: torch.Tensor) -> torch.Tensor:
    """G = X X^T of the centred embeddings X = e - mean(e): (N, N)."""
    x = e - e.mean(dim=0, keepdim=True)
    return x @ x.T


def _distances_from_gram(g: torch.Tensor) -> torch.Tensor:
    """||x_i - x_j||_2 = sqrt(G_ii + G_jj - 2 G_ij), floored at sqrt(EPS) off the diagonal, 0 on it."""
    diag = g.diagonal()
    squared = (diag[:, None] + diag[None, :] - 2.0 * g).clamp_min(EPS)
    off = ~torch.eye(g.shape[0], dtype=torch.bool, device=g.device)
    return torch.where(off, squared.sqrt(), torch.zeros_like(squared))


def pairwise_distances(e: torch.Tensor) -> torch.Tensor:
    """||e_i - e_j||_2 for every pair of the batch: (N, D) -> (N, N), zero diagonal."""
    return _distances_from_gram(_gram(_embeddings(e, "the", 2)))


def _off_diagonal(n: int, device: torch.device) -> torch.Tensor:
    return ~torch.eye(n, dtype=torch.bool, device=device)


def mean_distance(distances: torch.Tensor) -> torch.Tensor:
    """mu of eq. 3: the mean of ||t_i - t_j||_2 over the pairs i != j (0-d), floored at EPS."""
    n = distances.shape[0]
    return distances[_off_diagonal(n, distances.device)].mean().clamp_min(EPS)


def distance_potentials(e: torch.Tensor) -> torch.Tensor:
    """psi_D of eq. 3 for every pair: ||e_i - e_j||_2 / mu, (N, D) -> (N, N), zero diagonal, mean 1 off it."""
    d = pairwise_distances(e)
    return d / mean_distance(d)


def angle_potentials(e: torch.Tensor) -> torch.Tensor:
    """psi_A of eq. 5 for every triplet: [i, j, k] = <e_ij, e_kj>, the cosine of the angle at e_j.

    (N, D) -> (N, N, N). Entries with j = i or j = k (no direction) are 0; i = k gives 1."""
    x = _embeddings(e, "the", 3)
    g = _gram(x)
    d = _distances_from_gram(g).clamp_min(EPS ** 0.5)
    diag = g.diagonal()
    # <x_i - x_j, x_k - x_j> = G_ik - G_ij - G_jk + G_jj, indexed [i, j, k]
    dots = g[:, None, :] - g[:, :, None] - g[None, :, :] + diag[None, :, None]
    cosines = dots / (d[:, :, None] * d[None, :, :])
    off = _off_diagonal(x.shape[0], x.device)
    defined = off[:, :, None] & off.T[None, :, :]  # i != j and k != j
    return torch.where(defined, cosines, torch.zeros_like(cosines))


def huber(x: torch.Tensor, delta: float = HUBER_DELTA) -> torch.Tensor:
    """l_delta of eq. 4, elementwise: 0.5 x^2 for |x| <= delta, delta (|x| - 0.5 delta) beyond."""
    a = x.abs()
    return torch.where(a <= delta, 0.5 * x * x, delta * (a - 0.5 * delta))


def _same_batch(student: torch.Tensor, teacher: torch.Tensor, least: int) -> tuple[torch.Tensor, torch.Tensor]:
    s, t = _embeddings(student, "student", least), _embeddings(teacher, "teacher", least)
    if s.shape[0] != t.shape[0]:
        raise ValueError(f"rkd: student embeddings {tuple(student.shape)} and teacher {tuple(teacher.shape)} must hold "
                         "the same samples (the same batch size); their widths may differ")
    return s, t.detach()


def rkd_distance_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """L_RKD-D of eq. 4: the mean over pairs i != j of Huber(psi_D(s_i, s_j) - psi_D(t_i, t_j)) (0-d).

    ``student`` (N, D_S) and ``teacher`` (N, D_T): the same N samples; D_S and D_T may differ."""
    s, t = _same_batch(student, teacher, 2)
    off = _off_diagonal(s.shape[0], s.device)
    return huber(distance_potentials(s) - distance_potentials(t))[off].mean()


def rkd_angle_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """L_RKD-A of eq. 6: the mean over triplets of distinct i, j, k of Huber(psi_A(s) - psi_A(t)) (0-d)."""
    s, t = _same_batch(student, teacher, 3)
    n = s.shape[0]
    off = _off_diagonal(n, s.device)
    distinct = off[:, :, None] & off[None, :, :] & off[:, None, :]  # i != j, j != k, i != k
    return huber(angle_potentials(s) - angle_potentials(t))[distinct].mean()


def _weight(value: float, name: str) -> float:
    value = float(value)
    if not (0.0 <= value < float("inf")):
        raise ValueError(f"rkd: {name} must be finite and non-negative, got {value}")
    return value


def rkd_loss(student: torch.Tensor, teacher: torch.Tensor, distance_weight: float = PAPER_DISTANCE_WEIGHT,
             angle_weight: float = PAPER_ANGLE_WEIGHT) -> torch.Tensor:
    """lambda_D * L_RKD-D + lambda_A * L_RKD-A (section 3.3); a zero weight skips its term entirely."""
    w_d, w_a = _weight(distance_weight, "distance_weight"), _weight(angle_weight, "angle_weight")
    total = student.new_zeros(())
    if w_d > 0:
        total = total + w_d * rkd_distance_loss(student, teacher)
    if w_a > 0:
        total = total + w_a * rkd_angle_loss(student, teacher)
    return total



def distance_matrix_correlation(teacher: np.ndarray, student: np.ndarray) -> float:
    """Pearson's correlation between two pairwise-distance matrices (N, N) over the pairs i < j:
    1 when the student orders and spaces its pairs as the teacher does (up to scale), NaN for N < 3
    or a constant matrix. A summary for charts and captions, not part of the loss."""
    t, s = np.asarray(teacher, dtype=np.float64), np.asarray(student, dtype=np.float64)
    if t.ndim != 2 or t.shape[0] != t.shape[1] or t.shape != s.shape:
        raise ValueError(f"rkd: distance matrices must be square and of one size, got {t.shape} and {s.shape}")
    upper = np.triu_indices(t.shape[0], k=1)
    a, b = t[upper], s[upper]
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])
