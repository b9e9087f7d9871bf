"""Per-layer quantization noise: quantize one layer at a time and see which one breaks accuracy.

AIMET's layer-wise analysis (``QuantAnalyzer``: "per-layer quantization sensitivity" and "per-layer
output MSE"; qualcomm/aimet#1517 asks exactly "which layer breaks accuracy?"): every other layer stays
float, one layer's weight (at b bits, its range set by ``ranges.py``) and its input activation (at the
spec's activation bits) are quantized, and we record

- the **SQNR of that layer's output**, 10 log10( sum y^2 / sum (y - y_q)^2 ) dB, where y is the
  float output on the calibration images and y_q the output with only this layer quantized; since
  every earlier layer is float, y and y_q see the same input and the difference is this layer's own
  noise (Sheng et al. 2018 / Nagel et al. 2021, "A White Paper on Neural Network Quantization",
  sec. 3.7, use the same per-layer SQNR to debug PTQ);
- the **test accuracy** of the whole model with only this layer quantized, and its drop from float.

The same evaluator quantizes any set of layers at per-layer bit widths (``accuracy(bits, spec)``),
which ``mixed_precision.py`` and the range-method comparison use. Quantizers are ``uniform.py``'s;
ranges are ``ranges.py``'s; accuracy is ``prune.evaluate.accuracy``.
"""
from __future__ import annotations

import copy
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from ..prune.evaluate import accuracy as plain_accuracy
from .kmeans import check_bits, select_layers
from .ranges import RANGE_METHODS, RangeSpec, calibrate_inputs, quantize_with, weight_params
from .uniform import QuantParams

DEFAULT_BITS = (2, 3, 4, 5, 6, 8)


