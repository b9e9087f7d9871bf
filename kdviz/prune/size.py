"""Storage of a pruned model: dense bytes against two sparse encodings, computed by encoding.

Every size here is the byte count of arrays we actually build, not a formula:

* **Dense**: every weight as a 32-bit float.
* **CSR** (compressed sparse row) of the weight seen as a matrix (out, in*kh*kw): ``values``
  (float32, one per nonzero), ``col_indices`` (int32, one per nonzero) and ``row_ptr`` (int32,
  rows + 1): the layout of ``scipy.sparse.csr_matrix`` with 32-bit indices.
* **Relative index** (Han, Mao, Dally, "Deep Compression", ICLR 2016, section 2 and figure 2; the
  storage used for Han et al. 2015's pruned networks): walk the weights in row-major order and
  store, for each nonzero, the *difference* to the previous stored position in ``b`` bits
  (b = 5 for FC layers, 8 for conv layers) plus its value. A difference can be 1 .. 2^b (stored
  as difference - 1, so 5 bits span 32 positions); the first position is counted from -1, so index 0
  is representable. When a gap exceeds 2^b we insert a *filler zero* (an entry with value 0) 2^b
  positions further on, as many times as needed. Gap range: 1..2^b, stored as 0..2^b - 1 in b
  bits, with no reserved code: a filler is told apart by its value 0.0, which no kept weight has
  (an exact zero counts as pruned). Each entry costs b + 32 bits (the values stay 32-bit floats
  here; quantization would shrink them) and a layer's stream is padded to whole bytes. Once the
  values are codebook indices (``kdviz.quant.size``) a zero value is no longer free, so there the
  top gap code marks a filler instead and real gaps run 1..2^b - 1.

Biases and other parameters are counted as dense float32 in every format.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .masks import layer_name, prunable_weights

VALUE_BITS = 32
RELATIVE_INDEX_BITS = {"fc": 5, "conv": 8}  # Deep Compression, section 2


def as_matrix(weight: torch.Tensor | np.ndarray) -> np.ndarray:
    """The weight as a 2-D float32 matrix (out, rest): FC as is, conv filters flattened row-major."""
    w = weight.detach().cpu().numpy() if isinstance(weight, torch.Tensor) else np.asarray(weight)
    return np.ascontiguousarray(w.reshape(w.shape[0], -1), dtype=np.float32)


@dataclass(frozen=True)
class CSREncoding:
    values: np.ndarray  # float32, (nnz,)
    col_indices: np.ndarray  # int32, (nnz,)
    row_ptr: np.ndarray  # int32, (rows + 1,)

    @property
    def nbytes(self) -> int:
        return self.values.nbytes + self.col_indices.nbytes + self.row_ptr.nbytes


def encode_csr(matrix: np.ndarray) -> CSREncoding:
    """CSR arrays of a 2-D matrix, with float32 values and int32 column indices and row pointers."""
    m = np.asarray(matrix)
    if m.ndim != 2:
        raise ValueError(f"CSR needs a 2-D matrix, got shape {m.shape}")
    rows, cols = np.nonzero(m)  # row-major order
    row_ptr = np.zeros(m.shape[0] + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=m.shape[0]), out=row_ptr[1:])
    return CSREncoding(m[rows, cols].astype(np.float32), cols.astype(np.int32), row_ptr)


@dataclass(frozen=True)
class RelativeIndexEncoding:
    codes: np.ndarray  # uint8, (entries,): difference - 1, each in [0, 2^bits)
    values: np.ndarray  # float32, (entries,): the weight, or 0 for a filler
    index_bits: int
    length: int  # number of positions encoded (weights in the layer)
    fillers: int

    @property
    def entries(self) -> int:
        return int(self.codes.size)

    @property
    def nbytes(self) -> int:
        return -(-self.entries * (self.index_bits + VALUE_BITS) // 8)


def encode_relative_index(weight: torch.Tensor | np.ndarray, index_bits: int) -> RelativeIndexEncoding:
    """Han's relative-index stream of the weights (row-major), with filler zeros for long gaps."""
    if not 1 <= int(index_bits) <= 8:
        raise ValueError(f"index_bits must be in 1..8, got {index_bits}")
    flat = as_matrix(weight).ravel()
    span = 1 << int(index_bits)
    positions = np.flatnonzero(flat)
    gaps = np.diff(np.concatenate(([-1], positions)))  # >= 1
    fillers = (gaps - 1) // span  # filler entries needed before each nonzero
    per_nonzero = fillers + 1
    codes = np.full(int(per_nonzero.sum()), span - 1, dtype=np.uint8)  # fillers: a full span each
    values = np.zeros(codes.size, dtype=np.float32)
    last = np.cumsum(per_nonzero) - 1  # where each real entry lands
    codes[last] = (gaps - fillers * span - 1).astype(np.uint8)
    values[last] = flat[positions]
    return RelativeIndexEncoding(codes, values, int(index_bits), flat.size, int(fillers.sum()))


