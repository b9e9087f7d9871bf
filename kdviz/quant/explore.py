"""What the bits and rank sliders show: each method's quantized weights, codes, codebook and size.

The Streamlit page and ``kdviz.widgets.quantization.QuantizationExplorer`` both ask a
``MethodExplorer`` (over a ``SliderEvaluator``, which caches sorted weights, SVDs and results), so
a slider move shows the same numbers in both. A method is one entry of the ``QUANTIZERS`` registry:
it turns the float weights into a ``Quantized`` (weights, a 2-D code map per layer, the values the
weights take, how many take each, and the storage in bits). Its ``QuantizerKind`` (``KINDS``) says
how the explorers present it (menu title, which options it reads, fixed bits), so their menus are
read from here, not written out again.

Storage counts weights only, as Han et al. 2016 (table 1) do; biases stay float32. k-means (Han,
Mao, Dally 2016, sec. 3): the bytes of the real fixed-width encoding, ``bits`` per index plus a
float32 per centroid. Uniform affine (Jacob et al. 2018, eq. 1): ``bits`` per weight plus a float32
scale (and, asymmetric, a zero point counted as 32 bits) per tensor or output channel. Binary: 1 bit
per weight (BinaryConnect, Courbariaux et al. 2015), plus a float32 alpha per output unit for XNOR
(Rastegari et al. 2016, eq. 4). Product quantization (Gong et al. 2014, sec. 3.3): ``bits`` per
sub-vector plus the codebooks. Low rank (Denton et al. 2014, sec. 3.2): r (m + n) floats, not m n.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..registry import Registry
from .binary import BINARIZERS
from .evaluate import SliderEvaluator
from .histograms import index_map, map_2d, map_positions, weight_histogram
from .kmeans import INITS, check_bits
from .lowrank import check_rank, energy_kept
from .product import product_quantize
from .size import encode_layer
from .uniform import QuantParams, dequantize, quant_params, quantize

QUANTIZERS: Registry = Registry("quantization method")
MAX_SIDE = 128  # code maps are subsampled to at most this many rows and columns (as the kmeans hook)
SUBVECTORS = (2, 4, 8)  # product quantization's sub-vector lengths offered by the explorers


@dataclass(frozen=True)
class QuantizerKind:
    """How the explorers present one quantizer: its menu ``title``; the ``QuantChoice`` fields it
    reads (``options``, in the order the controls show them); the bit width it always uses
    (``fixed_bits``: binary weights are 1 bit); whether its levels are shared values fitted to the
    weights (``shared``: a k-means codebook); what its weight histogram shows (``note``); a rule
    its options must also satisfy together (``check``, raising a ``ValueError``)."""

    name: str
    title: str
    options: tuple[str, ...] = ()
    fixed_bits: int | None = None
    shared: bool = False
    note: str = ""
    check: Callable[[Any], None] | None = None


KINDS: dict[str, QuantizerKind] = {}  # in registration order: the explorers' menu


def quantizer(kind: QuantizerKind) -> Callable:
    """Register the decorated quantizer in ``QUANTIZERS`` and its ``kind`` in ``KINDS``."""
    def decorate(fn: Callable) -> Callable:
        QUANTIZERS.register(kind.name)(fn)
        KINDS[kind.name] = kind
        return fn

    return decorate


# The options whose values name something registered: a misspelt one is a ValueError listing the known names.
OPTION_CHECKS: dict[str, Callable[[Any], Any]] = {"init": INITS.get, "binarizer": BINARIZERS.get}


def option_values() -> dict[str, list]:
    """The values each ``QuantChoice`` option can take in the explorers' controls."""
    return {"init": [name for name, _ in INITS.items()], "per_channel": [False, True], "symmetric": [True, False],
            "binarizer": [name for name, _ in BINARIZERS.items()], "subvector": list(SUBVECTORS)}


