"""The Deep Compression pipeline: prune, then quantize with k-means, then Huffman-code.

Han, Mao, Dally, "Deep Compression" (ICLR 2016), figure 1 and table 1 (LeNet-300-100 on MNIST:
1070 KB to 27 KB, 40x, error 1.64% to 1.58%):

1. **Prune** (Han et al. 2015): magnitude pruning to per-layer targets in a few rounds on Zhu &
   Gupta's cubic (AGP) curve, retraining with the masks held after each round and at the end.
   Size: Han's relative-index storage (float32 values, 5-bit gaps for fc layers).
2. **Quantize** (sec. 3): k-means weight sharing per layer, pruned weights excluded and kept at
   zero, then the centroids (and biases) fine-tuned with the indices fixed (eq. 3). Size: the
   fixed-width encoding (``bits`` per index, ``gap_bits`` per gap, float32 codebook).
3. **Huffman** (sec. 4): the indices and the gaps Huffman-coded. The model is decoded back from
   the bytes and evaluated, so the reported error is that of the stored model.

``deep_compression`` runs the stages in the calling thread and reports progress through callbacks;
``DeepCompressionJob`` runs it in a daemon thread so a page or a notebook cell never blocks.
``bench/deep_compression.py`` runs the same steps at MNIST scale.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..data import DatasetBundle
from ..prune import PruningMasks, accuracy, agp_targets, check_sparsity, fine_tune, iterative_prune, prunable_weights, size_report
from .histograms import weight_histogram
from .kmeans import INITS, SharedWeights, check_bits, kmeans_quantize
from .shared_weights import attach_shared_model, centroid_parameters, shared_parametrization
from .size import EncodedLayer, LayerSize, encode_model, model_size

# Han et al. 2015 (table 4): LeNet-300-100 keeps 8%, 9% and 26% of fc1, fc2 and fc3.
HAN_HIDDEN_SPARSITY, HAN_OUTPUT_SPARSITY = 0.92, 0.74


class PipelineStopped(Exception):
    """Raised inside the pipeline when ``should_stop()`` turns true."""


@dataclass
class DeepCompressionConfig:
    """Options of the three stages. ``hidden_sparsity`` applies to every prunable weight but the
    last (output) layer, which gets ``output_sparsity``; epochs may be fractional."""

    hidden_sparsity: float = HAN_HIDDEN_SPARSITY
    output_sparsity: float = HAN_OUTPUT_SPARSITY
    prune_rounds: int = 4
    round_epochs: float = 1.0
    retrain_epochs: float = 4.0
    prune_lr: float = 0.005
    bits: int = 6
    init: str = "linear"
    finetune_epochs: float = 3.0
    finetune_lr: float = 1e-4  # centroid gradients are sums over whole clusters: a small rate
    batch_size: int = 128
    seed: int = 0

    def validate(self) -> "DeepCompressionConfig":
        for name in ("hidden_sparsity", "output_sparsity"):
            try:
                check_sparsity(getattr(self, name))
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"{name}: {exc}") from None
        check_bits(self.bits)
        INITS.get(self.init)
        if isinstance(self.prune_rounds, bool) or not isinstance(self.prune_rounds, int) or self.prune_rounds < 1:
            raise ValueError(f"prune_rounds must be a positive integer, got {self.prune_rounds!r}")
        for name in ("round_epochs", "retrain_epochs", "finetune_epochs"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("prune_lr", "finetune_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        return self

    def targets(self, model: nn.Module) -> dict[str, float]:
        """Final sparsity per weight name: the output layer (last prunable weight) gets its own."""
        names = list(prunable_weights(model))
        return {n: self.output_sparsity if i == len(names) - 1 else self.hidden_sparsity for i, n in enumerate(names)}


# Per-dataset settings: the paper's (and bench's) on MNIST; on the 1,437 digits training images an
# epoch is 12 steps, so retraining needs more epochs (the whole run takes seconds).
PRESETS: dict[str, dict] = {
    "digits": {"round_epochs": 8.0, "retrain_epochs": 16.0, "finetune_epochs": 8.0, "prune_lr": 0.01},
    "mnist": {},
    "fashion-mnist": {},
}


def preset(dataset: str, **overrides) -> DeepCompressionConfig:
    """The default ``DeepCompressionConfig`` for a dataset (``PRESETS``), with ``overrides``."""
    return DeepCompressionConfig(**{**PRESETS.get(dataset, {}), **overrides}).validate()


@dataclass
class Stage:
    """One stage's result: weights size in bytes (biases excluded, as Han's table) and accuracy."""

    name: str
    nbytes: float
    accuracy: float
    seconds: float
    note: str = ""

    @property
    def error(self) -> float:
        return 1.0 - self.accuracy


@dataclass
class DeepCompressionResult:
    """The stages so far, and what the next stage (or a notebook) needs from them."""

    stages: list[Stage] = field(default_factory=list)
    masks: PruningMasks | None = None
    pruned: nn.Module | None = None
    quantized: nn.Module | None = None
    accuracy_before_finetune: float | None = None
    centroids_initial: dict[str, np.ndarray] = field(default_factory=dict)
    shared: dict[str, SharedWeights] = field(default_factory=dict)
    histograms: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    encoded: dict[str, EncodedLayer] = field(default_factory=dict)
    layer_sizes: list[LayerSize] = field(default_factory=list)

    def sizes(self) -> list[tuple[str, float]]:
        """``[(stage, bytes), ...]`` for ``kdviz.figures.quantization.size_waterfall``."""
        return [(s.name, s.nbytes) for s in self.stages]


Progress = Callable[[str, float], None]


def _steps(epochs: float, n: int, batch_size: int) -> int:
    return int(math.ceil(epochs * math.ceil(n / batch_size)))


def sgd_train(model: nn.Module, masks: PruningMasks | None, data: DatasetBundle, lr: float, steps: int, seed: int,
              params: list[nn.Parameter] | None = None, weight_decay: float = 1e-4, batch_size: int = 128,
              on_progress: Callable[[float], None] | None = None, should_stop: Callable[[], bool] | None = None) -> None:
    """``steps`` SGD steps (momentum 0.9) with a cosine learning rate, masks re-applied after each
    step (``kdviz.prune.fine_tune``), in chunks of at most 50 steps so progress and stop requests
    are seen often."""
    opt = torch.optim.SGD(params if params is not None else model.parameters(), lr=lr, momentum=0.9,
                          weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    done = 0
    while done < steps:
        if should_stop is not None and should_stop():
            raise PipelineStopped("stopped")
        n = min(50, steps - done)
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * done / steps))
        fine_tune(model, masks, data.train_images, data.train_labels, opt, n, batch_size, generator=gen)
        done += n
        if on_progress is not None:
            on_progress(done / steps)


def _test_accuracy(model: nn.Module, data: DatasetBundle) -> float:
    return accuracy(model, data.test_images, data.test_labels)


def prune_stage(model: nn.Module, data: DatasetBundle, cfg: DeepCompressionConfig, on_progress: Callable[[float], None],
                should_stop: Callable[[], bool] | None = None) -> tuple[nn.Module, PruningMasks]:
    """A pruned and retrained copy of ``model`` and its masks (Han et al. 2015, iterative pruning)."""
    pruned = copy.deepcopy(model)
    n = len(data.train_labels)
    round_steps, final_steps = _steps(cfg.round_epochs, n, cfg.batch_size), _steps(cfg.retrain_epochs, n, cfg.batch_size)
    total = max(1, cfg.prune_rounds * round_steps + final_steps)
    state = {"done": 0}

    def retrain(m: nn.Module, masks: PruningMasks) -> None:
        base = state["done"]
        sgd_train(m, masks, data, cfg.prune_lr, round_steps, cfg.seed + 1, batch_size=cfg.batch_size,
                  on_progress=lambda f: on_progress((base + f * round_steps) / total), should_stop=should_stop)
        state["done"] += round_steps

    masks, _ = iterative_prune(pruned, agp_targets(cfg.targets(model), cfg.prune_rounds), retrain,
                               lambda m: _test_accuracy(m, data))
    sgd_train(pruned, masks, data, cfg.prune_lr, final_steps, cfg.seed + 2, batch_size=cfg.batch_size,
              on_progress=lambda f: on_progress((state["done"] + f * final_steps) / total), should_stop=should_stop)
    return pruned, masks


def quantize_stage(pruned: nn.Module, masks: PruningMasks | None, data: DatasetBundle, cfg: DeepCompressionConfig,
                   on_progress: Callable[[float], None], should_stop: Callable[[], bool] | None = None,
                   ) -> tuple[nn.Module, float, dict[str, np.ndarray]]:
    """k-means on every prunable layer (pruned weights excluded), then centroid and bias
    fine-tuning. Returns (model with shared weights attached, accuracy before fine-tuning,
    initial centroids per layer)."""
    model = copy.deepcopy(pruned)
    modules = dict(model.named_modules())
    layers = [n[: -len(".weight")] for n in prunable_weights(model)]
    shared = {n: kmeans_quantize(modules[n].weight, cfg.bits, init=cfg.init, seed=cfg.seed,
                                 mask=masks[f"{n}.weight"] if masks is not None else None) for n in layers}
    initial = {n: sw.centroids.numpy().copy() for n, sw in shared.items()}
    attach_shared_model(model, shared)
    before = _test_accuracy(model, data)
    params = centroid_parameters(model) + [modules[n].bias for n in layers if modules[n].bias is not None]
    sgd_train(model, None, data, cfg.finetune_lr, _steps(cfg.finetune_epochs, len(data.train_labels), cfg.batch_size),
              cfg.seed + 3, params=params, weight_decay=0.0, batch_size=cfg.batch_size, on_progress=on_progress,
              should_stop=should_stop)
    return model, before, initial


def shared_of(model: nn.Module) -> dict[str, SharedWeights]:
    """The current codebooks of a model's shared-weight layers, by layer name."""
    out = {}
    for name, module in model.named_modules():
        p = shared_parametrization(module)
        if p is not None:
            out[name] = p.shared_weights()
    return out


