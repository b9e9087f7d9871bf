"""Product quantization of weight matrices (Gong, Liu, Yang, Bourdev 2014, "Compressing Deep
Convolutional Networks using Vector Quantization", sec. 3.3; Jegou, Douze, Schmid 2011).

A weight matrix W (m, n) (a conv weight is read as (out, in*kh*kw)) is split by columns into
s = ceil(n / d) sub-matrices W^j (m, d) (the last may be narrower). In each sub-space the m row
sub-vectors are clustered with k-means into k = 2^bits codewords (eq. 7),

    min  sum_z sum_j ||w_z^j - c_{I(z,j)}^j||^2 ,

and W is stored as s codebooks (k, d) plus an index I(z, j) per row and sub-space: m*s*bits
index bits and k*n*32 codebook bits, against m*n*32 for the float matrix.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .kmeans import check_bits, check_iterations


@dataclass
class ProductQuantized:
    """Codebooks (one (k_j, d_j) float32 tensor per sub-space), codes (m, s) int64, and the
    original weight shape."""

    codebooks: list[torch.Tensor]
    codes: torch.Tensor
    shape: tuple[int, ...]
    bits: int

    def weight(self) -> torch.Tensor:
        """The reconstructed weight, of the original shape: row z of block j is codebook_j[I(z, j)]."""
        blocks = [cb[self.codes[:, j]] for j, cb in enumerate(self.codebooks)]
        return torch.cat(blocks, dim=1).reshape(self.shape)

    def index_bits(self) -> int:
        return int(self.codes.numel()) * self.bits

    def codebook_bits(self) -> int:
        return 32 * sum(int(cb.numel()) for cb in self.codebooks)


def kmeans_vectors(x: torch.Tensor, k: int, seed: int = 0, max_iter: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means on the rows of ``x`` (m, d), Forgy initialisation (k distinct rows, seeded).
    Returns (centroids (k', d), assignment (m,)); k' = min(k, m). An emptied cluster keeps its
    centroid."""
    m = x.shape[0]
    k = min(k, m)
    gen = torch.Generator().manual_seed(int(seed))
    centroids = x[torch.randperm(m, generator=gen)[:k]].clone()
    assign = torch.cdist(x, centroids).argmin(dim=1)
    for _ in range(max_iter):
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled].unsqueeze(1).to(x.dtype)
        new_assign = torch.cdist(x, centroids).argmin(dim=1)
        if torch.equal(new_assign, assign):
            break
        assign = new_assign
    return centroids, assign


def product_quantize(weight: torch.Tensor, bits: int, subvector: int = 4, seed: int = 0, max_iter: int = 50) -> ProductQuantized:
    """Product-quantize ``weight`` with sub-vectors of length ``subvector`` and 2^bits codewords
    per sub-space. Raises ``ValueError`` for an empty tensor, a tensor of fewer than 2 dimensions,
    bits outside 1..16, a sub-vector length outside 1..n, NaN or inf weights or a negative ``max_iter``."""
    bits = check_bits(bits)
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"weight must be a torch.Tensor, got {type(weight).__name__}")
    if weight.numel() == 0:
        raise ValueError("cannot product-quantize an empty tensor")
    if weight.dim() < 2:
        raise ValueError(f"product quantization needs a matrix (or conv weight), got shape {tuple(weight.shape)}")
    check_iterations(max_iter)
    w = weight.detach().to("cpu", torch.float32).reshape(weight.shape[0], -1)
    if not bool(torch.isfinite(w).all()):
        raise ValueError("weight contains NaN or inf; product quantization of it is undefined")
    n = w.shape[1]
    if isinstance(subvector, bool) or not hasattr(subvector, "__index__"):
        raise TypeError(f"subvector must be an integer, got {subvector!r}")
    if not 1 <= int(subvector) <= n:
        raise ValueError(f"subvector must be in 1..{n} for a matrix with {n} columns, got {subvector}")
    codebooks, codes = [], []
    for j, block in enumerate(torch.split(w, int(subvector), dim=1)):
        cb, idx = kmeans_vectors(block.contiguous(), 2**bits, seed=seed + j, max_iter=max_iter)
        codebooks.append(cb)
        codes.append(idx)
    return ProductQuantized(codebooks, torch.stack(codes, dim=1), tuple(weight.shape), bits)
