"""The ``"movement"`` training hook and method: movement pruning while fine-tuning a trained model.

Sanh, Wolf, Rush, "Movement Pruning: Adaptive Sparsity by Fine-Tuning" (NeurIPS 2020), section 3
(maths in ``kdviz.prune.movement``). Config entry (plain JSON), e.g. hard movement to 90 % on the
cubic schedule of Zhu & Gupta (2017, eq. 1), as the paper does (its section 5 "cubic sparsity
scheduling")::

    {"name": "movement", "sparsity": 0.9, "mode": "hard", "start_step": 0, "end_step": 600,
     "frequency": 1, "score_lr": 0.01}

* ``mode="hard"``: M = Top_v(S) with v = 1 - s_t, s_t the cubic schedule's sparsity at step t; the
  mask is recomputed from the scores after every step (scores move every step).
* ``mode="soft"``: M = 1(sigmoid(S) > tau_t), tau_t rising on the same cubic ramp from 0 to
  ``threshold``, with the penalty ``penalty`` * sum sigmoid(S) on the scores; the sparsity is what the
  scores give (``sparsity`` is then unused by this hook; the magnitude twin still uses it).
* ``score_lr``: alpha_S of the score update S -= alpha_S * dL/dW' * W (plain gradient descent).

``movement_configs`` builds a movement run beside a magnitude-pruned twin (the ``prune`` hook on
the same cubic schedule, same data, steps and seed) fine-tuning the same finished run.

Snapshot arrays (stored under ``"movement/<key>"``): ``layers``; ``sparsity``, ``target``,
``weights`` and ``agreement`` (share of the weights movement keeps that magnitude pruning at the
same count would keep) per layer; per layer a fixed random sample of at most ``scatter_points``
weights: ``abs_weight/<layer>``, ``score/<layer>``, ``kept/<layer>`` (movement's mask) and
``magnitude_kept/<layer>`` (magnitude's mask at the same count, on the same weights).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from ..engine.config import TrainConfig
from ..engine.hooks import HOOKS, TrainContext, TrainingHook, validate_hook_spec
from ..engine.setup import steps_per_epoch
from ..palette import ROLE_COLORS
from ..prune.magnitude import check_sparsity
from ..prune.masks import layer_name
from ..prune.movement import MODES, MovementPruner, magnitude_agreement
from ..prune.schedule import agp_sparsity
from .base import MethodSpec, register_method, uses_hook
from .prune import PRUNE, prune_hook

NAME = "movement"


def _whole(value: Any, what: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"movement: {what} must be a whole number >= {least}, got {value!r}")
    return value


def _positive_float(value: Any, what: str, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"movement: {what} must be a finite number {'>=' if allow_zero else '>'} 0, got {value!r}")
    return float(value)


@HOOKS.register(NAME)
class MovementHook(TrainingHook):
    """Hard or soft movement pruning (Sanh et al. 2020) on the cubic schedule, scores by plain SGD."""

    def __init__(self, sparsity: float = 0.9, mode: str = "hard", start_step: int = 0, end_step: int | None = None,
                 frequency: int = 1, score_lr: float = 0.01, threshold: float = 0.5, penalty: float = 0.0,
                 layers: list[str] | None = None, scatter_points: int = 400, seed: int = 0) -> None:
        MODES.get(mode)
        self.sparsity = check_sparsity(sparsity)
        threshold = _positive_float(threshold, "threshold", allow_zero=True)
        if threshold >= 1.0:
            raise ValueError(f"movement: threshold (on sigmoid(score)) must be in [0, 1), got {threshold}")
        self.mode, self.threshold = mode, threshold
        self.start_step, self.frequency = _whole(start_step, "start_step", 0), _whole(frequency, "frequency", 1)
        self.end_step = None if end_step is None else _whole(end_step, "end_step", self.start_step + 1)
        self.score_lr = _positive_float(score_lr, "score_lr")
        self.penalty = _positive_float(penalty, "penalty", allow_zero=True)
        self.layers, self.scatter_points, self.seed = layers, _whole(scatter_points, "scatter_points", 1), int(seed)
        self.pruner: MovementPruner | None = None
        self._pending: dict[str, torch.Tensor] | None = None
        self._sample: dict[str, np.ndarray] = {}

    def setup(self, ctx: TrainContext) -> None:
        names = None if self.layers is None else [n if n.endswith(".weight") else f"{n}.weight" for n in self.layers]
        self.pruner = MovementPruner(ctx.model, names, self.mode)
        self.end = self.end_step if self.end_step is not None else max(self.start_step + 1, round(0.75 * ctx.total_steps))
        rng = np.random.default_rng(self.seed)  # a fixed sample of weights per layer for the scatter
        for n, w in self.pruner.latent.items():
            count = w.numel()
            self._sample[n] = np.sort(rng.choice(count, size=min(count, self.scatter_points), replace=False))
        if self._pending is not None:
            self.pruner.load_state_dict(self._pending)
            self._pending = None
        self._remask(ctx)

    def target_at(self, step: int) -> float:
        """The cubic schedule's sparsity at ``step`` (hard) or threshold tau (soft)."""
        final = self.sparsity if self.mode == "hard" else self.threshold
        return agp_sparsity(step, 0.0, final, self.start_step, self.end, self.frequency)

    def _remask(self, ctx: TrainContext) -> None:
        target = self.target_at(ctx.step)
        if self.mode == "hard":
            self.pruner.remask(sparsity=target)
        else:
            self.pruner.remask(threshold=target)
        self.pruner.apply(ctx.model)

    def after_step(self, ctx: TrainContext) -> None:
        self.pruner.accumulate(ctx.model, self.score_lr, self.penalty if self.mode == "soft" else 0.0)
        self._remask(ctx)

    def _agreements(self) -> dict[str, float]:
        return {n: magnitude_agreement(self.pruner.latent[n].abs().cpu().numpy(), self.pruner.masks[n].cpu().numpy())
                for n in self.pruner.names}

    def metrics(self, ctx: TrainContext) -> dict[str, float]:
        masks = self.pruner.masks
        out = {"sparsity": masks.overall_sparsity(), "target": float(self.target_at(ctx.step))}
        out.update({f"sparsity/{layer_name(n)}": s for n, s in masks.sparsity().items()})
        kept = {n: int(masks[n].sum()) for n in self.pruner.names}
        agree = self._agreements()
        out["agreement"] = sum(agree[n] * kept[n] for n in kept) / max(1, sum(kept.values()))
        return out

    def snapshot(self, ctx: TrainContext) -> dict[str, np.ndarray]:
        names, masks = self.pruner.names, self.pruner.masks
        sparsity = masks.sparsity()
        agree = self._agreements()
        arrays: dict[str, np.ndarray] = {
            "layers": np.asarray([layer_name(n) for n in names]),
            "sparsity": np.asarray([sparsity[n] for n in names], dtype=np.float64),
            "target": np.asarray([self.target_at(ctx.step)] * len(names), dtype=np.float64),
            "weights": np.asarray([self.pruner.latent[n].numel() for n in names], dtype=np.int64),
            "agreement": np.asarray([agree[n] for n in names], dtype=np.float64),
        }
        for n in names:
            layer, pick = layer_name(n), self._sample[n]
            abs_w = self.pruner.latent[n].abs().flatten().cpu().numpy()
            kept = masks[n].flatten().cpu().numpy()
            by_magnitude = np.zeros_like(kept)
            by_magnitude[np.argsort(-abs_w, kind="stable")[: int(kept.sum())]] = True
            arrays[f"abs_weight/{layer}"] = abs_w[pick].astype(np.float32)
            arrays[f"score/{layer}"] = self.pruner.scores[n].flatten().cpu().numpy()[pick].astype(np.float32)
            arrays[f"kept/{layer}"] = kept[pick].astype(np.uint8)
            arrays[f"magnitude_kept/{layer}"] = by_magnitude[pick].astype(np.uint8)
        return arrays

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {} if self.pruner is None else self.pruner.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if self.pruner is None:  # before setup: keep it until the model is known
            self._pending = dict(state)
        else:
            self.pruner.load_state_dict(state)


