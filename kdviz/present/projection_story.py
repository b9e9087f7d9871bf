"""The ProjectionNet experiment (Ravi 2017, arXiv:1708.00630): its defaults, its runs' configs, their
sizes in bytes, and the charts and captions both UIs show.

Start trains, on the sidebar's dataset, one projection net per bit budget, each jointly with its own
trainer network on eq. 1 (``kdviz.methods.projection``): the chosen T hash functions of d bits, and
the same d with T/2, T/4 and T/8 hash functions, so "accuracy against the number of bits" fills in
from real runs (the paper's question "how many neural bits are required to solve a given task?").
The runs share seed, data, batches and schedule; P of each run is drawn from the run's seed.

Sizes: the deployed projection net is its float32 weights plus the 8-byte seed of P (the T*d*D
hyperplanes are regenerated from it, so they cost nothing); the trainer is its float32 weights.
Captions say what the charts show now, from the records and snapshots read so far.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from ..engine import TrainConfig
from ..figures.projection import accuracy_against_bits, bit_patterns, loss_parts_curve, loss_parts_series
from ..methods.projection import PARTS, PROJECTION, bits_of, projection_config, projection_options
from ..methods.scratch import TEACHER
from ..models import build_model
from ..models.projection_net import float_bytes, model_bytes
from .story import LEVEL_POINTS, points

MAX_EVALS_PER_RUN = 20
SWEEP_DIVISORS = (8, 4, 2, 1)  # the bit budgets: T/8, T/4, T/2 and T hash functions of d bits


@dataclass(frozen=True)
class ProjectionDefaults:
    """The page's opening settings: T hash functions of d bits, the projection net's hidden width,
    lambda1..3 of eq. 1, the trainer's hidden widths, epochs, learning rate (SGD, momentum 0.9), seed."""

    num_hashes: int = 8
    bits_per_hash: int = 8
    hidden: int = 128
    lambda1: float = 1.0
    lambda2: float = 1.0
    lambda3: float = 1.0
    trainer_hidden: tuple[int, ...] = (256, 256)
    epochs: int = 10
    lr: float = 0.05
    seed: int = 0


PROJECTION_DEFAULTS = ProjectionDefaults()