def sqnr_db(reference: torch.Tensor, noisy: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio 10 log10(sum y^2 / sum (y - y_q)^2) in dB (inf: no noise)."""
    signal = float((reference.double() ** 2).sum())
    noise = float(((reference.double() - noisy.double()) ** 2).sum())
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


@dataclass(frozen=True)
class LayerNoise:
    """One layer quantized alone at ``bits``: its output SQNR (dB), the model's accuracy, the drop."""

    layer: str
    bits: int
    sqnr_db: float
    accuracy: float
    drop: float


class PTQEvaluator:
    """Post-training quantization of ``model`` evaluated on (images, labels).

    ``calibration``: the images whose activations set the activation ranges and on which each layer's
    output SQNR is measured (a few batches, e.g. 256 training images); ``layers``: the quantizable
    layers (default every Linear/Conv). The model is copied, so the caller's is never touched. Results
    are cached; one lock makes it safe to share between threads (a page's background computation).
    """

    def __init__(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, calibration: torch.Tensor,
                 layers: Sequence[str] | None = None, calibration_batch: int = 128, batch_size: int = 4096) -> None:
        if len(images) != len(labels) or len(images) == 0:
            raise ValueError(f"need as many labels as images (and at least one), got {len(images)} and {len(labels)}")
        if len(calibration) == 0:
            raise ValueError("give at least one calibration image")
        self.model = copy.deepcopy(model).cpu().eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.layers = select_layers(self.model, list(layers) if layers is not None else None)
        self.original = {n: m.weight.detach().clone() for n, m in self.layers.items()}
        self.images = torch.as_tensor(images, dtype=torch.float32).contiguous()
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.calibration = torch.as_tensor(calibration, dtype=torch.float32).contiguous()
        self.batch_size = int(batch_size)
        self.lock = threading.RLock()
        batches = [self.calibration[i:i + calibration_batch] for i in range(0, len(self.calibration), calibration_batch)]
        self.activations = calibrate_inputs(self.model, self.layers, batches)
        self.float_accuracy = plain_accuracy(self.model, self.images, self.labels, self.batch_size)
        self.float_outputs = self._layer_outputs()
        self._weights: dict[tuple, QuantParams] = {}
        self._acts: dict[tuple, QuantParams] = {}
        self._results: dict[tuple, float] = {}
        self._sqnr: dict[tuple, float] = {}

    @property
    def names(self) -> list[str]:
        return list(self.layers)

    def n_weights(self, layer: str) -> int:
        return int(self.original[layer].numel())

    # -- parameters --------------------------------------------------------------------------
    def weight_params(self, layer: str, bits: int, spec: RangeSpec) -> QuantParams:
        """The layer's weight parameters at ``bits`` (cached per layer, bits and weight range setting)."""
        key = (layer, int(bits), spec.method, spec.percentile, spec.grid, spec.symmetric, spec.per_channel)
        if key not in self._weights:
            self._weights[key] = weight_params(self.original[layer], check_bits(bits), spec)
        return self._weights[key]

    def activation_params(self, layer: str, spec: RangeSpec) -> QuantParams | None:
        """The layer's input parameters at ``spec.act_bits`` (None: float activations)."""
        if spec.act_bits is None:
            return None
        key = (layer, int(spec.act_bits), spec.activation_method, spec.percentile, spec.grid)
        if key not in self._acts:
            self._acts[key] = self.activations[layer].params(spec.act_bits, spec.activation_method,
                                                             spec.percentile, spec.grid)
        return self._acts[key]

    def quantized_weight(self, layer: str, bits: int, spec: RangeSpec) -> torch.Tensor:
        return quantize_with(self.original[layer], self.weight_params(layer, bits, spec))

    # -- running the model with some layers quantized ---------------------------------------
    def _check(self, bits: Mapping[str, int], spec: RangeSpec) -> tuple[tuple[str, int], ...]:
        spec.validate()
        unknown = [n for n in bits if n not in self.layers]
        if unknown:
            raise ValueError(f"unknown layers {unknown} (quantizable: {', '.join(self.layers)})")
        return tuple(sorted((n, check_bits(b)) for n, b in bits.items()))

    @contextmanager
    def applied(self, bits: Mapping[str, int], spec: RangeSpec):
        """The private model with each layer in ``bits`` quantized (weight at its bits, input at the
        spec's activation bits); the float weights are back and the hooks gone afterwards."""
        handles = []
        with self.lock:
            try:
                with torch.no_grad():
                    for name, b in bits.items():
                        self.layers[name].weight.copy_(self.quantized_weight(name, b, spec))
                        act = self.activation_params(name, spec)
                        if act is not None:
                            handles.append(self.layers[name].register_forward_pre_hook(
                                lambda module, args, p=act: (quantize_with(args[0], p),) + tuple(args[1:])))
                yield self.model
            finally:
                for h in handles:
                    h.remove()
                with torch.no_grad():
                    for name in bits:
                        self.layers[name].weight.copy_(self.original[name])

    def accuracy(self, bits: Mapping[str, int], spec: RangeSpec = RangeSpec()) -> float:
        """Test accuracy with each layer of ``bits`` ({layer: bits}) quantized, the others float."""
        key = (self._check(bits, spec), spec)
        if key not in self._results:
            with self.applied(dict(key[0]), spec) as model:
                self._results[key] = plain_accuracy(model, self.images, self.labels, self.batch_size)
        return self._results[key]

    def uniform_accuracy(self, bits: int, spec: RangeSpec = RangeSpec()) -> float:
        """Every layer at the same ``bits``."""
        return self.accuracy({n: bits for n in self.layers}, spec)

    def _layer_outputs(self, layer: str | None = None) -> dict[str, torch.Tensor]:
        """Each layer's (or only ``layer``'s) output on the calibration images, by forward hooks."""
        outputs: dict[str, torch.Tensor] = {}
        chosen = self.layers if layer is None else {layer: self.layers[layer]}
        handles = [m.register_forward_hook(lambda module, args, out, n=n: outputs.__setitem__(n, out.detach().clone()))
                   for n, m in chosen.items()]
        try:
            with torch.inference_mode():
                self.model(self.calibration)
        finally:
            for h in handles:
                h.remove()
        return outputs

    def layer_sqnr(self, layer: str, bits: int, spec: RangeSpec = RangeSpec()) -> float:
        """SQNR (dB) of ``layer``'s output on the calibration images with only that layer quantized."""
        self._check({layer: bits}, spec)
        key = (layer, int(bits), spec)
        if key not in self._sqnr:
            with self.applied({layer: bits}, spec):
                noisy = self._layer_outputs(layer)[layer]
            self._sqnr[key] = sqnr_db(self.float_outputs[layer], noisy)
        return self._sqnr[key]

    def layer_noise(self, layer: str, bits: int, spec: RangeSpec = RangeSpec()) -> LayerNoise:
        """``layer`` quantized alone at ``bits``: SQNR, accuracy and drop."""
        acc = self.accuracy({layer: bits}, spec)
        return LayerNoise(layer, int(bits), self.layer_sqnr(layer, bits, spec), acc, self.float_accuracy - acc)


def layer_noise(ev: PTQEvaluator, bits: int, spec: RangeSpec = RangeSpec()) -> list[LayerNoise]:
    """Every layer quantized alone at ``bits`` (AIMET's per-layer sensitivity), in forward order."""
    return [ev.layer_noise(name, bits, spec) for name in ev.names]


def sensitivity_sweep(ev: PTQEvaluator, bits_options: Iterable[int] = DEFAULT_BITS,
                      spec: RangeSpec = RangeSpec()) -> dict[str, dict[int, LayerNoise]]:
    """``{layer: {bits: LayerNoise}}``: each layer alone at each bit width (the table mixed
    precision chooses from)."""
    options = sorted({check_bits(b) for b in bits_options})
    if not options:
        raise ValueError("give at least one bit width to sweep")
    return {name: {b: ev.layer_noise(name, b, spec) for b in options} for name in ev.names}


def worst_layer(noise: Sequence[LayerNoise]) -> LayerNoise:
    """The layer that breaks accuracy: the largest accuracy drop, ties broken by the lowest SQNR."""
    if not noise:
        raise ValueError("no layers measured")
    return max(noise, key=lambda n: (round(n.drop, 12), -n.sqnr_db))


def compare_ranges(ev: PTQEvaluator, bits_options: Iterable[int] = (8, 4, 3), spec: RangeSpec = RangeSpec(),
                   methods: Iterable[str] = RANGE_METHODS, activations_at_bits: bool = False) -> list[dict]:
    """Rows {method, range, bits, accuracy}: every layer's weights at ``bits`` and inputs at the spec's
    activation bits (``activations_at_bits``: at ``bits`` too), both ranges set by each method (the
    spec's percentile, grid and weight scheme kept)."""
    rows = []
    for method in methods:
        for b in bits_options:
            act_bits = b if activations_at_bits and spec.act_bits is not None else spec.act_bits
            s = RangeSpec(method, None, spec.percentile, spec.grid, spec.symmetric, spec.per_channel, act_bits)
            rows.append({"method": s.label(), "range": method, "bits": int(b), "accuracy": ev.uniform_accuracy(b, s)})
    return rows


__all__ = ["DEFAULT_BITS", "LayerNoise", "PTQEvaluator", "compare_ranges", "layer_noise", "sensitivity_sweep",
           "sqnr_db", "worst_layer"]
