"""What each Deep Compression stage stores: dense -> pruned -> quantized -> Huffman, in bytes.

Han, Mao, Dally, "Deep Compression" (ICLR 2016), figure 1 and table 1 (LeNet-300-100 on MNIST:
1070 KB to 27 KB, 40x, error 1.64% to 1.58%). The stages are trained elsewhere (by the engine:
``kdviz.methods.deep_compression``); this module only measures the models they leave:

1. **Dense**: every prunable weight as a float32 (4 bytes a weight).
2. **Pruned** (Han et al. 2015; Deep Compression sec. 2): the kept weights as float32 values with
   Han's relative indices (5-bit gaps for fc layers, 8-bit for conv, filler zeros for long gaps),
   ``kdviz.prune.size_report``'s "relative" format.
3. **Quantized** (sec. 3): each kept weight a codebook index, written fixed-width in
   ceil(log2(K)) bits (``bits`` bits for the full K = 2^bits codebook: a filler entry carries a
   padding index and is marked by the top gap code, ``kdviz.quant.size``), the gaps fixed-width,
   the float32 codebook (``encode_model(..., huffman=False)``).
4. **Huffman** (sec. 4): the indices and the gaps Huffman-coded (``encode_model(..., huffman=True)``).
   ``decoded_model`` rebuilds the weights from those bytes alone, so the accuracy reported for this
   stage is that of the stored model.

Every size is the length of real encoded bytes; biases are left out, as in Han's table.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from ..prune import prunable_weights, size_report
from .kmeans import SharedWeights
from .size import EncodedLayer, ModelSize, encode_model, model_size


@dataclass(frozen=True)
class Stage:
    """One stage's result: weights size in bytes (biases excluded, as Han's table 1), test
    accuracy, training seconds and what is stored."""

    name: str
    nbytes: float
    accuracy: float
    seconds: float = 0.0
    note: str = ""

    @property
    def error(self) -> float:
        return 1.0 - self.accuracy


def weight_count(model: nn.Module) -> int:
    """Number of prunable (Linear and Conv2d) weights of ``model``."""
    return sum(w.numel() for w in prunable_weights(model).values())


def dense_stage(model: nn.Module, accuracy: float, seconds: float = 0.0) -> Stage:
    """The trained dense model: 32 bits per weight."""
    return Stage("dense", 4.0 * weight_count(model), float(accuracy), seconds, "float32 weights")


def pruned_stage(model: nn.Module, accuracy: float, seconds: float = 0.0) -> Stage:
    """A pruned model (its zeros are the pruned weights) in Han's relative-index storage."""
    report = size_report(model)
    kept = report.nonzero / report.weights if report.weights else 0.0
    widths = sorted({(layer.kind != "fc", layer.kind, layer.index_bits) for layer in report.layers})
    index_note = " / ".join(f"{bits}-bit ({kind})" for _, kind, bits in widths)  # e.g. 5-bit (fc) / 8-bit (conv)
    return Stage("pruned", float(report.total("relative", include_other=False)), float(accuracy), seconds,
                 f"{kept:.1%} of weights kept; float32 values + {index_note or 'no'} relative indices")


@dataclass
class Encodings:
    """A shared-weight model encoded both ways: fixed-width and Huffman-coded streams."""

    fixed: dict[str, EncodedLayer]
    huffman: dict[str, EncodedLayer]

    @property
    def fixed_size(self) -> ModelSize:
        return model_size(self.fixed)

    @property
    def huffman_size(self) -> ModelSize:
        return model_size(self.huffman)


def encode_shared(shared: Mapping[str, SharedWeights]) -> Encodings:
    """``encode_model`` of the codebooks, fixed-width (the quantized stage) and Huffman-coded."""
    if not shared:
        raise ValueError("no shared-weight layers to encode (was the model quantized with k-means?)")
    return Encodings(encode_model(dict(shared), huffman=False), encode_model(dict(shared), huffman=True))


def quantized_stage(encodings: Encodings, bits_label: str, accuracy: float, seconds: float = 0.0,
                    accuracy_before_finetune: float | None = None) -> Stage:
    """The k-means stage: fixed-width indices and gaps plus the float32 codebooks (sec. 3)."""
    before = "" if accuracy_before_finetune is None else f" (before fine-tuning: {accuracy_before_finetune:.2%} accuracy)"
    return Stage(f"{bits_label} k-means", encodings.fixed_size.compressed_bits / 8, float(accuracy), seconds,
                 f"centroids fine-tuned; fixed-width indices and gaps{before}")


def huffman_stage(encodings: Encodings, accuracy: float, seconds: float = 0.0) -> Stage:
    """The Huffman stage (sec. 4): the coded streams and their code tables."""
    return Stage("Huffman", encodings.huffman_size.compressed_bits / 8, float(accuracy), seconds,
                 "Huffman-coded indices and gaps; model decoded from the bytes")


def decoded_model(template: nn.Module, state: Mapping[str, torch.Tensor], encoded: Mapping[str, EncodedLayer]) -> nn.Module:
    """A copy of ``template`` (a plain model of the architecture) with every parameter of ``state``
    that fits it (biases; the quantized layers' weights are parametrized in ``state`` and do not)
    and each encoded layer's weight decoded from its bytes alone."""
    out = copy.deepcopy(template)
    own = out.state_dict()
    out.load_state_dict({k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)},
                        strict=False)
    modules = dict(out.named_modules())
    missing = [name for name in encoded if name not in modules]
    if missing:
        raise ValueError(f"encoded layers {missing} are not in the model (layers: {[n for n in modules if n]})")
    with torch.no_grad():
        for name, layer in encoded.items():
            modules[name].weight.copy_(torch.from_numpy(layer.decode()))
    return out
