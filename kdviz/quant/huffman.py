"""Huffman coding with exact bit counts and a real byte encoding (Huffman 1952; used by Han et al.
2016, "Deep Compression", sec. 4, for the quantized weight indices and the sparse-index gaps).

``HuffmanCode.from_counts`` builds an optimal prefix code: repeatedly merge the two least frequent
nodes; a symbol's code length is its leaf depth. Codes are canonical (sorted by length, then
symbol), so the code is fully described by the code lengths, which is what ``table_bytes``
stores: one length byte per symbol 0..max_symbol. ``encode`` packs the codes MSB-first into
bytes; ``decode`` reads them back. A one-symbol alphabet gets a 1-bit code.
"""
from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

_TABLE_DECODE_MAX_LENGTH = 20  # longest code decoded through a 2^L lookup table


def _as_counts(counts: Mapping[int, int] | np.ndarray | list[int]) -> dict[int, int]:
    if isinstance(counts, Mapping):
        items = {int(s): int(c) for s, c in counts.items()}
    else:
        arr = np.asarray(counts)
        if arr.ndim != 1:
            raise ValueError(f"counts must be a mapping or a 1-D array, got shape {arr.shape}")
        items = {i: int(c) for i, c in enumerate(arr.tolist())}
    if any(s < 0 for s in items):
        raise ValueError("symbols must be non-negative integers")
    if any(c < 0 for c in items.values()):
        raise ValueError("counts must be non-negative")
    used = {s: c for s, c in items.items() if c > 0}
    if not used:
        raise ValueError("cannot build a Huffman code with no symbol of positive count")
    return used


def huffman_code_lengths(counts: Mapping[int, int] | np.ndarray | list[int]) -> dict[int, int]:
    """Optimal code length per symbol with a positive count (Huffman's merge, O(n log n))."""
    used = _as_counts(counts)
    symbols = sorted(used)
    if len(symbols) == 1:
        return {symbols[0]: 1}
    n = len(symbols)
    parent = [0] * (2 * n - 1)
    heap = [(used[s], i) for i, s in enumerate(symbols)]  # (weight, node id): ties by id, deterministic
    heapq.heapify(heap)
    next_id = n
    while len(heap) > 1:
        w1, a = heapq.heappop(heap)
        w2, b = heapq.heappop(heap)
        parent[a] = parent[b] = next_id
        heapq.heappush(heap, (w1 + w2, next_id))
        next_id += 1
    depth = [0] * (2 * n - 1)
    for node in range(2 * n - 3, -1, -1):  # parents have larger ids: walk from the root down
        depth[node] = depth[parent[node]] + 1
    return {s: depth[i] for i, s in enumerate(symbols)}


def canonical_codes(lengths: Mapping[int, int]) -> dict[int, int]:
    """Canonical code words (as integers, MSB first) for code ``lengths``."""
    code, prev_len, out = 0, 0, {}
    for sym, length in sorted(lengths.items(), key=lambda kv: (kv[1], kv[0])):
        code <<= length - prev_len
        out[sym] = code
        code += 1
        prev_len = length
    return out


@dataclass
class EncodedStream:
    """Bytes of a Huffman-coded symbol stream, with its exact bit and symbol counts."""

    data: bytes
    n_bits: int
    n_symbols: int