@dataclass(frozen=True)
class MovementLayer:
    """One layer in a snapshot: sparsity, agreement with magnitude, and the sampled weights' |W|,
    score, and whether movement (``kept``) and magnitude at the same count (``magnitude_kept``) keep them."""

    name: str
    sparsity: float
    agreement: float
    abs_weight: np.ndarray
    score: np.ndarray
    kept: np.ndarray
    magnitude_kept: np.ndarray


@dataclass(frozen=True)
class MovementSnapshot:
    """One snapshot of the ``movement`` hook: per layer (in ``layers`` order) and overall."""

    layers: list[MovementLayer]
    target: float
    weights: np.ndarray

    @property
    def names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def layer(self, name: str) -> MovementLayer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"layer {name!r} is not pruned by movement in this run (pruned: {self.names})")

    def overall_sparsity(self) -> float:
        w = self.weights.astype(np.float64)
        return float(sum(layer.sparsity * n for layer, n in zip(self.layers, w)) / w.sum()) if w.sum() else 0.0


def read_movement_snapshot(arrays: Mapping[str, np.ndarray], label: str = NAME) -> MovementSnapshot:
    """The typed reader of the ``movement`` hook's arrays stored under ``label`` (``""``: unprefixed)."""
    pre = f"{label}/" if label else ""
    if f"{pre}layers" not in arrays:
        raise ValueError(f"this snapshot has no movement-pruning arrays under {pre!r} (was the {NAME!r} hook in the run config?)")
    get = lambda key: np.asarray(arrays[f"{pre}{key}"])  # noqa: E731
    names = [str(x) for x in get("layers").tolist()]
    layers = [MovementLayer(name, float(get("sparsity")[j]), float(get("agreement")[j]), get(f"abs_weight/{name}"),
                            get(f"score/{name}"), get(f"kept/{name}").astype(bool),
                            get(f"magnitude_kept/{name}").astype(bool)) for j, name in enumerate(names)]
    target = get("target")
    return MovementSnapshot(layers, float(target[0]) if target.size else 0.0, get("weights").astype(np.int64))