def bit_budgets(num_hashes: int, sweep: bool = True) -> list[int]:
    """The T of each run, largest first: ``num_hashes`` and (``sweep``) num_hashes/2, /4, /8 (at least 1)."""
    if isinstance(num_hashes, bool) or not isinstance(num_hashes, int) or num_hashes < 1:
        raise ValueError(f"T (hash functions) must be a whole number >= 1, got {num_hashes!r}")
    divisors = SWEEP_DIVISORS if sweep else (1,)
    return sorted({max(1, num_hashes // k) for k in divisors}, reverse=True)


def run_name(num_hashes: int, bits_per_hash: int) -> str:
    """The job name of the run with T x d bits ("ProjectionNet 8x8 (64 bits)")."""
    return f"ProjectionNet {num_hashes}x{bits_per_hash} ({num_hashes * bits_per_hash} bits)"


def projection_configs(*, dataset: str, num_hashes: int, bits_per_hash: int, hidden: int, lambda1: float,
                       lambda2: float, lambda3: float, epochs: int, lr: float, seed: int, runs_root: str,
                       data_root: str | None = None, trainer_hidden: Sequence[int] = PROJECTION_DEFAULTS.trainer_hidden,
                       sweep: bool = True, train_subset: int | None = None) -> dict[str, TrainConfig]:
    """The runs' validated configs by job name, the chosen T x d first (a ``ValueError`` names a bad setting)."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a whole number >= 1, got {epochs!r}")
    base = TrainConfig(dataset=dataset, data_root=data_root, epochs=epochs, lr=float(lr), seed=int(seed),
                       train_subset=train_subset, eval_train_samples=500, runs_root=str(runs_root))
    every = max(1, epochs * _steps_per_epoch(base) // MAX_EVALS_PER_RUN)
    trainer = {"trainer_model": "mlp", "trainer_model_options": {"hidden": [int(h) for h in trainer_hidden]}}
    out = {}
    for t in bit_budgets(int(num_hashes), sweep):
        config = projection_config(base, num_hashes=t, bits_per_hash=int(bits_per_hash), hidden=[int(hidden)],
                                   lambda1=lambda1, lambda2=lambda2, lambda3=lambda3, **trainer)
        out[run_name(t, int(bits_per_hash))] = TrainConfig.from_dict(
            {**config.to_dict(), "name": f"projection-{t}x{bits_per_hash}", "eval_every": every,
             "snapshot_every": every}).validate()
    return out


def _steps_per_epoch(config: TrainConfig) -> int:
    from ..engine.setup import steps_per_epoch

    return steps_per_epoch(config)


@dataclass(frozen=True)
class ModelSizes:
    """Bytes of one run's networks: the deployed projection net (float32 weights + the seed of P),
    what P would cost if stored as float32 (``planes_bytes``, 0 in the deployed model), the trainer."""

    projection_bytes: int
    planes_bytes: int
    trainer_bytes: int

    @property
    def ratio(self) -> float:
        """How many times smaller the projection net is than its trainer."""
        return self.trainer_bytes / max(1, self.projection_bytes)


def model_sizes(config: Any, input_shape: Sequence[int], num_classes: int) -> ModelSizes:
    """The ``ModelSizes`` of a ProjectionNet run with ``config`` on images of ``input_shape`` (each
    architecture is built once per process: a live page asks every second)."""
    options = projection_options(config)
    return _sizes(config.model, json.dumps(config.model_options, sort_keys=True), options["trainer_model"],
                  json.dumps(options["trainer_model_options"] or {}, sort_keys=True), tuple(input_shape), int(num_classes))


@functools.lru_cache(maxsize=64)
def _sizes(model: str, model_options: str, trainer_model: str, trainer_options: str, input_shape: tuple[int, ...],
           num_classes: int) -> ModelSizes:
    net = build_model(model, input_shape=input_shape, num_classes=num_classes, **json.loads(model_options))
    trainer = build_model(trainer_model, input_shape=input_shape, num_classes=num_classes, **json.loads(trainer_options))
    return ModelSizes(model_bytes(net), 4 * net.planes.numel(), float_bytes(trainer))


def dataset_shape(config: Any) -> tuple[tuple[int, int, int], int]:
    """(input shape, number of classes) of a run's dataset (loaded once per dataset and folder)."""
    return _dataset_shape(str(config.dataset), config.data_root)


@functools.lru_cache(maxsize=8)
def _dataset_shape(dataset: str, data_root: str | None) -> tuple[tuple[int, int, int], int]:
    from ..data import load_dataset

    bundle = load_dataset(dataset, data_root)
    return tuple(bundle.input_shape), int(bundle.num_classes)


def size_caption(sizes: ModelSizes, num_bits: int) -> str:
    """What the size numbers mean."""
    return (f"The deployed projection net is {sizes.projection_bytes:,} bytes: its float32 weights plus the 8-byte seed "
            f"of P. P's {num_bits} hyperplanes would take {sizes.planes_bytes:,} bytes as floats, but they are "
            f"regenerated from the seed, so they cost nothing. The trainer ({sizes.trainer_bytes:,} bytes) is "
            f"{sizes.ratio:.0f}x bigger and is not deployed.")


def bits_figure(view: Any, snapshot: Any = None) -> tuple[go.Figure, str]:
    """The bit patterns of the probe digits at ``snapshot`` (default the latest) and their caption."""
    snap = view.read(PROJECTION, snapshot)
    step = (snapshot or view.snapshots[-1]).step
    fig = bit_patterns(snap.bits, snap.num_hashes, snap.bits_per_hash, snap.labels.tolist(), snap.probs, step=step,
                       colour=view.colour)
    same = len({tuple(r) for r in snap.bits.tolist()}) == len(snap.bits)
    caption = (f"Step {step}. Each row is a test digit as P sees it: {snap.num_hashes} hash codes of "
               f"{snap.bits_per_hash} bits. {'Every digit here has its own bit pattern' if same else 'Some digits share a bit pattern, so no net can tell them apart: raise T or d'}"
               f"; the projection net reads {snap.accuracy:.0%} of them right now "
               f"(the trainer: {float((snap.trainer_probs.argmax(1) == snap.labels).mean()):.0%}).")
    return fig, caption


def loss_figure(view: Any) -> tuple[go.Figure, str] | None:
    """The three weighted terms of eq. 1 per step, and a caption that names the largest one now."""
    keys = {part: PROJECTION.metric_key(view.config, part) for part in PARTS}
    steps, parts = loss_parts_series(view.steps, keys)
    if not steps:
        return None
    last = {part: values[-1] for part, values in parts.items()}
    options = projection_options(view.config)
    caption = (f"At step {int(steps[-1])}: trainer {last['trainer_ce']:.2f}, distillation {last['distill']:.2f}, "
               f"labels {last['label']:.2f} (λ = {options['lambda1']:g}, {options['lambda2']:g}, "
               f"{options['lambda3']:g}). The distillation term stays above zero: it is a cross-entropy against the "
               f"trainer's soft predictions, whose own entropy is its floor.")
    return loss_parts_curve(steps, parts, colours=[TEACHER.colour, view.colour, "#7F7F7F"]), caption


def accuracy_points(views: Sequence[Any], input_shape: Sequence[int], num_classes: int) -> list[dict]:
    """One point per ProjectionNet run with an evaluation: bits, the latest test accuracy of the
    projection net and of its trainer, and both sizes in bytes."""
    out = []
    for view in views:
        if view.method is not PROJECTION or not view.evals:
            continue
        t, d = bits_of(view.config)
        last, sizes = view.evals[-1], model_sizes(view.config, input_shape, num_classes)
        out.append({"label": view.label, "bits": t * d, "accuracy": last.get("test_acc"),
                    "trainer_accuracy": last.get(PROJECTION.metric_key(view.config, "trainer_test_acc")),
                    "bytes": sizes.projection_bytes, "trainer_bytes": sizes.trainer_bytes, "epoch": last.get("epoch")})
    return out


def accuracy_figure(points_: Sequence[Mapping[str, Any]]) -> tuple[go.Figure, str]:
    """Accuracy against bits from ``accuracy_points`` and a caption that says what it shows now."""
    fig = accuracy_against_bits(points_, colour=PROJECTION.colour, trainer_colour=TEACHER.colour)
    shown = sorted((p for p in points_ if p.get("accuracy") is not None), key=lambda p: p["bits"])
    if not shown:
        return fig, "Each run's point appears after its first evaluation."
    best = max(shown, key=lambda p: p["accuracy"])
    parts = [f"{p['bits']} bits: {p['accuracy']:.1%} ({p['bytes']:,} bytes)" for p in shown]
    text = "Latest test accuracy per run: " + "; ".join(parts) + "."
    trainer = [p["trainer_accuracy"] for p in shown if p.get("trainer_accuracy") is not None]
    if trainer:
        gap = points(max(trainer) - best["accuracy"])
        text += (" The best projection net is level with its trainers." if abs(gap) < LEVEL_POINTS else
                 f" The best projection net ({best['bits']} bits) is {abs(gap):.1f} points "
                 f"{'below' if gap > 0 else 'above'} the best trainer.")
    return fig, text


__all__ = [
    "ModelSizes", "PROJECTION_DEFAULTS", "ProjectionDefaults", "accuracy_figure", "accuracy_points", "bit_budgets",
    "bits_figure", "dataset_shape", "loss_figure", "model_sizes", "projection_configs", "run_name", "size_caption",
]