@dataclass(frozen=True)
class QuantChoice:
    """One position of the controls: a method and its options (only the method's own are used)."""

    method: str = "kmeans"
    bits: int = 4
    init: str = "linear"  # k-means initialisation (Han et al. 2016, sec. 3.2)
    symmetric: bool = True  # uniform
    per_channel: bool = False  # uniform
    binarizer: str = "xnor"  # binary: "binaryconnect" or "xnor"
    subvector: int = 4  # product quantization: sub-vector length d

    def validate(self) -> "QuantChoice":
        """Check the method's own options; ``ValueError``/``TypeError`` naming the bad one."""
        kind = self.kind
        if kind.fixed_bits is None:
            check_bits(self.bits)
        for option in kind.options:
            if option in OPTION_CHECKS:
                OPTION_CHECKS[option](getattr(self, option))
        if kind.check is not None:
            kind.check(self)
        return self

    def key(self) -> tuple:
        """The fields that matter for this method (cache key): its bits unless fixed, and its options."""
        kind = KINDS.get(self.method)
        if kind is None:
            return (self.method, self.bits)
        bits = () if kind.fixed_bits is not None else (self.bits,)
        return (self.method, *bits, *(getattr(self, option) for option in kind.options))

    @property
    def kind(self) -> QuantizerKind:
        """How the explorers present this choice's method (a ``ValueError`` for an unknown method)."""
        QUANTIZERS.get(self.method)
        return KINDS[self.method]

    def label(self) -> str:
        """A legend label: ``"k-means, linear init"``, ``"uniform, per channel, asymmetric"``..."""
        labels = {
            "kmeans": f"k-means, {self.init} init",
            "uniform": f"uniform, per {'channel' if self.per_channel else 'tensor'}, "
                       f"{'symmetric' if self.symmetric else 'asymmetric'}",
            "binary": {"binaryconnect": "BinaryConnect", "xnor": "XNOR (BWN)"}.get(self.binarizer, self.binarizer),
            "product": f"product, d = {self.subvector}",
        }
        return labels.get(self.method, self.method)


@dataclass
class Quantized:
    """Every slider layer quantized one way. ``levels`` and ``counts`` describe the values a
    layer's weights take; for per-row schemes (``per_row``: per-channel uniform, XNOR) they are
    output unit 0's, since each unit has its own. Product quantization has no scalar levels."""

    choice: QuantChoice
    weights: dict[str, torch.Tensor]
    codes: dict[str, np.ndarray]
    levels: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]
    storage_bits: dict[str, int]
    n_weights: dict[str, int]
    per_row: bool = False
    map_shapes: dict[str, tuple[int, int]] = field(default_factory=dict)  # each code map's (rows, cols) before subsampling

    @property
    def original_bits(self) -> int:
        return 32 * sum(self.n_weights.values())

    @property
    def compressed_bits(self) -> int:
        return sum(self.storage_bits.values())

    @property
    def ratio(self) -> float:
        """Compression ratio of the weights: 32-bit floats over the quantized storage."""
        return self.original_bits / self.compressed_bits

    @property
    def bits_per_weight(self) -> float:
        return self.compressed_bits / sum(self.n_weights.values())


