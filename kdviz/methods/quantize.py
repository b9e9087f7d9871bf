"""Training hooks and methods that quantize a model while the engine trains it (see ``kdviz.engine.hooks``).

- ``"kmeans"``: k-means weight sharing after setup, then centroid fine-tuning with the indices
  fixed (Han et al. 2016, sec. 3.3, eq. 3; see ``shared_weights``).
  ``{"name": "kmeans", "bits": 6, "init": "linear", "layers": null}``
- ``"fake_quant"``: uniform quantization-aware training with fake quantization and a
  straight-through estimator (Jacob et al. 2018). ``{"name": "fake_quant", "bits": 8,
  "symmetric": true, "per_channel": false}``
- ``"binary"``: BinaryConnect (Courbariaux et al. 2015) or XNOR/BWN (Rastegari et al. 2016)
  training; the latent float weights are clipped to [-1, 1] after every step (BinaryConnect's
  rule). ``{"name": "binary", "method": "binaryconnect"}``

Snapshot arrays are keyed ``quantity/layer`` (``centroids/fc1``, ``index_map/fc1``...) plus a
``layers`` array; the engine prefixes them with the hook's label (``kmeans/centroids/fc1``).

Each layer's weight becomes a ``torch.nn.utils.parametrize`` parametrization, so the forward pass
(and anything reading ``layer.weight``) sees the quantized weight. The centroids of the
``kmeans`` hook are new parameters: when the optimizer already exists at ``setup`` they are added
to it as a new parameter group; otherwise an optimizer built from ``model.parameters()`` after
``setup`` includes them.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from ..engine.hooks import HOOKS, TrainContext, TrainingHook, validate_hook_spec
from ..palette import ROLE_COLORS
from ..quant.binary import BINARIZERS, BinaryParametrization, xnor_alpha
from ..quant.histograms import index_map, weight_histogram
from ..quant.kmeans import INITS, SharedWeights, check_bits, kmeans_quantize, select_layers
from ..quant.shared_weights import SharedWeightParametrization, attach_shared_weights
from ..quant.uniform import FakeQuantParametrization, quant_params
from .base import MethodSpec, PageSpec, register_method, uses_hook


def _add_to_optimizer(optimizer: torch.optim.Optimizer | None, params: list[nn.Parameter], lr: float | None) -> None:
    if optimizer is None:
        return
    present = {id(p) for group in optimizer.param_groups for p in group["params"]}
    new = [p for p in params if id(p) not in present]
    if new:
        optimizer.add_param_group({"params": new} if lr is None else {"params": new, "lr": float(lr)})


@HOOKS.register("kmeans")
class KMeansHook(TrainingHook):
    """Cluster each layer at setup, then train only the centroids (plus biases and other layers).

    A centroid's gradient sums the gradients of its whole cluster (eq. 3), thousands of weights in
    a large layer, so it wants a smaller learning rate than the weights did: ``lr`` sets the
    centroids' own rate when the optimizer exists at ``setup`` (they get their own group).
    """

    def __init__(self, bits: int | dict = 5, init: str = "linear", layers: list[str] | None = None, seed: int = 0,
                 lr: float | None = None, bins: int = 60, index_map_side: int = 128) -> None:
        per_layer = bits if isinstance(bits, dict) else None
        for b in (per_layer.values() if per_layer else [bits]):
            check_bits(b)
        INITS.get(init)  # unknown initialisation: a ValueError now, not at setup
        if lr is not None and not lr > 0:
            raise ValueError(f"lr must be positive, got {lr}")
        self.bits, self.init, self.layers, self.seed, self.lr = bits, init, layers, int(seed), lr
        self.bins, self.index_map_side = int(bins), int(index_map_side)
        self.params: dict[str, SharedWeightParametrization] = {}
        self.initial: dict[str, torch.Tensor] = {}
        self.histograms: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._loaded: dict[str, torch.Tensor] = {}

    def setup(self, ctx: TrainContext) -> None:
        for name, module in select_layers(ctx.model, self.layers).items():
            bits = self.bits[name] if isinstance(self.bits, dict) else self.bits
            self.histograms[name] = weight_histogram(module.weight.detach().cpu().numpy(), self.bins)
            if f"{name}.indices" in self._loaded:  # resuming: the checkpoint's codebook, not a new one
                shared = SharedWeights(self._loaded[f"{name}.centroids"], self._loaded[f"{name}.indices"].long(),
                                       self._loaded[f"{name}.mask"].bool(), bits)
                self.initial[name] = self._loaded[f"{name}.centroids_initial"].detach().cpu().clone()
            else:
                shared = kmeans_quantize(module.weight, bits, init=self.init, seed=self.seed)
                self.initial[name] = shared.centroids.clone()
            self.params[name] = attach_shared_weights(module, shared)
        _add_to_optimizer(ctx.optimizer, [p.centroids for p in self.params.values()], self.lr)

    def metrics(self, ctx: TrainContext) -> dict[str, float]:
        shifts = [float((p.centroids.detach().cpu() - self.initial[n]).abs().max()) for n, p in self.params.items()]
        return {"max_centroid_shift": max(shifts)} if shifts else {}

    def snapshot(self, ctx: TrainContext) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {"layers": np.asarray(list(self.params)),
                                      "bits": np.asarray([p.bits for p in self.params.values()], dtype=np.int64)}
        for name, p in self.params.items():
            shared = p.shared_weights()
            out[f"hist_counts/{name}"], out[f"hist_edges/{name}"] = self.histograms[name]
            out[f"centroids_initial/{name}"] = self.initial[name].numpy().astype(np.float32)
            out[f"centroids/{name}"] = shared.centroids.cpu().numpy().astype(np.float32)
            out[f"cluster_counts/{name}"] = shared.cluster_counts().cpu().numpy().astype(np.int64)
            out[f"index_map/{name}"] = index_map(shared, self.index_map_side)
        return out

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {}
        for name, p in self.params.items():
            state[f"{name}.centroids"] = p.centroids.detach().cpu().clone()
            state[f"{name}.centroids_initial"] = self.initial[name].clone()
            state[f"{name}.indices"] = p.indices.cpu().clone()
            state[f"{name}.mask"] = p.mask.cpu().clone()
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self._loaded = dict(state)
        for name, p in self.params.items():  # already set up: overwrite in place
            if f"{name}.indices" not in state or tuple(state[f"{name}.indices"].shape) != tuple(p.indices.shape):
                raise ValueError(f"checkpoint has no k-means codebook for layer {name!r} of matching shape")
            with torch.no_grad():
                if state[f"{name}.centroids"].shape != p.centroids.shape:
                    p.centroids.data = state[f"{name}.centroids"].to(p.centroids.device).clone()
                else:
                    p.centroids.copy_(state[f"{name}.centroids"])
                p.indices.copy_(state[f"{name}.indices"])
                p.mask.copy_(state[f"{name}.mask"])
            self.initial[name] = state[f"{name}.centroids_initial"].clone()


def _latent_weights(modules: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    return {n: m.parametrizations.weight.original for n, m in modules.items()}


@HOOKS.register("fake_quant")
class FakeQuantHook(TrainingHook):
    """Quantization-aware training: each layer computes with fake-quantized weights."""

    def __init__(self, bits: int = 8, symmetric: bool = True, per_channel: bool = False, layers: list[str] | None = None,
                 bins: int = 60) -> None:
        FakeQuantParametrization(bits, symmetric, per_channel)  # validates the options now
        self.bits, self.symmetric, self.per_channel, self.layers, self.bins = bits, symmetric, per_channel, layers, bins
        self.modules: dict[str, nn.Module] = {}

    def setup(self, ctx: TrainContext) -> None:
        self.modules = select_layers(ctx.model, self.layers)
        for module in self.modules.values():
            parametrize.register_parametrization(
                module, "weight", FakeQuantParametrization(self.bits, self.symmetric, self.per_channel))

    def snapshot(self, ctx: TrainContext) -> dict[str, np.ndarray]:
        out = {"layers": np.asarray(list(self.modules))}
        for name, w in _latent_weights(self.modules).items():
            params = quant_params(w, self.bits, self.symmetric, self.per_channel)
            out[f"hist_counts/{name}"], out[f"hist_edges/{name}"] = weight_histogram(w.detach().cpu().numpy(), self.bins)
            out[f"scale/{name}"] = params.scale.detach().cpu().numpy().ravel().astype(np.float32)
        return out


@HOOKS.register("binary")
class BinaryHook(TrainingHook):
    """Binary-weight training; ``method`` is ``"binaryconnect"`` or ``"xnor"``."""

    def __init__(self, method: str = "binaryconnect", clip: bool = True, layers: list[str] | None = None,
                 bins: int = 60) -> None:
        BINARIZERS.get(method)
        self.method, self.clip, self.layers, self.bins = method, bool(clip), layers, bins
        self.modules: dict[str, nn.Module] = {}

    def setup(self, ctx: TrainContext) -> None:
        self.modules = select_layers(ctx.model, self.layers)
        for module in self.modules.values():
            parametrize.register_parametrization(module, "weight", BinaryParametrization(self.method))

    def after_step(self, ctx: TrainContext) -> None:
        if self.clip:  # Courbariaux et al. 2015, algorithm 1: w <- clip(w - eta * g, -1, 1)
            with torch.no_grad():
                for w in _latent_weights(self.modules).values():
                    w.clamp_(-1.0, 1.0)

    def snapshot(self, ctx: TrainContext) -> dict[str, np.ndarray]:
        out = {"layers": np.asarray(list(self.modules))}
        for name, w in _latent_weights(self.modules).items():
            out[f"hist_counts/{name}"], out[f"hist_edges/{name}"] = weight_histogram(w.detach().cpu().numpy(), self.bins)
            out[f"alpha/{name}"] = xnor_alpha(w.detach()).cpu().numpy().ravel().astype(np.float32)
        return out


@dataclass(frozen=True)
class QuantSnapshot:
    """One snapshot of a quantization hook: the quantized ``layers`` and, per layer, its arrays
    (``hist_counts``, ``hist_edges``; k-means adds ``centroids``, ``centroids_initial``,
    ``cluster_counts``, ``index_map`` and a ``bits`` per layer; uniform adds ``scale``; binary ``alpha``)."""

    layers: list[str]
    arrays: Mapping[str, np.ndarray]
    label: str

    def get(self, quantity: str, layer: str) -> np.ndarray:
        """``quantity`` of ``layer`` (a ``ValueError`` names what is missing)."""
        if layer not in self.layers:
            raise ValueError(f"layer {layer!r} is not quantized in this run (quantized: {self.layers})")
        key = f"{self.label}/{quantity}/{layer}"
        if key not in self.arrays:
            raise ValueError(f"this snapshot has no {quantity!r} for {layer!r} (the {self.label!r} hook stores other arrays)")
        return np.asarray(self.arrays[key])

    def histogram(self, layer: str) -> tuple[np.ndarray, np.ndarray]:
        return self.get("hist_counts", layer), self.get("hist_edges", layer)

    @property
    def bits(self) -> np.ndarray | None:
        key = f"{self.label}/bits"
        return np.asarray(self.arrays[key]) if key in self.arrays else None


def read_quant_snapshot(arrays: Mapping[str, np.ndarray], label: str) -> QuantSnapshot:
    """The typed reader of a quantization hook's arrays stored under ``label``."""
    if f"{label}/layers" not in arrays:
        raise ValueError(f"this snapshot has no quantization arrays under {label + '/'!r}")
    return QuantSnapshot([str(x) for x in np.asarray(arrays[f"{label}/layers"]).tolist()], arrays, label)


