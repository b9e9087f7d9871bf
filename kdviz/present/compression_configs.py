"""Run configs that fine-tune a trained baseline with a compression hook, built once for both UIs.

A compression run starts from a finished baseline's weights (``init_from``) with the baseline's
dataset, model and batch size, and adds one hook entry built on the method side
(``kdviz.methods.prune.prune_hook``, ``kdviz.methods.quantize.kmeans_hook``), so no page or widget
spells a hook's name, a batch size or the step arithmetic of the evaluation cadence.

* ``prune_fine_tune_config``: magnitude pruning while fine-tuning (Han et al. 2015), by default on
  Zhu & Gupta's AGP schedule (2017, eq. 1) over the first 75% of the run.
* ``kmeans_fine_tune_config``: k-means weight sharing, then centroid fine-tuning with every
  weight's index fixed (Han, Mao, Dally 2016, sec. 3.3, eq. 3).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..engine import TrainConfig
from ..engine.setup import steps_per_epoch
from ..methods.prune import prune_hook
from ..methods.quantize import kmeans_hook
from .runs import as_run_view

# Recovers the dense accuracy of LeNet-300-100 on digits at 90% sparsity in 8 epochs (measured).
PRUNE_FINE_TUNE_LR = 0.02
# Centroid gradients sum whole clusters (eq. 3): a far smaller rate than the weights were trained with.
KMEANS_FINE_TUNE_LR = 1e-3


def _positive(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive whole number, got {value!r}")
    return value


def fine_tune_config(baseline: Any, hook: Mapping[str, Any], epochs: int, lr: float, evals: int = 20,
                     snapshots: int = 40, name: str | None = None, **overrides: Any) -> TrainConfig:
    """A run that starts from ``baseline`` (a finished ``Job``, ``RunReader`` or run folder) and
    trains ``epochs`` epochs at ``lr`` with the ``hook`` entry; about ``evals`` evaluations and
    ``snapshots`` snapshots over the run. ``overrides`` set any other ``TrainConfig`` field."""
    view = as_run_view(baseline)
    if view.path is None:
        raise ValueError("the baseline must be a run with a folder (its last checkpoint starts the fine-tuning)")
    base: TrainConfig = view.config
    epochs, evals, snapshots = _positive(epochs, "epochs"), _positive(evals, "evals"), _positive(snapshots, "snapshots")
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr > 0:
        raise ValueError(f"the learning rate must be a positive number, got {lr!r}")
    batch_size = int(overrides.pop("batch_size", base.batch_size))
    steps = epochs * steps_per_epoch(base, batch_size)
    fields = {
        "init_from": str(view.path), "epochs": epochs, "lr": float(lr), "batch_size": batch_size,
        "eval_every": max(1, steps // evals), "snapshot_every": max(1, steps // snapshots),
        "hooks": [dict(hook)], "max_steps": None, "teacher": None, "name": name or f"{base.name}-fine-tuned",
    }
    return replace(base, **{**fields, **overrides}).validate()


def prune_fine_tune_config(baseline: Any, sparsity: float | Mapping[str, float], scope: str = "layer",
                           schedule: str = "agp", epochs: int = 8, lr: float = PRUNE_FINE_TUNE_LR,
                           **overrides: Any) -> TrainConfig:
    """Prune ``baseline`` to ``sparsity`` (per layer or one global cut) while fine-tuning it."""
    base = as_run_view(baseline).config
    overrides.setdefault("name", f"pruned-{base.model}-{base.dataset}")
    return fine_tune_config(baseline, prune_hook(sparsity, scope, schedule), epochs, lr, **overrides)


def kmeans_fine_tune_config(baseline: Any, bits: int, init: str = "linear", epochs: int = 4,
                            lr: float = KMEANS_FINE_TUNE_LR, **overrides: Any) -> TrainConfig:
    """Cluster ``baseline``'s layers into 2^``bits`` shared values and fine-tune the shared values."""
    base = as_run_view(baseline).config
    overrides.setdefault("name", f"k-means-{base.model}-{base.dataset}")
    overrides.setdefault("snapshots", 30)
    return fine_tune_config(baseline, kmeans_hook(bits, init), epochs, lr, **overrides)


__all__ = ["KMEANS_FINE_TUNE_LR", "PRUNE_FINE_TUNE_LR", "fine_tune_config", "kmeans_fine_tune_config",
           "prune_fine_tune_config"]
