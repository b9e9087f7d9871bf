"""Snapshots: what the visuals need every N steps, recorded through one mechanism.

* soft targets of a fixed probe set (test images, stratified by class, chosen by the run's seed) at
  several temperatures, ``softmax(z / T)`` (Hinton et al. 2015, eq. 1), for the student at every
  snapshot and for the teacher once (in the run's reference arrays);
* teacher-student agreement on the probe set (the fraction of equal argmax predictions);
* per-layer weight histograms over bins fixed at the first snapshot, so histograms from different
  steps compare bin for bin;
* every hook's ``snapshot(ctx)`` arrays, stored under ``"<hook name>/<key>"``.

Array keys: ``probe/logits`` (P, K), ``probe/soft`` (nT, P, K), ``weights/<layer>`` (bins,) counts.
Reference keys: ``probe/indices``, ``probe/labels``, ``probe/images``, ``probe/temperatures``,
``teacher/logits``, ``teacher/soft``, ``edges/<layer>`` (bins + 1,).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..distill import soften
from .evaluation import evaluating

HISTOGRAM_BINS = 41
EDGE_SCALE = 3.0  # bins span +-3x the largest initial |weight|; values outside land in the end bins


def probe_indices(labels: torch.Tensor | np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` test indices, class-interleaved (one of each class, then a second of each, ...)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    chosen: list[int] = []
    for rank in range(max(len(p) for p in per_class)):
        chosen.extend(int(p[rank]) for p in per_class if rank < len(p))
        if len(chosen) >= count:
            break
    return np.asarray(chosen[:count], dtype=np.int64)


def weight_layers(model: nn.Module) -> dict[str, torch.Tensor]:
    """Weight tensors of layers (parameters named ``weight`` with two or more dimensions), by layer."""
    return {name[: -len(".weight")]: p for name, p in model.named_parameters() if name.endswith("weight") and p.ndim >= 2}


def weight_histogram(weight: torch.Tensor, edges: np.ndarray) -> np.ndarray:
    """Counts of ``weight`` values in the bins of ``edges``; values outside go to the end bins."""
    w = weight.detach().float().flatten().clamp(float(edges[0]), float(edges[-1]))
    counts = torch.histc(w.cpu(), bins=len(edges) - 1, min=float(edges[0]), max=float(edges[-1]))
    return counts.to(torch.int64).numpy()


def soft_targets_at(logits: torch.Tensor, temperatures: list[float]) -> np.ndarray:
    """``softmax(logits / T)`` for every T, stacked: (nT, P, K), float32."""
    return np.stack([soften(logits.double(), T).float().cpu().numpy() for T in temperatures])


class SnapshotMaker:
    """Builds the reference arrays once and a snapshot's (meta, arrays) on request."""

    def __init__(self, dataset: Any, config: Any, device: torch.device) -> None:
        self.temperatures = [float(t) for t in config.probe_temperatures]
        self.indices = probe_indices(dataset.test_labels, config.probe_count, config.seed)
        self.images = dataset.test_images[torch.from_numpy(self.indices)]
        self.labels = dataset.test_labels[torch.from_numpy(self.indices)]
        self.device = device
        self.edges: dict[str, np.ndarray] = {}
        self.teacher_pred: torch.Tensor | None = None

    def _logits(self, model: nn.Module) -> torch.Tensor:
        with evaluating(model):
            return model(self.images.to(self.device)).float().cpu()

    def reference(self, model: nn.Module, teacher: nn.Module | None) -> dict[str, np.ndarray]:
        """Probe set, temperatures, fixed histogram edges and (with a teacher) its soft targets."""
        arrays = {
            "probe/indices": self.indices,
            "probe/labels": self.labels.numpy(),
            "probe/images": self.images.numpy(),
            "probe/temperatures": np.asarray(self.temperatures, dtype=np.float64),
        }
        for name, w in weight_layers(model).items():
            r = max(EDGE_SCALE * w.detach().abs().max().item(), 1e-3)
            self.edges[name] = np.linspace(-r, r, HISTOGRAM_BINS + 1)
            arrays[f"edges/{name}"] = self.edges[name]
        if teacher is not None:
            t_logits = self._logits(teacher)
            self.teacher_pred = t_logits.argmax(dim=1)
            arrays["teacher/logits"] = t_logits.numpy()
            arrays["teacher/soft"] = soft_targets_at(t_logits, self.temperatures)
        return arrays

    def restore(self, reference: dict[str, np.ndarray]) -> None:
        """Reuse a resumed run's reference: its histogram edges and the teacher's probe predictions."""
        self.edges = {k[len("edges/"):]: v for k, v in reference.items() if k.startswith("edges/")}
        if "teacher/logits" in reference:
            self.teacher_pred = torch.from_numpy(reference["teacher/logits"]).argmax(dim=1)

    def take(self, model: nn.Module, hooks: list, ctx: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(meta scalars, arrays) of the model now; ``hooks`` is a list of (label, hook)."""
        logits = self._logits(model)
        pred = logits.argmax(dim=1)
        meta: dict[str, Any] = {"probe_acc": (pred == self.labels).float().mean().item()}
        arrays: dict[str, np.ndarray] = {"probe/logits": logits.numpy(), "probe/soft": soft_targets_at(logits, self.temperatures)}
        if self.teacher_pred is not None:
            meta["agreement_probe"] = (pred == self.teacher_pred).float().mean().item()
        for name, w in weight_layers(model).items():
            if name in self.edges:
                arrays[f"weights/{name}"] = weight_histogram(w, self.edges[name])
        for label, hook in hooks:
            for key, value in hook.snapshot(ctx).items():
                arrays[f"{label}/{key}"] = np.asarray(value)
        return meta, arrays
