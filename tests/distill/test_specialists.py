"""Specialists' maths (Hinton, Vinyals, Dean 2015, section 5) against independent numpy/scipy
computations and scikit-learn's KMeans: the prediction covariance, k-means on its columns, the
dustbin, enrichment and its correction, and the section 5.3 combination."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from sklearn.cluster import KMeans

from kdviz.distill.specialists import (
    active_specialists, combine, combined_objective, confusable_subsets, dustbin_logit_correction, enrichment_weights,
    kmeans_columns, kmeans_plus_plus, prediction_covariance, specialist_label_map, specialist_log_probs,
    split_large_clusters,
)


def confusable_probabilities(n: int = 600, seed: int = 0) -> np.ndarray:
    """Softmax predictions over 10 classes where {1, 7}, {3, 5, 8} and {4, 9} are confused."""
    rng = np.random.default_rng(seed)
    groups = [(1, 7), (3, 5, 8), (4, 9), (0,), (2,), (6,)]
    logits = rng.normal(0, 0.5, (n, 10))
    for i in range(n):
        group = groups[i % len(groups)]
        logits[i, list(group)] += 4.0 + rng.normal(0, 1.5, len(group))
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_prediction_covariance_is_the_population_covariance():
    p = confusable_probabilities(200, seed=3)
    np.testing.assert_allclose(prediction_covariance(p), np.cov(p, rowvar=False, bias=True), atol=1e-15)
    with pytest.raises(ValueError, match="shape"):
        prediction_covariance(p[:1])


@pytest.mark.parametrize("k,seed", [(3, 0), (5, 1), (6, 7)])
def test_batch_kmeans_matches_sklearn_from_the_same_initial_centres(k, seed):
    cov = prediction_covariance(confusable_probabilities(seed=seed))
    init = kmeans_plus_plus(cov.T, k, seed)
    ours = kmeans_columns(cov, k, init=init)
    theirs = KMeans(n_clusters=k, init=init, n_init=1, algorithm="lloyd", tol=0.0, max_iter=300).fit(cov.T)
    np.testing.assert_array_equal(ours.labels, theirs.labels_)
    np.testing.assert_allclose(ours.centers, theirs.cluster_centers_, atol=1e-12)
    assert ours.inertia == pytest.approx(theirs.inertia_, rel=1e-9)


def test_seeded_clustering_is_deterministic_and_online_kmeans_finds_the_confused_groups():
    cov = prediction_covariance(confusable_probabilities(seed=2))
    a, b = kmeans_columns(cov, 6, seed=4), kmeans_columns(cov, 6, seed=4)
    np.testing.assert_array_equal(a.labels, b.labels)
    init = cov.T[[1, 3, 4, 0, 2, 6]]  # one column of each confused group as its first centre
    online = kmeans_columns(cov, 6, seed=4, init=init, online=True)
    sk = KMeans(n_clusters=6, init=init, n_init=1).fit(cov.T)
    assert sorted(online.members()) == sorted(tuple(np.flatnonzero(sk.labels_ == j)) for j in range(6))
    assert sorted(online.members()) == [(0,), (1, 7), (2,), (3, 5, 8), (4, 9), (6,)]
    with pytest.raises(ValueError, match="number of clusters k must be 1..10"):
        kmeans_columns(cov, 11)


def test_confusable_subsets_keep_the_useful_sizes_most_confused_first():
    p = confusable_probabilities(seed=2)
    cov = prediction_covariance(p)
    clusters = kmeans_columns(cov, 6, init=cov.T[[1, 3, 4, 0, 2, 6]])
    subsets = confusable_subsets(cov, clusters, min_size=2, max_size=3)
    assert sorted(subsets) == [(1, 7), (3, 5, 8), (4, 9)]
    scores = [np.mean([cov[i, j] for i in s for j in s if i != j]) for s in subsets]
    assert scores == sorted(scores, reverse=True)
    assert confusable_subsets(cov, clusters, min_size=3, max_size=4) == [(3, 5, 8)]
    assert confusable_subsets(cov, clusters, count=1) == subsets[:1]


def test_a_cluster_too_large_is_split_into_its_confused_groups():
    cov = prediction_covariance(confusable_probabilities(seed=5))
    groups = split_large_clusters(cov, [(0, 2, 6), (1, 7, 3, 5, 8), (4, 9)], max_size=3)
    assert sorted(groups) == [(0, 2, 6), (1, 7), (3, 5, 8), (4, 9)]
    assert split_large_clusters(cov, [(1, 7, 3, 5, 8)], max_size=5) == [(1, 7, 3, 5, 8)]


def test_label_map_and_dustbin_distribution():
    np.testing.assert_array_equal(specialist_label_map([5, 3], 6), [2, 2, 2, 1, 2, 0])
    with pytest.raises(ValueError, match="needs a dustbin"):
        specialist_label_map([0, 1, 2], 3)
    logits = torch.randn(7, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    p = torch.softmax(logits, 1).numpy()
    expected = np.concatenate([p[:, [8, 2]], p[:, [0, 1, 3, 4, 5, 6, 7, 9]].sum(1, keepdims=True)], axis=1)
    np.testing.assert_allclose(specialist_log_probs(logits, [8, 2]).exp().numpy(), expected, atol=1e-12)


def test_enrichment_gives_the_subset_its_share_and_the_correction_undoes_it():
    labels = torch.tensor([0] * 70 + [1] * 20 + [2] * 10)
    w = enrichment_weights(labels, [1, 2], 0.5)
    assert w.mean().item() == pytest.approx(1.0) and w[70:].sum().item() == pytest.approx(50.0)
    # a true posterior over {1, 2, dustbin}; the enriched data's posterior tilts it by e/f and (1-e)/(1-f)
    f, e = 0.3, 0.5
    true = torch.tensor([[0.2, 0.1, 0.7], [0.05, 0.6, 0.35]], dtype=torch.float64)
    tilted = true * torch.tensor([e / f, e / f, (1 - e) / (1 - f)], dtype=torch.float64)
    tilted = tilted / tilted.sum(1, keepdim=True)
    logits = torch.cat([tilted[:, :1].log(), tilted[:, 1:2].log(), tilted[:, 2:].log()], 1)  # class 2 alone the dustbin
    corrected = specialist_log_probs(logits, [0, 1], dustbin_bias=dustbin_logit_correction(f, e)).exp()
    np.testing.assert_allclose(corrected.numpy(), true.numpy(), atol=1e-12)
    assert dustbin_logit_correction(0.25, 0.25) == 0.0


def numpy_objective(z, p_g, p_ms, subsets, active):
    """Section 5.3's objective written out again with numpy, case by case."""
    q = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    kl = lambda p, r: sum(a * np.log(a / b) for a, b in zip(p, r) if a > 0)  # noqa: E731
    total = kl(p_g, q)
    for p_m, s, on in zip(p_ms, subsets, active):
        if on:
            total += kl(p_m, [*q[list(s)], sum(q[c] for c in range(len(q)) if c not in s)])
    return total


