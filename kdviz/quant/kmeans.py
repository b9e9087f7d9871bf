"""k-means weight sharing, one codebook per layer (Han, Mao, Dally 2016, "Deep Compression", sec. 3).

The n weights W = {w_1..w_n} of a layer are partitioned into k = 2^bits clusters C = {c_1..c_k}
minimising the within-cluster sum of squares (eq. 1)

    argmin_C  sum_i sum_{w in c_i} |w - c_i|^2 ,

so a layer is stored as a codebook of k floats plus a ``bits``-bit index per weight. Pruned
(zero) weights take no part: they are excluded from clustering and stay exactly zero.

The three initialisations of sec. 3.2 live in the ``INITS`` registry:

- ``linear``:  k centroids evenly spaced between min(W) and max(W);
- ``density``: the quantiles of W at k evenly spaced probabilities in [0, 1] (the CDF of the
  weights spaced evenly on its y axis, read back on the x axis);
- ``random``:  Forgy, k weights drawn at random from W (seeded).

Lloyd's iterations are exact and fast in 1-D: with the weights sorted once, each cluster is a
contiguous run of the sorted values (the boundaries are the midpoints between neighbouring
centroids), so one iteration is a ``searchsorted`` plus prefix sums, O(k log n), in numpy.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np
import torch

from ..registry import Registry

INITS: Registry = Registry("k-means initialisation")

MIN_BITS, MAX_BITS = 1, 16


def check_bits(bits: int) -> int:
    """``bits`` as an int, or a ``ValueError`` when it is outside 1..16."""
    if isinstance(bits, bool) or not hasattr(bits, "__index__"):
        raise TypeError(f"bits must be an integer, got {type(bits).__name__}")
    bits = operator.index(bits)
    if not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(f"bits must be in {MIN_BITS}..{MAX_BITS}, got {bits}")
    return bits


def check_iterations(max_iter: int, tol: float | None = None) -> None:
    """A ``ValueError`` unless ``max_iter`` is an integer >= 0 (0: the initial centroids only) and
    ``tol`` (when given) a finite number >= 0."""
    if isinstance(max_iter, bool) or not hasattr(max_iter, "__index__") or operator.index(max_iter) < 0:
        raise ValueError(f"max_iter must be an integer >= 0, got {max_iter!r}")
    if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 <= tol < float("inf")):
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")


@INITS.register("linear")
def linear_init(values: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """k centroids evenly spaced over [min, max] of the sorted ``values`` (Han 2016, sec. 3.2)."""
    return torch.linspace(float(values[0]), float(values[-1]), k, dtype=torch.float64)


@INITS.register("density")
def density_init(values: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Quantiles of the sorted ``values`` at probabilities linspace(0, 1, k), linearly interpolated
    (the same rule as ``numpy.quantile``'s default), Han 2016 sec. 3.2."""
    n = values.numel()
    pos = torch.linspace(0.0, 1.0, k, dtype=torch.float64) * (n - 1)
    lo = pos.floor().long().clamp(max=n - 1)
    hi = (lo + 1).clamp(max=n - 1)
    frac = pos - lo.to(torch.float64)
    return values[lo] + (values[hi] - values[lo]) * frac