def decode_relative_index(encoding: RelativeIndexEncoding) -> np.ndarray:
    """The flat weight vector back from a relative-index stream (for checks and round trips)."""
    positions = np.cumsum(encoding.codes.astype(np.int64) + 1) - 1
    out = np.zeros(encoding.length, dtype=np.float32)
    out[positions] = encoding.values
    return out


@dataclass(frozen=True)
class LayerSize:
    layer: str
    kind: str
    shape: tuple[int, ...]
    weights: int
    nonzero: int
    dense_bytes: int
    csr_bytes: int
    relative_bytes: int
    relative_entries: int
    fillers: int
    index_bits: int

    @property
    def sparsity(self) -> float:
        return 1.0 - self.nonzero / self.weights

    @property
    def kept_fraction(self) -> float:
        return self.nonzero / self.weights


@dataclass
class SizeReport:
    layers: list[LayerSize]
    other_parameters: int  # biases etc., stored dense float32 in every format
    notes: list[str] = field(default_factory=list)

    @property
    def other_bytes(self) -> int:
        return self.other_parameters * VALUE_BITS // 8

    def total(self, fmt: str, include_other: bool = True) -> int:
        """Total bytes in ``fmt`` (``"dense"``, ``"csr"`` or ``"relative"``), biases included by default."""
        attr = {"dense": "dense_bytes", "csr": "csr_bytes", "relative": "relative_bytes"}.get(fmt)
        if attr is None:
            raise ValueError(f"unknown storage format {fmt!r} (known: dense, csr, relative)")
        return sum(getattr(l, attr) for l in self.layers) + (self.other_bytes if include_other else 0)

    @property
    def weights(self) -> int:
        return sum(l.weights for l in self.layers)

    @property
    def nonzero(self) -> int:
        return sum(l.nonzero for l in self.layers)

    @property
    def weight_compression(self) -> float:
        """Han et al. 2015's "compression rate": weights before / weights kept."""
        return self.weights / max(self.nonzero, 1)

    def rows(self) -> list[dict]:
        """One dict per layer plus a total row, ready for a table."""
        out = [
            {"layer": l.layer, "shape": "x".join(map(str, l.shape)), "weights": l.weights, "kept": l.nonzero,
             "kept %": 100 * l.kept_fraction, "dense bytes": l.dense_bytes, "CSR bytes": l.csr_bytes,
             "relative-index bytes": l.relative_bytes, "index bits": l.index_bits, "fillers": l.fillers}
            for l in self.layers
        ]
        out.append({"layer": "total (+ biases)", "shape": "", "weights": self.weights, "kept": self.nonzero,
                    "kept %": 100 * self.nonzero / max(self.weights, 1), "dense bytes": self.total("dense"),
                    "CSR bytes": self.total("csr"), "relative-index bytes": self.total("relative"),
                    "index bits": None, "fillers": sum(l.fillers for l in self.layers)})
        return out


def layer_size(name: str, weight: torch.Tensor, kind: str) -> LayerSize:
    """Dense, CSR and relative-index bytes of one layer's weight (``kind`` "fc" or "conv")."""
    if kind not in RELATIVE_INDEX_BITS:
        raise ValueError(f"layer kind must be one of {sorted(RELATIVE_INDEX_BITS)}, got {kind!r}")
    matrix = as_matrix(weight)
    bits = RELATIVE_INDEX_BITS[kind]
    csr = encode_csr(matrix)
    rel = encode_relative_index(matrix, bits)
    return LayerSize(
        layer=name, kind=kind, shape=tuple(weight.shape), weights=matrix.size, nonzero=int(csr.values.size),
        dense_bytes=matrix.size * VALUE_BITS // 8, csr_bytes=csr.nbytes, relative_bytes=rel.nbytes,
        relative_entries=rel.entries, fillers=rel.fillers, index_bits=bits,
    )


def size_report(model: nn.Module) -> SizeReport:
    """Per-layer and total storage of a (pruned) model's Linear and Conv2d weights; zeros count as pruned."""
    weights = prunable_weights(model)
    layers = [
        layer_size(layer_name(n), w, "conv" if w.ndim == 4 else "fc") for n, w in weights.items()
    ]
    counted = {id(w) for w in weights.values()}
    other = sum(p.numel() for p in model.parameters() if id(p) not in counted)
    return SizeReport(layers, other, notes=[
        "dense: float32 weights; CSR: float32 values + int32 column indices + int32 row pointers;",
        "relative index: (5 bits fc | 8 bits conv) + 32-bit value per entry, filler zeros for long gaps;",
        "biases stored dense float32 in every format",
    ])
