"""Plain reference computations (numpy loops, a torch forward pass) that tests check the code under
test against; written independently of ``kdviz``'s own implementations."""
from __future__ import annotations

import copy
import heapq

import numpy as np
import torch


def lloyd_linear(w: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means on the non-zero weights with linear initialisation (Han et al. 2016, section 3.2):
    (centroids, quantized weight). Empty clusters are dropped; zeros stay zero."""
    x = w[w != 0].astype(np.float64)
    c, assign = np.linspace(x.min(), x.max(), k), None
    for _ in range(300):
        new = np.abs(x[:, None] - c[None, :]).argmin(axis=1)
        if assign is not None and np.array_equal(new, assign):
            break
        assign = new
        c = np.array([x[assign == j].mean() if (assign == j).any() else np.nan for j in range(len(c))])
    c = c[~np.isnan(c)]
    q = w.astype(np.float64).copy()
    q[w != 0] = c[np.abs(x[:, None] - c[None, :]).argmin(axis=1)]
    return c, q


def accuracy_with_weights(model, data, weights: dict[str, np.ndarray]) -> float:
    """Test accuracy of a copy of ``model`` whose layers ``weights`` names get those weights."""
    m = copy.deepcopy(model).eval()
    with torch.no_grad():
        for name, w in weights.items():
            getattr(m, name).weight.copy_(torch.as_tensor(w, dtype=torch.float32))
        return float((m(data.test_images).argmax(1) == data.test_labels).double().mean())


def huffman_total_bits(counts) -> int:
    """The optimal (Huffman) total code length for symbol ``counts``: the sum of every merged weight
    (Huffman 1952), computed with a plain heap."""
    heap = [c for c in counts if c > 0]
    heapq.heapify(heap)
    total = 0
    while len(heap) > 1:
        a, b = heapq.heappop(heap), heapq.heappop(heap)
        total += a + b
        heapq.heappush(heap, a + b)
    return total