@INITS.register("random")
def random_init(values: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Forgy: k of the weights drawn without replacement (all of them when there are fewer)."""
    pick = torch.randperm(values.numel(), generator=generator)[: min(k, values.numel())]
    return values[pick]


def _distinct(x: np.ndarray) -> np.ndarray:
    """The distinct values of sorted ``x``, ascending (O(n), no sort)."""
    return x[np.concatenate([[True], x[1:] != x[:-1]])] if x.size else x


def _relocate_empty(
    values: np.ndarray, centroids: np.ndarray, bounds: np.ndarray, prefix: np.ndarray, n_missing: int
) -> np.ndarray:
    """One Lloyd update that also re-seeds ``n_missing`` emptied clusters (sorted 1-D data).

    As scikit-learn's ``_relocate_empty_clusters`` (and Faiss): each empty cluster is re-seeded
    at one of the points farthest from the centroid they were assigned to (distances to the
    centroids *before* this update), and that point leaves its old cluster, whose mean is taken
    without it. Candidates are distinct values, so two re-seeded centroids never coincide.
    ``values`` are the data's distinct values, ascending. Returns the new centroids, sorted (the
    cluster means plus the re-seeded points).
    """
    counts = np.diff(bounds).astype(np.float64)
    sums = prefix[bounds[1:]] - prefix[bounds[:-1]]
    owner = np.searchsorted((centroids[1:] + centroids[:-1]) / 2, values, side="left")  # its cluster
    distance = np.abs(values - centroids[owner])
    n_missing = min(n_missing, int(np.count_nonzero(distance)))
    if n_missing <= 0:
        return np.unique(sums[counts > 0] / counts[counts > 0])
    far = np.argpartition(distance, -n_missing)[-n_missing:]
    np.subtract.at(sums, owner[far], values[far])  # each re-seeding point leaves its old cluster
    np.subtract.at(counts, owner[far], 1.0)
    keep = counts > 0
    return np.unique(np.concatenate([sums[keep] / counts[keep], values[far]]))


def lloyd_1d(
    sorted_values: torch.Tensor | np.ndarray, centroids: torch.Tensor | np.ndarray, max_iter: int = 300,
    tol: float = 1e-7, prefix: np.ndarray | None = None, n_clusters: int | None = None,
    distinct: np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's algorithm on sorted 1-D data (float64). Returns (centroids, counts), ascending.

    The codebook keeps k = min(``n_clusters`` (default: the number of given centroids), distinct
    data values) entries: a cluster that empties (or a centroid the initialisation duplicated) is
    re-seeded at the point farthest from its centroid (``_relocate_empty``, as scikit-learn and
    Faiss), not dropped. Fewer than k clusters come back only when ``max_iter`` runs out while
    clusters are still being re-seeded (or is 0). Stops when the assignment no
    longer changes or no centroid moves by more than ``tol`` times the data range. ``prefix``
    (the cumulative sums of the data with a leading 0) and ``distinct`` (its distinct values) may
    be passed in when cached.

    The loop runs in numpy: each iteration is a handful of O(k) operations plus one
    ``searchsorted``; only an iteration with an empty cluster costs O(n) more.
    """
    x = np.asarray(sorted_values, dtype=np.float64)
    if prefix is None:
        prefix = np.concatenate([[0.0], np.cumsum(x)])
    n = x.size
    step_tol = tol * float(x[-1] - x[0])
    c = np.unique(np.asarray(centroids, dtype=np.float64))  # sorted, distinct
    k = int(np.asarray(centroids).size if n_clusters is None else n_clusters)
    distinct = _distinct(x) if distinct is None else distinct
    k = min(k, distinct.size)

    def assign(c: np.ndarray) -> np.ndarray:
        # cluster runs of the sorted data; a value exactly on a midpoint joins the lower cluster
        bounds = np.empty(c.size + 1, dtype=np.int64)
        bounds[0], bounds[-1] = 0, n
        bounds[1:-1] = np.searchsorted(x, (c[1:] + c[:-1]) / 2, side="right")
        return bounds

    bounds = assign(c)
    for _ in range(max_iter):
        counts = np.diff(bounds)
        keep = counts > 0
        n_missing = k - int(np.count_nonzero(keep))
        if n_missing <= 0 and keep.all():  # update: cluster means
            new_c = (prefix[bounds[1:]] - prefix[bounds[:-1]]) / counts
        else:  # drop the empty clusters, re-seed up to k
            new_c = _relocate_empty(distinct, c, bounds, prefix, n_missing)
        moved = new_c.size != c.size or float(np.abs(new_c - c).max()) > step_tol
        c = new_c
        new_bounds = assign(c)
        converged = (np.array_equal(new_bounds, bounds) or not moved) and n_missing <= 0
        bounds = new_bounds
        if converged:
            break
    counts = np.diff(bounds)
    keep = counts > 0
    return torch.from_numpy(c[keep]), torch.from_numpy(counts[keep])


@dataclass
class SharedWeights:
    """A layer's weights as a codebook and an index per weight (Han 2016, fig. 3).

    ``centroids`` (K,) float32 ascending, K = 2^bits unless the kept weights have fewer distinct
    values; ``indices`` int64 of the weight's shape;
    ``mask`` bool of the weight's shape, False where the weight is pruned (its index is 0 and
    meaningless, its value exactly zero).
    """

    centroids: torch.Tensor
    indices: torch.Tensor
    mask: torch.Tensor
    bits: int

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.indices.shape)

    @property
    def num_clusters(self) -> int:
        return int(self.centroids.numel())

    def weight(self) -> torch.Tensor:
        """The shared weight tensor: centroids[indices] where kept, exactly 0 where pruned."""
        return torch.where(self.mask, self.centroids[self.indices], torch.zeros((), dtype=self.centroids.dtype))

    def cluster_counts(self) -> torch.Tensor:
        """Number of kept weights per centroid, shape (K,)."""
        return torch.bincount(self.indices[self.mask], minlength=self.num_clusters)


