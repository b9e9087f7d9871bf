"""Fast re-evaluation for the bits and rank sliders.

A slider move changes only the weights, so everything else is computed once: the test images as
one contiguous float32 tensor, each layer's sorted weights (k-means then needs only Lloyd's
O(k log n) iterations), each layer's SVD (a rank is then a matrix product), and results already
seen (moving a slider back is free). Evaluation runs under ``torch.inference_mode`` in one large
batch on a private copy of the model, so the caller's model is never touched.

The first fully connected layer of an MLP always sees the same input, the flattened test images,
so it gets two more caches (``FixedInputLinear``): input pixels that are zero in every test image
are skipped (on MNIST 116 of 784; they add exactly nothing), and for the rank slider the
projection X V^T is computed once, after which rank r costs X V_r^T (cached) times (U_r S_r)^T.
"""
from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .binary import BINARIZERS
from .kmeans import SharedWeights, SortedWeights, check_bits, select_layers
from .lowrank import SVDFactors, check_rank
from .uniform import quantize_dequantize


class FixedInputLinear(nn.Module):
    """Wraps a Linear layer whose evaluation input is always ``inputs`` (N, n). For exactly that
    input it multiplies only the columns that are non-zero somewhere in ``inputs``, or returns
    ``override`` when set; any other input goes through the plain layer."""

    def __init__(self, layer: nn.Linear, inputs: torch.Tensor) -> None:
        super().__init__()
        self.layer = layer
        self.keep = (inputs != 0).any(dim=0)
        self.reduced = inputs[:, self.keep].contiguous()
        self._ptr, self._shape = inputs.data_ptr(), tuple(inputs.shape)
        self.override: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.data_ptr() != self._ptr or tuple(x.shape) != self._shape:
            return self.layer(x)
        if self.override is not None:
            return self.override
        return F.linear(self.reduced, self.layer.weight[:, self.keep], self.layer.bias)