def movement_hook(sparsity: float, mode: str = "hard", **options: Any) -> dict:
    """The config entry of the ``movement`` hook, checked now (a bad option is a ``ValueError`` here)."""
    entry = {"name": NAME, "sparsity": float(sparsity), "mode": mode, **options}
    validate_hook_spec(entry)
    return entry


def movement_configs(fine_tune: TrainConfig, sparsity: float, mode: str = "hard", score_lr: float = 0.01,
                     frequency: int = 1, warmup: float = 0.0, **options: Any) -> dict[str, TrainConfig]:
    """Movement pruning beside magnitude pruning at the same cubic schedule, by job name (the specs' labels).

    ``fine_tune`` is the run config of the fine-tuning (``init_from`` a finished run, epochs, lr,
    cadence) with no pruning hook; both runs get the ramp from ``warmup`` (a share of the steps: the
    scores accumulate before anything is pruned, Sanh et al.'s "initial warmup") to 75 % of the steps,
    pruning every ``frequency`` steps, so their sparsity curves coincide (hard mode) and only the choice differs."""
    if fine_tune.init_from is None:
        raise ValueError("movement pruning fine-tunes a trained model: set 'init_from' to a finished run's folder")
    if isinstance(warmup, bool) or not isinstance(warmup, (int, float)) or not 0.0 <= warmup < 0.75:
        raise ValueError(f"warmup is the share of steps before pruning starts, in [0, 0.75); got {warmup!r}")
    steps = fine_tune.max_steps or fine_tune.epochs * steps_per_epoch(fine_tune)
    end = max(1, round(0.75 * steps))
    ramp = {"start_step": min(round(warmup * steps), end - 1), "end_step": end, "frequency": int(frequency)}
    moving = movement_hook(sparsity, mode, score_lr=float(score_lr), **ramp, **options)
    magnitude = prune_hook(float(sparsity), "layer", "agp", **ramp)
    base_hooks = [h for h in fine_tune.hooks if h.get("name") not in (NAME, PRUNE.name)]
    return {MOVEMENT.label: replace(fine_tune, hooks=[*base_hooks, moving], name=f"{fine_tune.name}-movement").validate(),
            PRUNE.label: replace(fine_tune, hooks=[*base_hooks, magnitude], name=f"{fine_tune.name}-magnitude").validate()}


def _label_run(config: Any) -> str:
    spec = next(h for h in config.hooks if h.get("name") == NAME)
    mode = spec.get("mode", "hard")
    return f"movement ({mode}) to {spec.get('sparsity', 0.9):.0%}" if mode == "hard" else "movement (soft)"


MOVEMENT = register_method(MethodSpec(
    name=NAME, label="movement-pruned fine-tune", colour=ROLE_COLORS["movement"],
    summary="movement pruning: keep the weights fine-tuning moves away from zero, scores S -= dL/dW * W "
            "(Sanh, Wolf, Rush 2020, section 3)",
    hook=MovementHook, claims=uses_hook(NAME), priority=41, label_run=_label_run, reader=read_movement_snapshot,
    pages=(), widgets={"MovementMonitor": "movement"},
))