class HuffmanCode:
    """A canonical Huffman code over non-negative integer symbols."""

    def __init__(self, lengths: Mapping[int, int]) -> None:
        if not lengths:
            raise ValueError("a Huffman code needs at least one symbol")
        self.lengths = dict(sorted(lengths.items()))
        self.codes = canonical_codes(self.lengths)
        size = max(self.lengths) + 1
        self._len = np.zeros(size, dtype=np.int64)
        self._code = np.zeros(size, dtype=np.uint64)
        for s, length in self.lengths.items():
            self._len[s] = length
            self._code[s] = self.codes[s]

    @classmethod
    def from_counts(cls, counts: Mapping[int, int] | np.ndarray | list[int]) -> "HuffmanCode":
        return cls(huffman_code_lengths(counts))

    @classmethod
    def from_symbols(cls, symbols: np.ndarray) -> "HuffmanCode":
        """The optimal code for the symbol frequencies of ``symbols`` (non-negative ints)."""
        symbols = np.asarray(symbols).ravel()
        if symbols.size == 0:
            raise ValueError("cannot build a Huffman code from an empty symbol stream")
        if symbols.min() < 0:
            raise ValueError("symbols must be non-negative integers")
        return cls.from_counts(np.bincount(symbols.astype(np.int64)))

    def total_bits(self, counts: Mapping[int, int] | np.ndarray | list[int]) -> int:
        """Sum over symbols of count * code length: the exact size of the coded stream in bits."""
        return sum(c * self.lengths[s] for s, c in _as_counts(counts).items())

    def table_bytes(self) -> bytes:
        """The code as stored: one byte per symbol 0..max_symbol holding its length (0 = unused)."""
        if int(self._len.max()) > 255:
            raise ValueError("a code length above 255 bits cannot be stored in one byte")
        return self._len.astype(np.uint8).tobytes()

    @classmethod
    def from_table_bytes(cls, table: bytes) -> "HuffmanCode":
        lengths = np.frombuffer(table, dtype=np.uint8)
        return cls({int(s): int(v) for s, v in enumerate(lengths) if v > 0})

    def encode(self, symbols: np.ndarray) -> EncodedStream:
        """Pack the codes of ``symbols`` MSB-first into bytes (the last byte zero-padded)."""
        symbols = np.asarray(symbols, dtype=np.int64).ravel()
        if symbols.size and (symbols.min() < 0 or symbols.max() >= self._len.size or (self._len[symbols] == 0).any()):
            raise ValueError("the stream holds symbols that have no code")
        lens = self._len[symbols]
        total = int(lens.sum())
        if total == 0:
            return EncodedStream(b"", 0, int(symbols.size))
        starts = np.cumsum(lens) - lens
        owner = np.repeat(np.arange(symbols.size), lens)
        shift = (lens[owner] - 1 - (np.arange(total) - starts[owner])).astype(np.uint64)
        bits = (self._code[symbols][owner] >> shift) & np.uint64(1)
        return EncodedStream(np.packbits(bits.astype(np.uint8)).tobytes(), total, int(symbols.size))

    def decode(self, stream: EncodedStream) -> np.ndarray:
        """The symbols of an ``EncodedStream`` (int64), reading exactly ``n_symbols`` codes."""
        bits = np.unpackbits(np.frombuffer(stream.data, dtype=np.uint8))[: stream.n_bits]
        max_len = int(self._len.max())
        if max_len > _TABLE_DECODE_MAX_LENGTH:
            return self._decode_bitwise(bits, stream.n_symbols)
        # window[p] = the max_len bits starting at p, as an integer; a lookup table maps it to
        # (symbol, length) because a prefix code's word is the unique prefix of the window
        padded = np.concatenate([bits, np.zeros(max_len, dtype=np.uint8)]).astype(np.int64)
        window = np.zeros(bits.size + 1, dtype=np.int64)
        for i in range(max_len):
            window = (window << 1) | padded[i : i + bits.size + 1]
        sym_of = np.full(1 << max_len, -1, dtype=np.int64)
        len_of = np.zeros(1 << max_len, dtype=np.int64)
        for s, length in self.lengths.items():
            lo = self.codes[s] << (max_len - length)
            sym_of[lo : lo + (1 << (max_len - length))] = s
            len_of[lo : lo + (1 << (max_len - length))] = length
        win, sym_l, len_l = window.tolist(), sym_of.tolist(), len_of.tolist()
        out, pos = [0] * stream.n_symbols, 0
        for k in range(stream.n_symbols):
            v = win[pos]
            if sym_l[v] < 0 or pos >= bits.size:
                raise ValueError(f"corrupt Huffman stream at bit {pos}")
            out[k] = sym_l[v]
            pos += len_l[v]
        if pos != bits.size:
            raise ValueError(f"Huffman stream has {bits.size - pos} bits left over")
        return np.asarray(out, dtype=np.int64)

    def _decode_bitwise(self, bits: np.ndarray, n_symbols: int) -> np.ndarray:
        words = {(self.lengths[s], c): s for s, c in self.codes.items()}
        out, code, length = [], 0, 0
        for b in bits.tolist():
            code, length = (code << 1) | b, length + 1
            if (length, code) in words:
                out.append(words[(length, code)])
                code, length = 0, 0
        if len(out) != n_symbols or length:
            raise ValueError("corrupt Huffman stream")
        return np.asarray(out, dtype=np.int64)


def encode_symbols(symbols: np.ndarray) -> tuple[HuffmanCode, EncodedStream]:
    """Build the optimal code for ``symbols`` and encode them with it."""
    code = HuffmanCode.from_symbols(symbols)
    return code, code.encode(symbols)