class SliderEvaluator:
    """Accuracy of ``model`` on (images, labels) with some layers' weights replaced.

    ``layers``: the layer names the sliders act on (default every Linear/Conv layer).
    """

    def __init__(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                 layers: list[str] | None = None, batch_size: int = 10_000) -> None:
        if len(images) != len(labels) or len(images) == 0:
            raise ValueError(f"need as many labels as images (and at least one), got {len(images)} and {len(labels)}")
        self.model = copy.deepcopy(model).cpu().eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.layers = select_layers(self.model, layers)
        self.original = {n: m.weight.detach().clone() for n, m in self.layers.items()}
        self.images = torch.as_tensor(images, dtype=torch.float32).contiguous()
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.batch_size = int(batch_size)
        self._sorted: dict[str, SortedWeights] = {}
        self._svd: dict[str, SVDFactors] = {}
        self._results: dict[tuple, float] = {}
        self._shared: dict[tuple, dict[str, SharedWeights]] = {}
        self._fixed = self._wrap_input_layers() if self.batch_size >= len(self.images) else {}
        self._projection: dict[str, torch.Tensor] = {}
        self.derived: dict[tuple, object] = {}  # what callers derive once from the original weights (explore.py)

    def _wrap_input_layers(self) -> dict[str, FixedInputLinear]:
        """Find the Linear slider layers fed directly with the flattened images (same storage) by
        one tiny forward pass, and wrap them in ``FixedInputLinear``."""
        found: list[str] = []
        hooks = [m.register_forward_pre_hook(lambda mod, args, name=n: found.append(name)
                                             if args[0].data_ptr() == self.images.data_ptr() else None)
                 for n, m in self.layers.items() if isinstance(m, nn.Linear)]
        with torch.inference_mode():
            self.model(self.images[:2])
        for h in hooks:
            h.remove()
        wrapped = {}
        modules = dict(self.model.named_modules())
        for name in found:
            parent_name, _, child = name.rpartition(".")
            wrapped[name] = FixedInputLinear(self.layers[name], self.images.reshape(len(self.images), -1))
            setattr(modules[parent_name] if parent_name else self.model, child, wrapped[name])
        return wrapped

    # -- evaluation -------------------------------------------------------------------------
    def accuracy(self, weights: dict[str, torch.Tensor] | None = None,
                 outputs: dict[str, torch.Tensor] | None = None) -> float:
        """Top-1 accuracy with ``weights`` ({layer: tensor}) in place of the originals; ``outputs``
        gives precomputed outputs of input layers (``FixedInputLinear``) instead."""
        weights, outputs = weights or {}, outputs or {}
        unknown = [n for n in weights if n not in self.layers]
        if unknown:
            raise ValueError(f"unknown layers {unknown} (slider layers: {', '.join(self.layers)})")
        try:
            with torch.inference_mode():
                for name, module in self.layers.items():
                    module.weight.copy_(weights.get(name, self.original[name]))
                for name, out in outputs.items():
                    self._fixed[name].override = out
                correct = 0
                for start in range(0, len(self.images), self.batch_size):
                    logits = self.model(self.images[start : start + self.batch_size])
                    correct += int((logits.argmax(dim=1) == self.labels[start : start + self.batch_size]).sum())
        finally:
            for wrapper in self._fixed.values():
                wrapper.override = None
        return correct / len(self.images)

    def _cached(self, key: tuple, make_weights: Callable[[], dict[str, torch.Tensor]]) -> float:
        if key not in self._results:
            self._results[key] = self.accuracy(make_weights())
        return self._results[key]

    def baseline(self) -> float:
        """Accuracy with the original float weights."""
        return self._cached(("float",), dict)

    # -- k-means weight sharing (Han et al. 2016) ---------------------------------------------
    def kmeans_shared(self, bits: int, init: str = "linear", seed: int = 0) -> dict[str, SharedWeights]:
        """Codebooks of every slider layer at ``bits`` (cached per bits, init and seed)."""
        key = (int(check_bits(bits)), init, int(seed))
        if key not in self._shared:
            for name in self.layers:
                if name not in self._sorted:
                    self._sorted[name] = SortedWeights(self.original[name])
            self._shared[key] = {n: self._sorted[n].cluster(bits, init=init, seed=seed) for n in self.layers}
        return self._shared[key]

    def kmeans(self, bits: int, init: str = "linear", seed: int = 0) -> float:
        """Accuracy after k-means weight sharing with 2^bits centroids per layer (no fine-tuning)."""
        shared = lambda: {n: sw.weight() for n, sw in self.kmeans_shared(bits, init, seed).items()}  # noqa: E731
        return self._cached(("kmeans", int(bits), init, int(seed)), shared)

    # -- uniform and binary ------------------------------------------------------------------
    def uniform(self, bits: int, symmetric: bool = True, per_channel: bool = False) -> float:
        """Accuracy with every slider layer uniformly quantized (Jacob et al. 2018)."""
        make = lambda: {n: quantize_dequantize(w, bits, symmetric, per_channel) for n, w in self.original.items()}  # noqa: E731
        return self._cached(("uniform", int(bits), bool(symmetric), bool(per_channel)), make)

    def binary(self, method: str = "xnor") -> float:
        """Accuracy with every slider layer binarized (``"binaryconnect"`` or ``"xnor"``)."""
        binarize = BINARIZERS.get(method)
        return self._cached(("binary", method), lambda: {n: binarize(w) for n, w in self.original.items()})

    # -- low rank (truncated SVD) ------------------------------------------------------------
    def svd(self, name: str) -> SVDFactors:
        """The cached SVD of one slider layer's weight."""
        if name not in self.layers:
            raise ValueError(f"unknown layer {name!r} (slider layers: {', '.join(self.layers)})")
        if name not in self._svd:
            self._svd[name] = SVDFactors(self.original[name])
        return self._svd[name]

    def low_rank(self, ranks: dict[str, int]) -> float:
        """Accuracy with each named layer's weight truncated to its rank ({"fc1": 20, ...})."""
        for name, r in ranks.items():
            check_rank(r, self.svd(name).matrix_shape)
        key = ("rank", tuple(sorted((n, int(r)) for n, r in ranks.items())))
        if key not in self._results:
            weights = {n: self.svd(n).matrix(r) for n, r in ranks.items() if n not in self._fixed}
            outputs = {n: self._rank_output(n, r) for n, r in ranks.items() if n in self._fixed}
            self._results[key] = self.accuracy(weights, outputs)
        return self._results[key]

    def _rank_output(self, name: str, rank: int) -> torch.Tensor:
        """Output of an input layer at rank r: (X V^T)[:, :r] (U_r S_r)^T + b, X V^T cached."""
        wrapper, svd = self._fixed[name], self.svd(name)
        if name not in self._projection:
            with torch.inference_mode():
                self._projection[name] = wrapper.reduced @ svd.Vh[:, wrapper.keep].to(torch.float32).T
        a, _ = svd.factors(rank)
        with torch.inference_mode():
            out = self._projection[name][:, :rank] @ a.T
            return out + wrapper.layer.bias if wrapper.layer.bias is not None else out
