"""Compressed storage of quantized (and pruned) layers, measured from real encoded bytes.

Han et al. 2016, "Deep Compression", sec. 2 and 4 (and Han et al. 2015, sec. 4): a pruned layer
keeps only its non-zero weights, in row-major order, each with the *relative* index (gap) from
the previous one, stored in ``gap_bits`` bits (5 for fc, 8 for conv layers). A gap larger than
2^gap_bits is bridged with filler zeros: an entry of value 0 placed 2^gap_bits after the previous
one. Each stored entry's value is a codebook index (a reserved extra symbol, K, marks a filler).
Indices and gaps are written fixed-width, or Huffman-coded (sec. 4).

The compression rate is original bits / compressed bits with

    original   = 32 * weights
    compressed = index bits + codebook bits (32 per centroid) + sparse-index bits + Huffman tables,

every term the length of a byte string that ``EncodedLayer.decode`` turns back into the weights.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .huffman import EncodedStream, HuffmanCode
from .kmeans import SharedWeights


def default_gap_bits(shape: tuple[int, ...]) -> int:
    """Han et al.'s relative-index width: 5 bits for fc (2-D) weights, 8 for conv weights."""
    return 5 if len(shape) <= 2 else 8


def relative_gaps(mask: np.ndarray, gap_bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Han's relative-index layout of the kept positions of ``mask`` (flattened row-major).

    Returns (positions, gap symbols, is_filler): every stored entry's position, its gap - 1 in
    0..2^gap_bits - 1 (a gap of g >= 1 positions from the previous entry, the first counted from
    position -1), and whether it is a filler zero inserted to bridge a gap above 2^gap_bits.
    """
    if not 1 <= int(gap_bits) <= 32:
        raise ValueError(f"gap_bits must be in 1..32, got {gap_bits}")
    span = 1 << int(gap_bits)
    kept = np.flatnonzero(np.asarray(mask).ravel())
    gaps = np.diff(kept, prepend=-1)
    fillers = (gaps - 1) // span  # fillers needed before each kept entry
    n_entries = kept.size + int(fillers.sum())
    # positions of fillers: prev + span, prev + 2 span, ...; then the kept entry itself
    prev = kept - gaps
    reps = fillers + 1
    owner = np.repeat(np.arange(kept.size), reps)
    step = np.arange(n_entries) - np.repeat(np.cumsum(reps) - reps, reps)
    is_filler = step < fillers[owner]
    positions = np.where(is_filler, prev[owner] + (step + 1) * span, kept[owner])
    symbols = np.diff(positions, prepend=-1) - 1
    return positions, symbols.astype(np.int64), is_filler


def fixed_width_code(alphabet: int) -> HuffmanCode:
    """Plain binary: every symbol 0..alphabet-1 in ceil(log2(alphabet)) bits (at least 1)."""
    width = max(1, math.ceil(math.log2(alphabet))) if alphabet > 1 else 1
    return HuffmanCode({s: width for s in range(alphabet)})


@dataclass
class LayerSize:
    """Storage of one layer in bits. ``value_bits`` give each stored weight its value (codebook
    indices, or 32-bit floats for a pruned-only layer)."""

    name: str
    n_weights: int
    n_kept: int
    n_entries: int
    value_bits: int
    codebook_bits: int = 0
    sparse_index_bits: int = 0
    table_bits: int = 0

    @property
    def original_bits(self) -> int:
        return 32 * self.n_weights

    @property
    def compressed_bits(self) -> int:
        return self.value_bits + self.codebook_bits + self.sparse_index_bits + self.table_bits

    @property
    def rate(self) -> float:
        return self.original_bits / self.compressed_bits if self.compressed_bits else float("inf")


@dataclass
class EncodedLayer:
    """A layer as bytes: codebook (float32), index stream, optional gap stream, code tables."""

    name: str
    shape: tuple[int, ...]
    n_kept: int
    codebook: bytes
    index_table: bytes
    index: EncodedStream
    gap_bits: int | None = None
    gap_table: bytes = b""
    gaps: EncodedStream | None = None
    huffman: bool = True

    def _codes(self) -> tuple[HuffmanCode, HuffmanCode | None]:
        k = len(self.codebook) // 4
        if not self.huffman:
            index_code = fixed_width_code(k + (1 if self.gaps is not None else 0))
            gap_code = fixed_width_code(1 << self.gap_bits) if self.gaps is not None else None
            return index_code, gap_code
        gap_code = HuffmanCode.from_table_bytes(self.gap_table) if self.gaps is not None else None
        return HuffmanCode.from_table_bytes(self.index_table), gap_code

    def decode(self) -> np.ndarray:
        """The weight tensor (float32, original shape) rebuilt from the bytes alone."""
        centroids = np.frombuffer(self.codebook, dtype="<f4")
        index_code, gap_code = self._codes()
        idx = index_code.decode(self.index)
        n = int(np.prod(self.shape))
        if self.gaps is None:
            return centroids[idx].reshape(self.shape).astype(np.float32)
        positions = np.cumsum(gap_code.decode(self.gaps) + 1) - 1
        values = np.zeros(idx.size, dtype=np.float32)
        real = idx < centroids.size  # index K marks a filler zero
        values[real] = centroids[idx[real]]
        out = np.zeros(n, dtype=np.float32)
        out[positions] = values
        return out.reshape(self.shape)

    def size(self) -> LayerSize:
        return LayerSize(
            name=self.name, n_weights=int(np.prod(self.shape)), n_kept=self.n_kept, n_entries=self.index.n_symbols,
            value_bits=8 * len(self.index.data), codebook_bits=8 * len(self.codebook),
            sparse_index_bits=8 * len(self.gaps.data) if self.gaps is not None else 0,
            table_bits=8 * (len(self.index_table) + len(self.gap_table)),
        )


def encode_layer(shared: SharedWeights, name: str = "", huffman: bool = True, gap_bits: int | None = None,
                 sparse: bool | None = None) -> EncodedLayer:
    """Encode a k-means-shared layer. ``sparse`` (default: when any weight is pruned) stores only
    kept entries with relative indices of ``gap_bits`` (default 5 fc / 8 conv); ``huffman``
    Huffman-codes the index and gap streams, else they are written fixed-width."""
    mask = shared.mask.cpu().numpy()
    indices = shared.indices.cpu().numpy()
    k = shared.num_clusters
    codebook = shared.centroids.detach().cpu().numpy().astype("<f4").tobytes()
    sparse = bool((~mask).any()) if sparse is None else bool(sparse)
    if not sparse:
        if not mask.all():
            raise ValueError("a dense encoding cannot keep pruned weights at zero; use sparse=True")
        symbols, gap_symbols = indices.ravel().astype(np.int64), None
    else:
        gap_bits = default_gap_bits(shared.shape) if gap_bits is None else int(gap_bits)
        positions, gap_symbols, is_filler = relative_gaps(mask, gap_bits)
        symbols = np.where(is_filler, k, indices.ravel()[positions]).astype(np.int64)
    if huffman and symbols.size:
        index_code = HuffmanCode.from_symbols(symbols)
        index_table = index_code.table_bytes()
    else:
        index_code, index_table = fixed_width_code(k + (1 if sparse else 0)), b""
    gaps = gap_table = None
    if gap_symbols is not None:
        if huffman and gap_symbols.size:
            gap_code = HuffmanCode.from_symbols(gap_symbols)
            gap_table = gap_code.table_bytes()
        else:
            gap_code, gap_table = fixed_width_code(1 << gap_bits), b""
        gaps = gap_code.encode(gap_symbols)
    return EncodedLayer(name=name, shape=shared.shape, n_kept=int(mask.sum()), codebook=codebook, index_table=index_table,
                        index=index_code.encode(symbols), gap_bits=gap_bits if sparse else None,
                        gap_table=gap_table or b"", gaps=gaps, huffman=bool(huffman and symbols.size))


@dataclass
class ModelSize:
    """Per-layer sizes and totals; biases (float32, not compressed) are counted separately."""

    layers: list[LayerSize]
    bias_count: int = 0

    @property
    def original_bits(self) -> int:
        return sum(s.original_bits for s in self.layers)

    @property
    def compressed_bits(self) -> int:
        return sum(s.compressed_bits for s in self.layers)

    @property
    def rate(self) -> float:
        """Weights only, as Han et al. 2016 table 1 reports it."""
        return self.original_bits / self.compressed_bits

    @property
    def rate_with_biases(self) -> float:
        bias_bits = 32 * self.bias_count
        return (self.original_bits + bias_bits) / (self.compressed_bits + bias_bits)


def model_size(encoded: dict[str, EncodedLayer] | list[LayerSize], bias_count: int = 0) -> ModelSize:
    """Totals over ``encode_model``'s layers (or any list of ``LayerSize``); ``bias_count`` >= 0."""
    if isinstance(bias_count, bool) or not hasattr(bias_count, "__index__") or bias_count < 0:
        raise ValueError(f"bias_count must be an integer >= 0, got {bias_count!r}")
    layers = [e.size() for e in encoded.values()] if isinstance(encoded, dict) else list(encoded)
    return ModelSize(layers, bias_count)


def encode_model(shared: dict[str, SharedWeights], huffman: bool = True, gap_bits: int | dict[str, int] | None = None) -> dict[str, EncodedLayer]:
    """``encode_layer`` for each layer of ``kmeans_quantize_model``'s result."""
    per = gap_bits if isinstance(gap_bits, dict) else {n: gap_bits for n in shared}
    return {n: encode_layer(sw, name=n, huffman=huffman, gap_bits=per.get(n)) for n, sw in shared.items()}
