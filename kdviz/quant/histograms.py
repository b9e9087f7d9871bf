"""Pictures of a quantized layer as arrays: the histogram of its non-zero weights and its index map.

Shared by the quantization hooks' snapshots, the explorers and the Deep Compression pipeline, so
every chart of a codebook is drawn from the same numbers (Han et al. 2016, "Deep Compression",
fig. 3 draws the same histogram with the centroids on it).
"""
from __future__ import annotations

import numpy as np
import torch

from .kmeans import SharedWeights


def weight_histogram(values: np.ndarray, bins: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """(counts, edges) of the non-zero ``values``; empty arrays when all are zero."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[v != 0]
    if v.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    counts, edges = np.histogram(v, bins=bins)
    return counts.astype(np.int64), edges.astype(np.float32)


def index_map(shared: SharedWeights, max_side: int = 128) -> np.ndarray:
    """The cluster index of each weight as a 2-D int32 map (out, in*kh*kw), pruned weights -1,
    evenly subsampled to at most ``max_side`` rows and columns (``max_side`` >= 1)."""
    if isinstance(max_side, bool) or not hasattr(max_side, "__index__") or max_side < 1:
        raise ValueError(f"max_side must be an integer >= 1, got {max_side!r}")
    idx = torch.where(shared.mask, shared.indices, torch.full_like(shared.indices, -1))
    idx = idx.reshape(idx.shape[0], -1) if idx.dim() > 1 else idx.reshape(1, -1)
    rows, cols = map_positions(tuple(idx.shape), max_side)
    return idx.cpu().numpy()[np.ix_(rows, cols)].astype(np.int32)


def map_2d(codes: np.ndarray) -> np.ndarray:
    """A code tensor as (out, rest): rows are output units (conv filters), columns their inputs."""
    return np.asarray(codes).reshape(codes.shape[0], -1) if np.ndim(codes) > 1 else np.asarray(codes).reshape(1, -1)


def map_positions(shape: tuple[int, int], max_side: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """The rows and columns of a ``shape`` (rows, columns) map that an evenly subsampled map of at most
    ``max_side`` per side keeps (its real unit and input numbers, for a chart's axes)."""
    rows, cols = (np.unique(np.linspace(0, n - 1, min(max_side, n)).round().astype(int)) for n in shape)
    return rows, cols
