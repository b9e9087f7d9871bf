"""Specialists: Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network" (2015), section 5.

A *generalist* model is trained on every class. *Specialists* each concentrate on a subset S^m of
classes the generalist confuses; a specialist's softmax covers S^m plus one *dustbin* class standing
for every class outside S^m. This module holds the section's maths; training is the engine's
(``kdviz.methods.specialist``), the pipeline ``kdviz.present.specialists``.

**5.2 Assigning classes to specialists.** "we apply a clustering algorithm to the covariance matrix
of the predictions of the generalist model, so that a set of classes S^m that are often predicted
together will be used as targets for one of our specialist models. We applied an on-line version of
the K-means algorithm to the columns of the covariance matrix". ``prediction_covariance`` is that
matrix (K x K, from the generalist's probabilities on held-out images); ``kmeans_columns`` clusters
its columns, seeded and deterministic: Lloyd's batch updates (the default: with tens of classes,
not the paper's 15,000, a whole pass is cheap, and it matches scikit-learn's ``KMeans`` given the
same initial centres) or MacQueen's on-line updates (``online=True``: one column at a time, in a
seeded order, each centre the running mean of the columns it has taken). ``confusable_subsets``
keeps the clusters of a useful size, most confusable first. The pipeline clusters the covariance
with its diagonal zeroed (``without_diagonal`` says why: ten classes, not 15,000) and keeps the
best of several seedings (``best_kmeans``).

**Dustbin** (section 5): ``specialist_label_map`` maps class c to its position in S^m, every other
class to the dustbin |S^m|. A specialist here keeps the generalist's K logits (it is initialised
from the generalist, as in the paper) and its distribution over S^m + dustbin is the K-way softmax
with the non-subset classes' probabilities summed (``specialist_log_probs``: the dustbin's logit is
the log-sum-exp of theirs). The paper trains a specialist on data "half from its special subset and
half sampled at random from the remainder"; ``enrichment_weights`` gives that mix in expectation by
weighting examples instead of resampling, and ``dustbin_logit_correction`` is the paper's fix
afterwards: "incrementing the logit of the dustbin class by the log of the proportion by which the
specialist class is oversampled".

**5.3 Combining.** For a test case: the generalist's n most probable classes k (step 1); the active
specialists A_k, those whose S^m meets k; then the full distribution q minimising (eq. of 5.3)

    KL(p^g, q) + sum_{m in A_k} KL(p^m, q)

where "KL(p^m, q)" compares the specialist's distribution over S^m + dustbin with q's probabilities
of S^m and q summed over the dustbin's classes. As in the paper, q = softmax(z) and z is found by
gradient descent (``combine``). With no active specialist the minimiser is q = p^g.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

DEFAULT_COMBINE_STEPS = 500


# ---- 5.2: confusable subsets -----------------------------------------------------------------
def prediction_covariance(probabilities: np.ndarray) -> np.ndarray:
    """The K x K covariance of the generalist's predicted probabilities (N, K) over N images
    (section 5.2): entry (i, j) is mean_n (p_ni - mean p_i)(p_nj - mean p_j), with the 1/N of the
    population covariance. Classes often predicted together have larger (less negative) entries."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 2 or p.shape[1] < 2:
        raise ValueError(f"probabilities must be (N, K) with N >= 2 images and K >= 2 classes, got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("probabilities must be finite")
    centred = p - p.mean(axis=0, keepdims=True)
    return centred.T @ centred / p.shape[0]


@dataclass(frozen=True)
class Clusters:
    """K-means of the covariance's columns: ``labels`` (K,) the cluster of each class, ``centers``
    (k, K), ``inertia`` (sum of squared distances to the centres), ``iterations`` (passes made)."""

    labels: np.ndarray
    centers: np.ndarray
    inertia: float
    iterations: int

    def members(self) -> list[tuple[int, ...]]:
        """The classes of each cluster, in cluster order (an empty cluster: ())."""
        return [tuple(int(c) for c in np.flatnonzero(self.labels == j)) for j in range(len(self.centers))]


def kmeans_plus_plus(points: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Arthur & Vassilvitskii's k-means++ seeding of ``k`` centres among the rows of ``points``,
    drawn from ``numpy.random.default_rng(seed)``: deterministic for a seed."""
    rng = np.random.default_rng(seed)
    chosen = [int(rng.integers(len(points)))]
    for _ in range(1, k):
        d2 = ((points[:, None, :] - points[chosen][None, :, :]) ** 2).sum(-1).min(axis=1)
        total = d2.sum()
        chosen.append(int(rng.choice(len(points), p=d2 / total)) if total > 0 else
                      int(next(i for i in range(len(points)) if i not in chosen)))
    return points[chosen].copy()


def _squared_distances(points: np.ndarray, centers: np.ndarray) -> np.ndarray:
    return ((points[:, None, :] - centers[None, :, :]) ** 2).sum(-1)


def _check_kmeans(columns: np.ndarray, k: int, init: np.ndarray | None) -> None:
    if columns.ndim != 2 or not np.all(np.isfinite(columns)):
        raise ValueError(f"the covariance must be a finite 2-D matrix, got shape {columns.shape}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= len(columns):
        raise ValueError(f"the number of clusters k must be 1..{len(columns)} (the number of classes), got {k!r}")
    if init is not None and np.shape(init) != (k, columns.shape[1]):
        raise ValueError(f"init must hold k={k} centres of length {columns.shape[1]}, got shape {np.shape(init)}")


def kmeans_columns(covariance: np.ndarray, k: int, seed: int = 0, init: np.ndarray | None = None,
                   max_iter: int = 300, online: bool = False) -> Clusters:
    """K-means on the columns of ``covariance`` (K x K; section 5.2), each column one point.

    ``init`` (k, K) gives the initial centres, else k-means++ with ``seed``. Batch (Lloyd): assign
    every column to its nearest centre, move each centre to the mean of its columns, until no
    assignment changes (an emptied cluster keeps its centre). ``online`` (MacQueen, the paper's
    on-line K-means): per pass, the columns in an order drawn with ``seed``, each assigned to its
    nearest centre and that centre moved to the running mean of the columns it has taken in the
    pass (n_j += 1; c_j += (x - c_j) / n_j, the first column replacing the centre), until a pass
    changes no assignment."""
    columns = np.asarray(covariance, dtype=np.float64).T.copy()
    _check_kmeans(columns, k, init)
    centers = (np.asarray(init, dtype=np.float64).copy() if init is not None else kmeans_plus_plus(columns, int(k), seed))
    labels = np.full(len(columns), -1)
    rng = np.random.default_rng(seed)
    for iteration in range(1, max_iter + 1):
        if online:
            new_labels = labels.copy()
            counts = np.zeros(len(centers))
            for i in rng.permutation(len(columns)):
                j = int(_squared_distances(columns[i:i + 1], centers)[0].argmin())
                new_labels[i], counts[j] = j, counts[j] + 1
                centers[j] += (columns[i] - centers[j]) / counts[j]
        else:
            new_labels = _squared_distances(columns, centers).argmin(axis=1)
            for j in range(len(centers)):
                if np.any(new_labels == j):
                    centers[j] = columns[new_labels == j].mean(axis=0)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
    inertia = float(_squared_distances(columns, centers)[np.arange(len(columns)), labels].sum())
    return Clusters(labels.astype(np.int64), centers, inertia, iteration)


def without_diagonal(covariance: np.ndarray) -> np.ndarray:
    """The covariance with its diagonal set to 0, for clustering its columns. Why: with ten classes,
    not the paper's thousands, each class's own variance (the diagonal, 0.05-0.10 for a digits MLP)
    dwarfs the covariances between classes (-0.01 +- 0.005), so k-means on the raw columns groups
    classes by how confident the generalist is about each (one cluster of the 6-7 least confident
    classes, singletons for the rest: no subset of 2-4 classes at k = 4, 5 or 6 for any of 4 digits
    MLPs measured, seeds 0-1, 12-20 epochs); without the diagonal a column says only which classes a
    class is predicted with."""
    cov = np.array(covariance, dtype=np.float64)
    np.fill_diagonal(cov, 0.0)
    return cov


def best_kmeans(covariance: np.ndarray, k: int, seed: int = 0, restarts: int = 10, online: bool = False) -> Clusters:
    """The ``kmeans_columns`` result of least inertia over ``restarts`` k-means++ seedings (seeds
    ``seed``, ``seed + 1``, ...), as scikit-learn's ``n_init``: one seeding can start from outliers
    and leave singletons."""
    if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 1:
        raise ValueError(f"restarts must be a whole number >= 1, got {restarts!r}")
    runs = [kmeans_columns(covariance, k, seed=seed + r, online=online) for r in range(restarts)]
    return min(runs, key=lambda c: c.inertia)


def split_large_clusters(covariance: np.ndarray, groups: Sequence[Sequence[int]], max_size: int,
                         seed: int = 0) -> list[tuple[int, ...]]:
    """``groups`` (class tuples) with every group of more than ``max_size`` classes split in two by
    ``best_kmeans`` (k = 2) on its own columns of ``covariance``, again until each part fits. Why:
    k-means on ten columns tends to leave one large group of the classes confused with nothing in
    particular (6-7 of MNIST's ten at k = 4-6), where the confusable pairs hide; splitting it finds
    them without raising k for every group. A group k-means cannot split stays whole."""
    cov, queue, out = np.asarray(covariance, dtype=np.float64), [tuple(g) for g in groups], []
    while queue:
        group = queue.pop(0)
        if len(group) <= max_size:
            out.append(group)
            continue
        halves = best_kmeans(cov[:, list(group)], 2, seed=seed).labels
        parts = [tuple(c for c, h in zip(group, halves) if h == side) for side in (0, 1)]
        if not all(parts):
            out.append(group)
            continue
        queue[:0] = parts
    return out


def subset_confusability(covariance: np.ndarray, subset: Sequence[int]) -> float:
    """The mean off-diagonal covariance of the generalist's predictions within ``subset``: the
    higher, the more often its classes are predicted together (section 5.2's criterion)."""
    cov, s = np.asarray(covariance, dtype=np.float64), list(subset)
    block = cov[np.ix_(s, s)]
    return float((block.sum() - np.trace(block)) / (len(s) * (len(s) - 1))) if len(s) > 1 else float("-inf")


def confusable_subsets(covariance: np.ndarray, clusters: Clusters | Sequence[Sequence[int]], min_size: int = 2,
                       max_size: int = 4, count: int | None = None) -> list[tuple[int, ...]]:
    """The clusters (a ``Clusters`` or class tuples) of ``min_size`` to ``max_size`` classes (a single
    class needs no specialist; a big cluster is most often the classes the generalist confuses with
    nothing), most confusable first (``subset_confusability``), at most ``count`` of them."""
    if isinstance(min_size, bool) or not 2 <= int(min_size) <= int(max_size):
        raise ValueError(f"subset sizes need 2 <= min_size <= max_size, got min_size={min_size!r}, max_size={max_size!r}")
    if count is not None and int(count) < 1:
        raise ValueError(f"count (how many specialists) must be at least 1, got {count!r}")
    groups = clusters.members() if isinstance(clusters, Clusters) else [tuple(int(c) for c in g) for g in clusters]
    fitting = [m for m in groups if min_size <= len(m) <= max_size]
    fitting.sort(key=lambda m: (-subset_confusability(covariance, m), m))
    return fitting if count is None else fitting[:int(count)]


# ---- the dustbin -----------------------------------------------------------------------------
def check_subset(subset: Sequence[int], num_classes: int) -> tuple[int, ...]:
    """``subset`` as a tuple of distinct class indices 0..K-1, leaving at least one class for the
    dustbin; a ``ValueError`` names what is wrong."""
    s = tuple(subset)
    if not s or any(isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 0 <= c < num_classes for c in s):
        raise ValueError(f"a specialist's classes must be class indices 0..{num_classes - 1}, got {list(s)}")
    if len(set(s)) != len(s):
        raise ValueError(f"a specialist's classes must differ from each other, got {list(s)}")
    if len(s) >= num_classes:
        raise ValueError(f"a specialist needs a dustbin: its classes {list(s)} must leave out at least one of the {num_classes}")
    return tuple(int(c) for c in s)


def specialist_label_map(subset: Sequence[int], num_classes: int) -> np.ndarray:
    """(K,) int64: class ``subset[i]`` -> i, every other class -> ``len(subset)`` (the dustbin)."""
    s = check_subset(subset, num_classes)
    mapping = np.full(num_classes, len(s), dtype=np.int64)
    mapping[list(s)] = np.arange(len(s))
    return mapping


def specialist_log_probs(logits: torch.Tensor, subset: Sequence[int], dustbin_bias: float = 0.0) -> torch.Tensor:
    """log p^m (B, |S|+1): the specialist's distribution over its classes (in ``subset`` order) and
    the dustbin (last), from its K logits: the dustbin's logit is the log-sum-exp of the other
    classes' logits plus ``dustbin_bias`` (``dustbin_logit_correction``; 0 while training)."""
    s = check_subset(subset, logits.shape[1])
    rest = [c for c in range(logits.shape[1]) if c not in s]
    dustbin = torch.logsumexp(logits[:, rest], dim=1, keepdim=True) + dustbin_bias
    return torch.log_softmax(torch.cat([logits[:, list(s)], dustbin], dim=1), dim=1)


def enrichment_weights(labels: torch.Tensor, subset: Sequence[int], enriched_fraction: float) -> torch.Tensor:
    """Per-example weights (B,) that give the subset's examples ``enriched_fraction`` of the total
    weight in expectation (the paper: half) and the rest the remainder: e/f for a subset example
    and (1-e)/(1-f) otherwise, f the subset's share of ``labels``. Weights average 1 over ``labels``."""
    if not 0.0 < float(enriched_fraction) < 1.0:
        raise ValueError(f"enriched_fraction must be between 0 and 1 (the paper: 0.5), got {enriched_fraction!r}")
    inside = torch.isin(labels, torch.tensor(list(subset), device=labels.device))
    f = inside.double().mean().item()
    if f in (0.0, 1.0):
        raise ValueError(f"the training labels must contain both classes of the subset {list(subset)} and others")
    e = float(enriched_fraction)
    return torch.where(inside, torch.tensor(e / f), torch.tensor((1 - e) / (1 - f))).to(torch.float32)


def dustbin_logit_correction(subset_fraction: float, enriched_fraction: float) -> float:
    """The log-odds a specialist trained on enriched data adds to its dustbin logit (section 5):
    the special classes were seen e/f times as often as in the data and the dustbin (1-e)/(1-f)
    times, so the dustbin's logit rises by log((1-f) e / (f (1-e))); e = f: no correction."""
    f, e = float(subset_fraction), float(enriched_fraction)
    if not (0.0 < f < 1.0 and 0.0 < e < 1.0):
        raise ValueError(f"fractions must be between 0 and 1, got subset {f!r}, enriched {e!r}")
    return float(np.log((1 - f) * e / (f * (1 - e))))


# ---- 5.3: combining the generalist and the specialists ---------------------------------------
def active_specialists(generalist_probs: torch.Tensor, subsets: Sequence[Sequence[int]], top_n: int = 1) -> torch.Tensor:
    """(N, M) bool: specialist m is active for case n when its subset meets the generalist's
    ``top_n`` most probable classes for n (section 5.3, steps 1 and 2: the set A_k)."""
    if isinstance(top_n, bool) or not isinstance(top_n, int) or not 1 <= top_n <= generalist_probs.shape[1]:
        raise ValueError(f"top_n must be 1..{generalist_probs.shape[1]} (the number of classes), got {top_n!r}")
    top = torch.zeros_like(generalist_probs, dtype=torch.bool)
    top.scatter_(1, generalist_probs.topk(top_n, dim=1).indices, True)
    if not subsets:
        return torch.zeros(len(generalist_probs), 0, dtype=torch.bool)
    return torch.stack([top[:, list(s)].any(dim=1) for s in subsets], dim=1)


def _dustbin_view(q: torch.Tensor, subset: Sequence[int]) -> torch.Tensor:
    """q's probabilities over ``subset`` (in order) and, last, summed over the other classes."""
    rest = [c for c in range(q.shape[1]) if c not in set(subset)]
    return torch.cat([q[:, list(subset)], q[:, rest].sum(dim=1, keepdim=True)], dim=1)


def _kl_rows(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """sum_j p_j (log p_j - log q_j) per row, with 0 log 0 = 0."""
    return torch.where(p > 0, p * (torch.log(p.clamp_min(1e-300)) - torch.log(q.clamp_min(1e-300))), 0.0).sum(dim=1)


def combined_objective(logits: torch.Tensor, generalist_probs: torch.Tensor, specialist_probs: Sequence[torch.Tensor],
                       subsets: Sequence[Sequence[int]], active: torch.Tensor) -> torch.Tensor:
    """Section 5.3's objective per case (N,): KL(p^g || q) + sum_{m active} KL(p^m || q^m) with
    q = softmax(``logits``) and q^m = q over S^m plus q summed over the dustbin's classes.
    ``specialist_probs[m]`` is (N, |S^m|+1), its dustbin last."""
    q = torch.softmax(logits, dim=1)
    total = _kl_rows(generalist_probs, q)
    for m, (p_m, subset) in enumerate(zip(specialist_probs, subsets)):
        total = total + torch.where(active[:, m], _kl_rows(p_m, _dustbin_view(q, subset)), 0.0)
    return total


@dataclass(frozen=True)
class Combination:
    """The combined distributions ``q`` (N, K), which specialists were ``active`` (N, M), the final
    ``objective`` per case (N,), and the largest remaining gradient entry ``gradient_max``."""

    q: torch.Tensor
    active: torch.Tensor
    objective: torch.Tensor
    gradient_max: float


def _check_combination(generalist_probs: torch.Tensor, specialist_probs: Sequence[torch.Tensor],
                       subsets: Sequence[Sequence[int]]) -> None:
    if generalist_probs.ndim != 2:
        raise ValueError(f"the generalist's probabilities must be (N, K), got shape {tuple(generalist_probs.shape)}")
    if len(specialist_probs) != len(subsets):
        raise ValueError(f"{len(specialist_probs)} specialists' probabilities for {len(subsets)} subsets")
    for p_m, subset in zip(specialist_probs, subsets):
        check_subset(subset, generalist_probs.shape[1])
        if tuple(p_m.shape) != (len(generalist_probs), len(subset) + 1):
            raise ValueError(f"the specialist for classes {list(subset)} must give (N, {len(subset) + 1}) probabilities "
                             f"(its classes and the dustbin), got shape {tuple(p_m.shape)}")


def combine(generalist_probs: torch.Tensor, specialist_probs: Sequence[torch.Tensor], subsets: Sequence[Sequence[int]],
            top_n: int = 1, steps: int = DEFAULT_COMBINE_STEPS, lr: float = 1.0, init: str = "generalist",
            momentum: float = 0.9) -> Combination:
    """Section 5.3: per case, q = softmax(z) minimising ``combined_objective`` over its active
    specialists, by ``steps`` of gradient descent on z (float64; the step ``lr / (1 + |A_k|)``,
    since each KL term's Hessian in z has eigenvalues at most 1), with Nesterov ``momentum`` (0:
    plain descent; the paper names no variant, and momentum 0.9 reaches the minimum about ten times
    sooner here: ``tests/distill/test_specialists.py`` checks it against scipy's BFGS). z starts at
    log p^g (``init="generalist"``) or 0 (``"uniform"``). Cases are independent: one batch descends
    the sum of their objectives."""
    _check_combination(generalist_probs, specialist_probs, subsets)
    if init not in ("generalist", "uniform"):
        raise ValueError(f"init must be 'generalist' or 'uniform', got {init!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0 or not float(lr) > 0 or not 0 <= momentum < 1:
        raise ValueError(f"steps must be a whole number >= 0, lr positive and momentum in [0, 1), got steps={steps!r}, "
                         f"lr={lr!r}, momentum={momentum!r}")
    p_g = generalist_probs.detach().double()
    p_ms = [p.detach().double() for p in specialist_probs]
    active = active_specialists(p_g, subsets, top_n)
    step = (float(lr) / (1.0 + active.sum(dim=1, keepdim=True).double()))
    z = torch.log(p_g.clamp_min(1e-300)) if init == "generalist" else torch.zeros_like(p_g)
    velocity = torch.zeros_like(z)
    for _ in range(steps):
        ahead = (z + momentum * velocity).requires_grad_(True)
        (grad,) = torch.autograd.grad(combined_objective(ahead, p_g, p_ms, subsets, active).sum(), ahead)
        velocity = momentum * velocity - step * grad
        z = z + velocity
    z = z.requires_grad_(True)
    objective = combined_objective(z, p_g, p_ms, subsets, active)
    (grad,) = torch.autograd.grad(objective.sum(), z)
    return Combination(torch.softmax(z.detach(), dim=1), active, objective.detach(), float(grad.abs().max()) if grad.numel() else 0.0)