def decoded_model(template: nn.Module, quantized: nn.Module, encoded: dict[str, EncodedLayer]) -> nn.Module:
    """A plain copy of ``template`` (an unparametrized model of the same architecture) holding
    ``quantized``'s other parameters (biases) and weights decoded from the encoded bytes alone.

    (Not a copy of ``quantized`` itself: a deep copy of a parametrized module shares its class with
    the original, and removing the parametrization from the copy would break the original.)"""
    out = copy.deepcopy(template)
    own = out.state_dict()
    out.load_state_dict({k: v for k, v in quantized.state_dict().items() if k in own and v.shape == own[k].shape},
                        strict=False)
    modules = dict(out.named_modules())
    with torch.no_grad():
        for name, layer in encoded.items():
            modules[name].weight.copy_(torch.from_numpy(layer.decode()))
    return out


def deep_compression(model: nn.Module, data: DatasetBundle, cfg: DeepCompressionConfig | None = None,
                     on_stage: Callable[[Stage], None] | None = None, on_progress: Progress | None = None,
                     should_stop: Callable[[], bool] | None = None, result: DeepCompressionResult | None = None,
                     ) -> DeepCompressionResult:
    """Run dense -> pruned -> quantized -> Huffman on a trained ``model`` (left untouched).

    ``on_stage(stage)`` is called as each stage ends, ``on_progress(stage name, fraction)`` during
    training, and ``should_stop()`` is polled between chunks of steps (``PipelineStopped``)."""
    cfg = (cfg or DeepCompressionConfig()).validate()
    res = result if result is not None else DeepCompressionResult()
    report = on_progress or (lambda name, f: None)
    model = copy.deepcopy(model).eval()

    def finish(stage: Stage) -> None:
        res.stages.append(stage)
        if on_stage is not None:
            on_stage(stage)

    t = time.perf_counter()
    n_weights = sum(w.numel() for w in prunable_weights(model).values())
    finish(Stage("dense", 4.0 * n_weights, _test_accuracy(model, data), time.perf_counter() - t, "float32 weights"))

    t = time.perf_counter()
    report("pruned", 0.0)
    res.pruned, res.masks = prune_stage(model, data, cfg, lambda f: report("pruned", f), should_stop)
    kept = 1.0 - res.masks.overall_sparsity()
    finish(Stage("pruned", float(size_report(res.pruned).total("relative", include_other=False)),
                 _test_accuracy(res.pruned, data), time.perf_counter() - t,
                 f"{kept:.1%} of weights kept; float32 values + 5-bit relative indices"))
    res.histograms = {n[: -len(".weight")]: weight_histogram(w.detach().numpy())
                      for n, w in prunable_weights(res.pruned).items()}

    t = time.perf_counter()
    report(f"{cfg.bits}-bit k-means", 0.0)
    res.quantized, res.accuracy_before_finetune, res.centroids_initial = quantize_stage(
        res.pruned, res.masks, data, cfg, lambda f: report(f"{cfg.bits}-bit k-means", f), should_stop)
    res.shared = shared_of(res.quantized)
    fixed = model_size(encode_model(res.shared, huffman=False))
    finish(Stage(f"{cfg.bits}-bit k-means", fixed.compressed_bits / 8, _test_accuracy(res.quantized, data),
                 time.perf_counter() - t, f"{cfg.init} init, centroids fine-tuned; fixed-width indices and gaps "
                 f"(before fine-tuning: {res.accuracy_before_finetune:.2%} accuracy)"))

    t = time.perf_counter()
    report("Huffman", 0.0)
    res.encoded = encode_model(res.shared, huffman=True)
    res.layer_sizes = model_size(res.encoded).layers
    decoded = decoded_model(res.pruned, res.quantized, res.encoded)
    finish(Stage("Huffman", model_size(res.encoded).compressed_bits / 8, _test_accuracy(decoded, data),
                 time.perf_counter() - t, "Huffman-coded indices and gaps; model decoded from the bytes"))
    report("Huffman", 1.0)
    return res