class SortedWeights:
    """The kept (non-pruned) weights of one tensor, sorted once, so that re-clustering at another
    bit width or initialisation (the bits slider) costs only Lloyd's O(k log n) iterations."""

    def __init__(self, weight: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        if not isinstance(weight, torch.Tensor):
            raise TypeError(f"weight must be a torch.Tensor, got {type(weight).__name__}")
        if weight.numel() == 0:
            raise ValueError("cannot cluster an empty weight tensor")
        w = weight.detach().to("cpu", torch.float64)
        if not bool(torch.isfinite(w).all()):
            raise ValueError("weight contains NaN or inf")
        if mask is None:
            mask = w != 0
        else:
            if tuple(mask.shape) != tuple(weight.shape):
                raise ValueError(f"mask shape {tuple(mask.shape)} does not match weight shape {tuple(weight.shape)}")
            mask = mask.detach().to("cpu").bool() & (w != 0)
        self.shape = tuple(weight.shape)
        self.mask = mask
        self.values = w[mask]
        self.sorted, order = torch.sort(self.values)
        self._x = self.sorted.numpy()
        self._prefix = np.concatenate([[0.0], np.cumsum(self._x)])
        self._distinct = _distinct(self._x)
        # flat position in the weight of each sorted value: assignments scatter straight back
        self._positions = np.flatnonzero(mask.numpy().ravel())[order.numpy()]

    def cluster(self, bits: int, init: str = "linear", seed: int = 0, max_iter: int = 300, tol: float = 1e-7) -> SharedWeights:
        """k-means with 2^bits clusters; see ``kmeans_quantize``."""
        bits = check_bits(bits)
        init_fn = INITS.get(init)
        check_iterations(max_iter, tol)
        if self.sorted.numel() == 0:  # every weight pruned: a one-entry codebook {0}, nothing kept
            return SharedWeights(torch.zeros(1), torch.zeros(self.shape, dtype=torch.long), self.mask.clone(), bits)
        gen = torch.Generator().manual_seed(int(seed))
        start = init_fn(self.sorted, 2**bits, gen)
        centroids, counts = lloyd_1d(self._x, start.numpy(), max_iter=max_iter, tol=tol, prefix=self._prefix,
                                     n_clusters=2**bits, distinct=self._distinct)
        # each sorted value's cluster is its run; scatter back to the weight's positions
        indices = np.zeros(int(np.prod(self.shape)), dtype=np.int64)
        indices[self._positions] = np.repeat(np.arange(centroids.numel()), counts.numpy())
        return SharedWeights(centroids.to(torch.float32), torch.from_numpy(indices).reshape(self.shape),
                             self.mask.clone(), bits)


def kmeans_quantize(
    weight: torch.Tensor, bits: int, init: str = "linear", mask: torch.Tensor | None = None, seed: int = 0,
    max_iter: int = 300, tol: float = 1e-7,
) -> SharedWeights:
    """Cluster one weight tensor into at most 2^bits shared values (Han 2016, sec. 3, eq. 1).

    ``mask`` (bool, weight's shape) marks kept weights (e.g. a pruning mask); by default every
    non-zero weight is kept. A weight that is exactly zero always counts as pruned.

    The codebook has exactly 2^bits distinct entries whenever the kept weights take at least 2^bits
    distinct values: a cluster that empties during Lloyd's iterations is re-seeded at the weight
    farthest from its centroid, as scikit-learn's ``KMeans`` and Faiss do, instead of being dropped
    (dropping it left heavy-tailed layers with half their codebook and several times the error).
    With fewer distinct values d < 2^bits, the codebook is those d values, each weight exactly
    represented (a constant tensor gets a one-entry codebook); ``encode_layer`` then writes
    ceil(log2 d) bits an index rather than ``bits``. ``max_iter=0`` keeps the initial centroids (duplicates merged, empty ones dropped).

    Lloyd stops when assignments are stable, after ``max_iter`` iterations, or when no
    centroid moves more than ``tol`` times the weight range (``tol=0``: run to a fixed point).
    Raises ``ValueError`` for an empty tensor, bits outside 1..16 or an unknown ``init``.
    """
    return SortedWeights(weight, mask).cluster(bits, init=init, seed=seed, max_iter=max_iter, tol=tol)


def quantizable_layers(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """The model's Linear and Conv layers by module name (``fc1``, ``conv2``...), forward order."""
    kinds = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
    layers = {name: m for name, m in model.named_modules() if isinstance(m, kinds)}
    if not layers:
        raise ValueError(f"{type(model).__name__} has no Linear or Conv layers to quantize")
    return layers


def select_layers(model: torch.nn.Module, names: list[str] | None) -> dict[str, torch.nn.Module]:
    """``quantizable_layers`` restricted to ``names`` (all when None); unknown names are an error."""
    layers = quantizable_layers(model)
    if names is None:
        return layers
    unknown = [n for n in names if n not in layers]
    if unknown:
        raise ValueError(f"unknown layers {unknown} (quantizable: {', '.join(layers)})")
    return {n: layers[n] for n in names}


def kmeans_quantize_model(
    model: torch.nn.Module, bits: int | dict[str, int], init: str = "linear", layers: list[str] | None = None, seed: int = 0
) -> dict[str, SharedWeights]:
    """``kmeans_quantize`` on every selected layer's weight (biases stay float, as in Han 2016).

    ``bits`` is one width for all layers or a dict per layer name (Han uses 8 bits for conv and 5
    for fc layers in AlexNet, 6 for all of LeNet-300-100). The model is not modified.
    """
    chosen = select_layers(model, layers)
    per_layer = bits if isinstance(bits, dict) else {name: bits for name in chosen}
    missing = [n for n in chosen if n not in per_layer]
    if missing:
        raise ValueError(f"no bit width given for layers {missing}")
    return {name: kmeans_quantize(m.weight, per_layer[name], init=init, seed=seed) for name, m in chosen.items()}