def random_case(seed: int, n: int = 5):
    g = torch.Generator().manual_seed(seed)
    p_g = torch.softmax(3 * torch.randn(n, 10, generator=g, dtype=torch.float64), 1)
    subsets = [(3, 5, 8), (1, 7), (4, 9)]
    p_ms = [torch.softmax(3 * torch.randn(n, len(s) + 1, generator=g, dtype=torch.float64), 1) for s in subsets]
    return p_g, p_ms, subsets


def test_combined_objective_against_numpy():
    p_g, p_ms, subsets = random_case(1)
    active = torch.tensor([[1, 0, 1], [0, 0, 0], [1, 1, 1], [0, 1, 0], [1, 1, 0]], dtype=torch.bool)
    z = torch.randn(5, 10, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    ours = combined_objective(z, p_g, p_ms, subsets, active).numpy()
    for n in range(5):
        ref = numpy_objective(z[n].numpy(), p_g[n].numpy(), [p[n].numpy() for p in p_ms], subsets, active[n].tolist())
        assert ours[n] == pytest.approx(ref, abs=1e-12)


def test_active_set_follows_the_generalists_top_n():
    p_g = torch.tensor([[0.1, 0.6, 0.3, 0.0], [0.5, 0.1, 0.15, 0.25]])
    assert active_specialists(p_g, [(1,), (2, 3)], top_n=1).tolist() == [[True, False], [False, False]]
    assert active_specialists(p_g, [(1,), (2, 3)], top_n=2).tolist() == [[True, True], [False, True]]


def test_without_active_specialists_the_combination_is_the_generalist():
    p_g, p_ms, _ = random_case(2)
    top = p_g.argmax(1).tolist()
    far = [tuple(c for c in range(10) if c not in top)[:2]]  # meets no case's top class
    exact = combine(p_g, p_ms[1:2], far, top_n=1)
    assert not exact.active.any()
    np.testing.assert_allclose(exact.q.numpy(), p_g.numpy(), atol=1e-12)
    descended = combine(p_g, p_ms[1:2], far, top_n=1, init="uniform", steps=1500)  # from q uniform, descent finds p^g
    assert descended.objective.max().item() < 1e-4
    np.testing.assert_allclose(descended.q.numpy(), p_g.numpy(), atol=1e-3)
    assert not torch.allclose(combine(p_g, p_ms[1:2], far, top_n=1, init="uniform", steps=5).q, p_g, atol=1e-3)


def test_combination_minimises_the_objective_like_scipy():
    p_g, p_ms, subsets = random_case(4)
    result = combine(p_g, p_ms, subsets, top_n=3, steps=2000)
    assert result.active.sum().item() >= 5 and result.gradient_max < 1e-4
    plain, heavy = (combine(p_g, p_ms, subsets, top_n=3, steps=200, momentum=m) for m in (0.0, 0.9))
    assert (plain.objective >= heavy.objective - 1e-9).all()  # momentum gets no less far than plain descent
    for n in range(len(p_g)):
        args = (p_g[n].numpy(), [p[n].numpy() for p in p_ms], subsets, result.active[n].tolist())
        ref = minimize(numpy_objective, np.log(p_g[n].numpy()), args=args, method="BFGS", options={"gtol": 1e-10})
        q_ref = np.exp(ref.x - ref.x.max()) / np.exp(ref.x - ref.x.max()).sum()
        assert result.objective[n].item() == pytest.approx(ref.fun, abs=1e-4)
        np.testing.assert_allclose(result.q[n].numpy(), q_ref, atol=1e-3)


def test_a_confident_specialist_moves_the_decision_within_its_subset():
    p_g = torch.tensor([[0.05, 0.0, 0.0, 0.5, 0.0, 0.4, 0.0, 0.0, 0.05, 0.0]], dtype=torch.float64)
    p_spec = torch.tensor([[0.02, 0.95, 0.01, 0.02]], dtype=torch.float64)  # classes 3, 5, 8 and the dustbin
    result = combine(p_g, [p_spec], [(3, 5, 8)], top_n=1, steps=2000)
    assert result.active.tolist() == [[True]] and result.q.argmax().item() == 5
    assert result.q[0, 5] > result.q[0, 3] and result.q.sum().item() == pytest.approx(1.0)
