"""Compressed storage of quantized (and pruned) layers, measured from real encoded bytes.

Han et al. 2016, "Deep Compression", sec. 2 and 4 (and Han et al. 2015, sec. 4): a pruned layer
keeps only its non-zero weights, in row-major order, each with the *relative* index (gap) from
the previous one, stored in ``gap_bits`` = b bits (5 for fc, 8 for conv layers), and its weight
index into the codebook. A gap too long for b bits is bridged with *filler* entries (sec. 2,
fig. 2): a filler is an ordinary entry, b gap bits plus one weight index, whose index is a padding
value that the decoder ignores, so K = 2^bits clusters take exactly ``bits`` bits per index.

Gap code convention (b-bit code c per entry, in 0..2^b - 1):

- c in 0..2^b - 2: a real entry c + 1 positions after the previous entry (gap 1..2^b - 1; the
  first entry counted from position -1), i.e. c is the run of pruned zeros before it;
- c = 2^b - 1: a filler, standing for the zero 2^b - 1 positions after the previous entry.

Han's figure 2 instead lets real gaps reach 2^b and tells a filler by its stored value, 0; his
released decoder (github.com/songhan/Deep-Compression-AlexNet, decode.py) reads pruned positions
as codebook entry 0, which must therefore hold the value zero. When all 2^bits clusters hold kept
(non-zero) weights there is no such entry, and a reserved extra index symbol for fillers would
cost bits + 1 per index; reserving the top gap code instead only shortens the longest real gap
from 2^b to 2^b - 1, so a gap g takes (g - 1) // (2^b - 1) fillers rather than (g - 1) // 2^b.
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
    """Han's relative-index layout of the kept positions of ``mask`` (flattened row-major), with the
    gap codes of the module docstring: a real entry's code is its gap - 1, in 0..2^b - 2 (gaps
    1..2^b - 1); a filler's code is 2^b - 1 and it sits 2^b - 1 positions after the previous entry.

    Returns (positions, gap codes, is_filler): every stored entry's position, its b-bit gap code,
    and whether it is a filler inserted to bridge a gap of 2^b or more.
    """
    if not 1 <= int(gap_bits) <= 32:
        raise ValueError(f"gap_bits must be in 1..32, got {gap_bits}")
    reach = (1 << int(gap_bits)) - 1  # the longest real gap, and how far a filler advances
    kept = np.flatnonzero(np.asarray(mask).ravel())
    gaps = np.diff(kept, prepend=-1)
    fillers = (gaps - 1) // reach  # fillers needed before each kept entry
    n_entries = kept.size + int(fillers.sum())
    # positions of fillers: prev + reach, prev + 2 reach, ...; then the kept entry itself
    prev = kept - gaps
    reps = fillers + 1
    owner = np.repeat(np.arange(kept.size), reps)
    step = np.arange(n_entries) - np.repeat(np.cumsum(reps) - reps, reps)
    is_filler = step < fillers[owner]
    positions = np.where(is_filler, prev[owner] + (step + 1) * reach, kept[owner])
    codes = np.where(is_filler, reach, np.diff(positions, prepend=-1) - 1)
    return positions, codes.astype(np.int64), is_filler


def positions_from_gaps(codes: np.ndarray, gap_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of ``relative_gaps``: (positions, is_filler) of every entry from its gap codes."""
    reach = (1 << int(gap_bits)) - 1
    codes = np.asarray(codes, dtype=np.int64)
    is_filler = codes == reach
    positions = np.cumsum(np.where(is_filler, reach, codes + 1)) - 1
    return positions, is_filler


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
            index_code = fixed_width_code(k)
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
        positions, is_filler = positions_from_gaps(gap_code.decode(self.gaps), self.gap_bits)
        out = np.zeros(n, dtype=np.float32)  # a filler's position stays zero; its index is padding
        out[positions[~is_filler]] = centroids[idx[~is_filler]]
        return out.reshape(self.shape)

    def size(self) -> LayerSize:
        return LayerSize(
            name=self.name, n_weights=int(np.prod(self.shape)), n_kept=self.n_kept, n_entries=self.index.n_symbols,
            value_bits=8 * len(self.index.data), codebook_bits=8 * len(self.codebook),
            sparse_index_bits=8 * len(self.gaps.data) if self.gaps is not None else 0,
            table_bits=8 * (len(self.index_table) + len(self.gap_table)),
        )


def padding_index(real_indices: np.ndarray) -> int:
    """The weight index written in a filler's slot: the most frequent real index (0 when there
    is none), so that Huffman coding gives it the shortest code; the decoder ignores it."""
    return int(np.bincount(real_indices).argmax()) if real_indices.size else 0


def encode_layer(shared: SharedWeights, name: str = "", huffman: bool = True, gap_bits: int | None = None,
                 sparse: bool | None = None) -> EncodedLayer:
    """Encode a k-means-shared layer. ``sparse`` (default: when any weight is pruned) stores only
    kept entries with relative indices of ``gap_bits`` (default 5 fc / 8 conv) and filler entries
    for long gaps (module docstring); ``huffman`` Huffman-codes the index and gap streams, else they
    are written fixed-width: ceil(log2 K) bits per index (``bits`` bits for the full 2^bits
    clusters, fillers included) and ``gap_bits`` per gap."""
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
        symbols = indices.ravel()[positions].astype(np.int64)
        symbols[is_filler] = padding_index(symbols[~is_filler])
    if huffman and symbols.size:
        index_code = HuffmanCode.from_symbols(symbols)
        index_table = index_code.table_bytes()
    else:
        index_code, index_table = fixed_width_code(k), b""
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