def subsample_map(codes: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """A code tensor as a 2-D int32 map (out, rest), evenly subsampled to at most ``max_side`` rows
    and columns (the rule of ``kdviz.quant.histograms.index_map``)."""
    m = map_2d(codes)
    rows, cols = map_positions(m.shape, max_side)
    return m[np.ix_(rows, cols)].astype(np.int32)



def _row0(params: QuantParams) -> QuantParams:
    """The parameters of output unit 0 (per-channel parameters are shaped (out, 1, ...))."""
    return QuantParams(params.scale.reshape(-1)[:1], params.zero_point.reshape(-1)[:1], params.qmin, params.qmax)


@quantizer(QuantizerKind(
    "kmeans", "k-means sharing", ("init",), shared=True,
    note="k-means puts the shared values where the weights are dense; linear init spreads them evenly (and keeps "
         "a few for the rare large weights, which matter most), density init crowds them in the middle."))
def kmeans_method(ev: SliderEvaluator, c: QuantChoice) -> Quantized:
    """k-means weight sharing with 2^bits centroids per layer (no fine-tuning)."""
    q = Quantized(c, {}, {}, {}, {}, {}, {})
    for name, sw in ev.kmeans_shared(c.bits, c.init).items():
        q.weights[name], q.codes[name] = sw.weight(), index_map(sw, MAX_SIDE)
        q.map_shapes[name] = map_2d(sw.indices.numpy()).shape
        q.levels[name] = sw.centroids.numpy().astype(np.float64)
        q.counts[name] = sw.cluster_counts().numpy()
        q.storage_bits[name] = encode_layer(sw, name=name, huffman=False).size().compressed_bits
        q.n_weights[name] = int(sw.indices.numel())
    return q


def _symmetric_needs_two_bits(c: "QuantChoice") -> None:
    if c.symmetric and c.bits < 2:
        raise ValueError("symmetric uniform quantization needs at least 2 bits (1 bit is binary: pick 'binary')")


@quantizer(QuantizerKind(
    "uniform", "uniform", ("per_channel", "symmetric"), check=_symmetric_needs_two_bits,
    note="Uniform levels are evenly spaced over the range: at low bits most weights fall on the zero level."))
def uniform_method(ev: SliderEvaluator, c: QuantChoice) -> Quantized:
    """Uniform affine quantization: q = clamp(round(w / S) + Z), w ~ S (q - Z)."""
    q = Quantized(c, {}, {}, {}, {}, {}, {}, per_row=c.per_channel)
    for name, w in ev.original.items():
        params = quant_params(w, c.bits, c.symmetric, c.per_channel)
        codes = quantize(w, params)
        q.weights[name] = dequantize(codes, params).to(w.dtype)
        q.codes[name], q.map_shapes[name] = subsample_map((codes - params.qmin).numpy()), map_2d(codes.numpy()).shape
        unit = _row0(params) if c.per_channel else params
        q.levels[name] = dequantize(torch.arange(params.qmin, params.qmax + 1), unit).double().numpy().ravel()
        first = codes[0] if c.per_channel else codes
        q.counts[name] = np.bincount((first - params.qmin).numpy().ravel(), minlength=params.levels)
        n_params = int(params.scale.numel()) * (1 if c.symmetric else 2)
        q.storage_bits[name] = c.bits * w.numel() + 32 * n_params
        q.n_weights[name] = int(w.numel())
    return q


@quantizer(QuantizerKind(
    "binary", "binary", ("binarizer",), fixed_bits=1,
    note="Every weight becomes one of two values; without retraining the network loses a lot."))
def binary_method(ev: SliderEvaluator, c: QuantChoice) -> Quantized:
    """Binary weights: sign(w) (BinaryConnect) or alpha sign(w), alpha = mean |w| per unit (XNOR)."""
    binarize = BINARIZERS.get(c.binarizer)
    xnor = c.binarizer == "xnor"
    q = Quantized(replace(c, bits=1), {}, {}, {}, {}, {}, {}, per_row=xnor)
    for name, w in ev.original.items():
        wb = binarize(w).detach()
        q.weights[name], q.codes[name] = wb, subsample_map((wb > 0).to(torch.int64).numpy())
        q.map_shapes[name] = map_2d(wb.numpy()).shape
        values, counts = np.unique(wb[0].double().numpy(), return_counts=True)
        q.levels[name], q.counts[name] = values, counts
        q.storage_bits[name] = w.numel() + (32 * w.shape[0] if xnor else 0)
        q.n_weights[name] = int(w.numel())
    return q


@quantizer(QuantizerKind(
    "product", "product (PQ)", ("subvector",),
    note="Product quantization shares whole sub-vectors, so the histogram has no single levels."))
def product_method(ev: SliderEvaluator, c: QuantChoice) -> Quantized:
    """Product quantization: sub-vectors of length d clustered into 2^bits codewords per sub-space."""
    q = Quantized(c, {}, {}, {}, {}, {}, {})
    for name, w in ev.original.items():
        pq = product_quantize(w, c.bits, subvector=min(c.subvector, w[0].numel()))
        q.weights[name], q.codes[name] = pq.weight().to(w.dtype), subsample_map(pq.codes.numpy())
        q.map_shapes[name] = map_2d(pq.codes.numpy()).shape
        q.levels[name], q.counts[name] = np.zeros(0), np.zeros(0, dtype=np.int64)
        q.storage_bits[name] = pq.index_bits() + pq.codebook_bits()
        q.n_weights[name] = int(w.numel())
    return q


@dataclass
class LowRankPoint:
    """One layer at rank r: its spectrum, the energy kept, parameters, and the model's accuracy."""

    layer: str
    rank: int
    max_rank: int
    singular_values: np.ndarray
    energy: float
    accuracy: float
    params_before: int
    params_after: int


CURVE_METHODS: dict[str, QuantChoice] = {c.label(): c for c in (
    QuantChoice("kmeans", init="linear"), QuantChoice("kmeans", init="density"), QuantChoice("kmeans", init="random"),
    QuantChoice("uniform"), QuantChoice("uniform", symmetric=False, per_channel=True),
)}
BINARY_POINTS: dict[str, QuantChoice] = {c.label(): c for c in (
    QuantChoice("binary", binarizer="binaryconnect"), QuantChoice("binary", binarizer="xnor"))}
SCATTER_METHODS: dict[str, QuantChoice] = {c.label(): c for c in (
    QuantChoice("kmeans"), QuantChoice("uniform"), QuantChoice("uniform", symmetric=False, per_channel=True))}
# Methods that cluster every sub-space (slow): the explorers add them on request.
SLOW_METHODS: dict[str, QuantChoice] = {c.label(): c for c in (QuantChoice("product"),)}
DEFAULT_METHOD = QuantChoice().method
RANK_FRACTIONS = (0.1, 0.25, 0.5)


@dataclass
class MethodExplorer:
    """Quantize and evaluate on demand, caching every result; thread-safe (one lock), since the
    evaluator writes weights into its private model and a web page may be shared."""

    evaluator: SliderEvaluator
    lock: threading.RLock = field(default_factory=threading.RLock)
    _quantized: dict[tuple, Quantized] = field(default_factory=dict)
    _accuracy: dict[tuple, float] = field(default_factory=dict)

    @property
    def layers(self) -> list[str]:
        return list(self.evaluator.layers)

    def baseline(self) -> float:
        with self.lock:
            return self.evaluator.baseline()

    def quantize(self, choice: QuantChoice) -> Quantized:
        """Every slider layer quantized by ``choice`` (cached)."""
        choice.validate()
        with self.lock:
            if choice.key() not in self._quantized:
                self._quantized[choice.key()] = QUANTIZERS.get(choice.method)(self.evaluator, choice)
            return self._quantized[choice.key()]

    def accuracy(self, choice: QuantChoice) -> float:
        """Test accuracy with every slider layer quantized by ``choice`` (cached)."""
        q = self.quantize(choice)
        with self.lock:
            if choice.key() not in self._accuracy:
                self._accuracy[choice.key()] = self.evaluator.accuracy(q.weights)
            return self._accuracy[choice.key()]

    def low_rank(self, layer: str, rank: int) -> LowRankPoint:
        """``layer`` truncated to ``rank`` (the others float); ``ValueError`` for a rank outside
        1..min(m, n) or an unknown layer."""
        with self.lock:
            svd = self.evaluator.svd(layer)
            r = check_rank(rank, svd.matrix_shape)
            m, n = svd.matrix_shape
            return LowRankPoint(layer, r, min(m, n), svd.S.numpy().copy(), energy_kept(svd.S, r),
                                self.evaluator.low_rank({layer: r}), m * n, r * (m + n))

    def accuracy_curves(self, bits: Iterable[int] = range(1, 9), methods: Mapping[str, QuantChoice] = CURVE_METHODS,
                        binary: bool = True) -> dict[str, dict[int, float]]:
        """{method label: {bits: accuracy}}; bit widths a method refuses (1-bit symmetric) are left
        out. ``binary`` adds BinaryConnect and XNOR as 1-bit points."""
        curves: dict[str, dict[int, float]] = {}
        for label, base in methods.items():
            curve = {}
            for b in bits:
                try:
                    curve[int(b)] = self.accuracy(replace(base, bits=int(b)))
                except ValueError:
                    continue
            curves[label] = curve
        if binary:
            curves.update({label: {1: self.accuracy(c)} for label, c in BINARY_POINTS.items()})
        return curves

    def scatter_points(self, bits: Iterable[int] = (2, 3, 4, 6, 8), methods: Mapping[str, QuantChoice] | None = None,
                       fractions: Iterable[float] = RANK_FRACTIONS) -> list[dict]:
        """Points for the compression-against-accuracy scatter: each method at each bit width, the
        binary methods, and low rank with every layer at a fraction of its full rank."""
        if methods is None:
            methods = SCATTER_METHODS
        points = []
        for label, base in {**methods, **BINARY_POINTS}.items():
            for b in ([1] if base.method == "binary" else bits):
                c = replace(base, bits=int(b))
                try:
                    points.append({"method": label, "ratio": self.quantize(c).ratio, "accuracy": self.accuracy(c),
                                   "label": "" if base.method == "binary" else f"{b} b"})
                except ValueError:
                    continue
        for f in fractions:
            ratio, acc = self.low_rank_all(f)
            points.append({"method": "low rank (SVD)", "ratio": ratio, "accuracy": acc, "label": f"{f:.0%}"})
        return points

    def low_rank_all(self, fraction: float) -> tuple[float, float]:
        """(weights compression ratio, accuracy) with every layer but the output layer at
        ``fraction`` of its full rank (the small output layer stays float, as in Denton et al.,
        who factor the big layers only)."""
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        with self.lock:
            ranks, before, after = {}, 0, 0
            for i, name in enumerate(self.layers):
                m, n = self.evaluator.svd(name).matrix_shape
                if i < len(self.layers) - 1 or len(self.layers) == 1:
                    ranks[name] = max(1, int(round(fraction * min(m, n))))
                before, after = before + m * n, after + (ranks[name] * (m + n) if name in ranks else m * n)
            return before / after, self.evaluator.low_rank(ranks)


def layer_histogram(ev: SliderEvaluator, layer: str, bins: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """(counts, edges) of the layer's float weights, as the kmeans hook's ``hist_counts/hist_edges``
    (computed once per layer: the float weights never change)."""
    if layer not in ev.original:
        raise ValueError(f"unknown layer {layer!r} (slider layers: {', '.join(ev.original)})")
    key = ("weight_histogram", layer, int(bins))
    if key not in ev.derived:
        ev.derived[key] = weight_histogram(ev.original[layer].numpy(), bins)
    return ev.derived[key]


__all__ = ["BINARY_POINTS", "CURVE_METHODS", "DEFAULT_METHOD", "KINDS", "LowRankPoint", "MethodExplorer", "QUANTIZERS",
           "QuantChoice", "QuantizerKind", "Quantized", "RANK_FRACTIONS", "SCATTER_METHODS", "SLOW_METHODS",
           "SUBVECTORS", "layer_histogram", "option_values", "quantizer", "subsample_map"]