def kmeans_hook(bits: int | Mapping[str, int], init: str = "linear", **options) -> dict:
    """The config entry of the ``kmeans`` hook (checked now: bad bits or an unknown ``init`` are a
    ``ValueError`` here, not when the run starts), e.g. ``kmeans_hook(2)`` for 4 shared values per layer."""
    entry = {"name": "kmeans", "bits": dict(bits) if isinstance(bits, Mapping) else bits, "init": init, **options}
    validate_hook_spec(entry)
    return entry


def _option(config, hook: str, key: str, default):
    return next(h for h in config.hooks if h.get("name") == hook).get(key, default)


KMEANS = register_method(MethodSpec(
    name="kmeans", label="k-means fine-tune", colour=ROLE_COLORS["quantized"],
    summary="k-means weight sharing with centroid fine-tuning (Han et al. 2016, Deep Compression, sec. 3, eq. 3)",
    hook=KMeansHook, claims=uses_hook("kmeans"), priority=40, reader=read_quant_snapshot,
    label_run=lambda config: f"k-means {_option(config, 'kmeans', 'bits', 5)} bits",
    pages=(PageSpec("quantization", "Quantization", ":material/grain:", order=40, section="Compression"),),
    widgets={"QuantizationExplorer": "quantization", "CentroidMonitor": "quantization"},
))

FAKE_QUANT = register_method(MethodSpec(
    name="fake_quant", label="quantization-aware", colour=ROLE_COLORS["quantized"],
    summary="uniform fake quantization with a straight-through estimator (Jacob et al. 2018)",
    hook=FakeQuantHook, claims=uses_hook("fake_quant"), priority=40, reader=read_quant_snapshot,
    label_run=lambda config: f"QAT {_option(config, 'fake_quant', 'bits', 8)} bits",
))

BINARY = register_method(MethodSpec(
    name="binary", label="binary weights", colour=ROLE_COLORS["quantized"],
    summary="BinaryConnect (Courbariaux et al. 2015) or XNOR/BWN (Rastegari et al. 2016) training",
    hook=BinaryHook, claims=uses_hook("binary"), priority=40, reader=read_quant_snapshot,
    label_run=lambda config: str(_option(config, "binary", "method", "binaryconnect")),
))
