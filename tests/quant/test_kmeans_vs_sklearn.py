"""k-means weight sharing against scikit-learn's Lloyd (issue 15: empty clusters are re-seeded).

``sklearn.cluster.KMeans(init=<the same centroids>, n_init=1, algorithm="lloyd")`` re-seeds a
cluster that empties at the point farthest from its centroid (``_relocate_empty_clusters``); kdviz
must do the same, so the codebook keeps 2^bits entries and the squared error (Han et al. 2016,
sec. 3, eq. 1) matches sklearn's. Before the fix, heavy-tailed weights lost up to half of their
codebook (Student-t(2), 5 bits: 17 of 32 centroids, 5.4x sklearn's error).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kdviz.quant import INITS, kmeans_quantize

sklearn_cluster = pytest.importorskip("sklearn.cluster")

N = 12_000


def _weights(kind: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        x = rng.normal(0.0, 0.05, N)
    elif kind == "laplace":
        x = rng.laplace(0.0, 0.05, N)
    elif kind == "bimodal":
        x = np.concatenate([rng.normal(-0.1, 0.02, N // 2), rng.normal(0.1, 0.02, N - N // 2)])
    else:  # Student-t with 2 degrees of freedom: heavy tails, the case that emptied clusters most
        x = rng.standard_t(2, N) * 0.05
    return x.astype(np.float32).astype(np.float64)  # float32 weights, compared in float64


def _sse(x: np.ndarray, centroids: np.ndarray, labels: np.ndarray) -> float:
    return float(((x - centroids[labels]) ** 2).sum())


def _sklearn_sse(x: np.ndarray, init: np.ndarray) -> tuple[float, int]:
    km = sklearn_cluster.KMeans(n_clusters=init.size, init=init.reshape(-1, 1), n_init=1, algorithm="lloyd",
                                tol=0.0, max_iter=300).fit(x.reshape(-1, 1))
    return _sse(x, km.cluster_centers_.ravel(), km.labels_), np.unique(km.cluster_centers_).size


def _kdviz_init(x: np.ndarray, bits: int, init: str, seed: int = 0) -> np.ndarray:
    """The centroids kdviz starts from, computed by its own registered initialisation."""
    values = torch.sort(torch.from_numpy(x)).values
    return INITS.get(init)(values, 2**bits, torch.Generator().manual_seed(seed)).numpy().astype(np.float64)


@pytest.mark.parametrize("bits", [3, 4, 5])
@pytest.mark.parametrize("kind", ["gaussian", "laplace", "bimodal", "student_t2"])
def test_linear_init_matches_sklearn_with_the_same_init(kind, bits):
    x = _weights(kind)
    sw = kmeans_quantize(torch.from_numpy(x), bits, init="linear")
    centroids = sw.centroids.double().numpy()
    assert sw.num_clusters == 2**bits and np.unique(centroids).size == 2**bits
    init = np.linspace(x.min(), x.max(), 2**bits)
    np.testing.assert_allclose(_kdviz_init(x, bits, "linear"), init, rtol=0, atol=1e-12)
    ours = _sse(x, centroids, sw.indices.numpy())
    reference, sklearn_distinct = _sklearn_sse(x, init)
    assert sklearn_distinct == 2**bits
    assert ours <= 1.01 * reference, f"{kind} {bits} bits: SSE {ours:.4g} vs sklearn {reference:.4g}"
    # float32 centroids: each weight's index is its nearest centroid, up to float32 rounding
    nearest = np.abs(x[:, None] - centroids[None, :]).min(axis=1)
    assert np.all(np.abs(x - centroids[sw.indices.numpy()]) <= nearest + 1e-6)


@pytest.mark.parametrize("init", ["density", "random"])
@pytest.mark.parametrize("kind", ["laplace", "student_t2"])
def test_other_inits_keep_the_full_codebook_and_match_sklearn(kind, init):
    x = _weights(kind, seed=1)
    for bits in (4, 6):
        sw = kmeans_quantize(torch.from_numpy(x), bits, init=init, seed=3)
        assert sw.num_clusters == 2**bits and np.unique(sw.centroids.numpy()).size == 2**bits
        ours = _sse(x, sw.centroids.double().numpy(), sw.indices.numpy())
        reference, _ = _sklearn_sse(x, _kdviz_init(x, bits, init, seed=3))
        assert ours <= 1.01 * reference, f"{kind} {init} {bits} bits: SSE {ours:.4g} vs sklearn {reference:.4g}"


def test_heavy_tails_no_longer_lose_half_the_codebook():
    x = _weights("student_t2")
    sw = kmeans_quantize(torch.from_numpy(x), 5)
    counts = sw.cluster_counts()
    assert sw.num_clusters == 32 and bool((counts > 0).all())
    # the re-seeded centroids went to the tails, where the error was
    assert float(sw.centroids.abs().max()) > 10 * float(np.median(np.abs(x)))


def test_fewer_distinct_weights_than_clusters_keeps_each_value():
    rng = np.random.default_rng(0)
    levels = np.array([-0.3, -0.1, 0.05, 0.2, 0.7])
    w = torch.from_numpy(rng.choice(levels, size=(50, 40)).astype(np.float32))
    for init in ("linear", "density", "random"):
        sw = kmeans_quantize(w, 4, init=init)
        assert sw.num_clusters == 5, init  # d = 5 < 16 distinct values: the codebook is those values
        np.testing.assert_array_equal(sw.centroids.numpy(), levels.astype(np.float32))
        assert torch.equal(sw.weight(), w)


def test_exactly_2_pow_bits_distinct_values_with_heavy_ties_fill_the_codebook():
    rng = np.random.default_rng(1)
    levels = np.sort(rng.standard_t(2, 16)) * 0.05
    counts = rng.integers(1, 400, 16)
    w = torch.from_numpy(np.repeat(levels, counts).astype(np.float32))
    for init in ("linear", "density", "random"):  # duplicated initial centroids are re-seeded too
        sw = kmeans_quantize(w, 4, init=init, seed=2)
        assert sw.num_clusters == 16, init
        assert torch.equal(sw.weight(), w)
