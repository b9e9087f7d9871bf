"""The ``"head_prune"`` training hook and method: prune a trained ViT's attention heads by importance
while it fine-tunes. Michel, Levy & Neubig, "Are Sixteen Heads Really Better than One?" (NeurIPS 2019):
importance I_h = E_x |dL/dxi_h| (eq. 4, ``kdviz.prune.heads``), the least important heads removed a
few at a time with importance recomputed in between (section 4.1).

Config entry (plain JSON), e.g. fine-tuning a finished ViT run (``init_from``) down by 8 heads in 4 rounds::

    {"name": "head_prune", "heads_removed": 8, "rounds": 4, "start_step": 0, "end_step": 120}

* ``heads_removed``: how many heads are gone at the end (each layer keeps one: at most L * (H - 1)).
* ``rounds``, ``start_step``, ``end_step``: the schedule. Round k of ``rounds`` (k = 1..rounds) happens at
  step ``start_step + round((k - 1) * (end_step - start_step) / max(1, rounds - 1))`` and brings the heads
  removed to ``round(k * heads_removed / rounds)``; ``end_step`` defaults to half the run, so the
  second half fine-tunes the pruned model. At each round the importance is computed on the probe set
  with the heads removed so far gated off, and the least important heads still present are removed.
* ``probe_size``: training images (the first of the run's training set) the importance is averaged over.
* ``per_example``, ``normalize_layers``: eq. 4 per example (or per batch, the released code's way) and
  the layer-wise l2 normalisation of section 4.2, off by default (``kdviz.prune.heads`` says why).
* ``order``: ``"importance"`` (the paper) or ``"random"`` (its control).

A removed head is gated off by zeroing its columns of the layer's output projection after every
optimizer step (a gate of 0, eq. 2), so the checkpoint keeps the full architecture and loads as a
plain ViT; ``shrunk_model(run)`` then removes the heads physically (``TinyViT.prune_heads``).
``state_dict`` holds the removed-heads matrix and the step each head went, so a resumed run is pruned.

Snapshot arrays (under ``"head_prune/<key>"``): ``importance`` (L, H, float32: eq. 4 on the probe set at
the snapshot, the removed heads gated off, normalised per layer when ``normalize_layers``: off by default, see
``kdviz.prune.heads``), ``normalized`` (0/1),
``removed`` (L, H, uint8), ``removed_at`` (L, H, int32: the step a head went, -1 while present),
``target`` (the final heads removed). Metrics at each evaluation: ``heads_removed``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..engine.hooks import HOOKS, TrainContext, TrainingHook, hook_options
from ..palette import ROLE_COLORS
from ..prune.heads import HEAD_ORDERS, check_removed, head_importance, heads_to_remove, removable_heads, shrink, uniform_heads
from ..prune.heads import zero_removed_heads
from .base import MethodSpec, register_method, uses_hook

NAME = "head_prune"


def _whole(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{NAME}: {name} must be a whole number >= {low}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class HeadSchedule:
    """When heads go: ``rounds`` rounds from ``start_step`` to ``end_step``, ``target`` heads removed at the end."""

    target: int
    rounds: int
    start_step: int
    end_step: int

    def __post_init__(self) -> None:
        if self.rounds > self.target:
            raise ValueError(f"{NAME}: {self.rounds} rounds cannot each remove a head when only {self.target} go; "
                             f"use at most {self.target} rounds")
        if self.rounds > 1 and self.end_step <= self.start_step:
            raise ValueError(f"{NAME}: end_step ({self.end_step}) must come after start_step ({self.start_step})")

    def round_steps(self) -> list[int]:
        """The step of each round, in order."""
        span = self.end_step - self.start_step
        return [self.start_step + round(k * span / max(1, self.rounds - 1)) for k in range(self.rounds)]

    def removed_after(self, step: int) -> int:
        """Heads removed once the rounds due by ``step`` have happened."""
        done = sum(1 for s in self.round_steps() if s <= step)
        return round(done * self.target / self.rounds)


@HOOKS.register(NAME)
class HeadPruneHook(TrainingHook):
    """Removes the least important attention heads on a schedule (Michel et al. 2019) while fine-tuning."""

    def __init__(self, heads_removed: int = 4, rounds: int = 4, start_step: int = 0, end_step: int | None = None,
                 probe_size: int = 256, per_example: bool = True, normalize_layers: bool = False,
                 order: str = "importance", seed: int = 0) -> None:
        self.target = _whole("heads_removed", heads_removed, 1)
        self.rounds = _whole("rounds", rounds, 1)
        self.start_step = _whole("start_step", start_step, 0)
        self.end_step = None if end_step is None else _whole("end_step", end_step, 0)
        self.probe_size = _whole("probe_size", probe_size, 1)
        if order not in HEAD_ORDERS:
            raise ValueError(f"{NAME}: order must be one of {HEAD_ORDERS}, got {order!r}")
        for name, flag in (("per_example", per_example), ("normalize_layers", normalize_layers)):
            if not isinstance(flag, bool):
                raise ValueError(f"{NAME}: {name} must be true or false, got {flag!r}")
        self.per_example, self.normalize_layers, self.order = per_example, normalize_layers, order
        self.seed = _whole("seed", seed, 0)
        HeadSchedule(self.target, self.rounds, self.start_step, self.end_step if self.end_step is not None else self.start_step + 1)
        self.removed: torch.Tensor | None = None
        self.removed_at: torch.Tensor | None = None
        self._pending: dict[str, torch.Tensor] | None = None

    def setup(self, ctx: TrainContext) -> None:
        shape = uniform_heads(ctx.model)
        if self.target > removable_heads(shape):
            raise ValueError(f"{NAME}: heads_removed={self.target} is more than this ViT can lose "
                             f"({shape[0]} layers x {shape[1]} heads, each layer keeps one: at most {removable_heads(shape)})")
        end = self.end_step if self.end_step is not None else max(self.start_step + 1, ctx.total_steps // 2)
        self.schedule = HeadSchedule(self.target, self.rounds, self.start_step, end)
        images = torch.as_tensor(ctx.dataset.train_images[:self.probe_size], dtype=torch.float32)
        self._probe = (images.to(ctx.device), torch.as_tensor(ctx.dataset.train_labels[:self.probe_size]).to(ctx.device))
        self._generator = torch.Generator().manual_seed(self.seed) if self.order == "random" else None
        self.removed = torch.zeros(shape, dtype=torch.bool)
        self.removed_at = torch.full(shape, -1, dtype=torch.int32)
        if self._pending is not None:
            self.removed = check_removed(self._pending["removed"], shape).clone()
            self.removed_at = self._pending["removed_at"].to(torch.int32).clone()
        self._prune_due(ctx)

    def importance(self, model: torch.nn.Module) -> torch.Tensor:
        """Eq. 4 on the probe set with the heads removed so far gated off, (L, H)."""
        assert self.removed is not None
        return head_importance(model, *self._probe, removed=self.removed, per_example=self.per_example,
                               normalize_layers=self.normalize_layers)

    def _prune_due(self, ctx: TrainContext) -> None:
        """Run the rounds due by this step (importance recomputed before each) and zero the removed heads."""
        assert self.removed is not None and self.removed_at is not None
        want = self.schedule.removed_after(ctx.step)
        while int(self.removed.sum()) < want:
            before = self.removed.clone()
            self.removed = heads_to_remove(self.importance(ctx.model), self.removed,
                                           want - int(self.removed.sum()), self._generator)
            self.removed_at[self.removed & ~before] = int(ctx.step)
            if bool((self.removed == before).all()):
                break
        zero_removed_heads(ctx.model, self.removed)

    def after_step(self, ctx: TrainContext) -> None:
        self._prune_due(ctx)

    def metrics(self, ctx: TrainContext) -> dict[str, float]:
        return {"heads_removed": float(self.removed.sum()) if self.removed is not None else 0.0}

    def snapshot(self, ctx: TrainContext) -> dict[str, np.ndarray]:
        assert self.removed is not None and self.removed_at is not None
        return {"importance": self.importance(ctx.model).numpy().astype(np.float32),
                "removed": self.removed.numpy().astype(np.uint8),
                "removed_at": self.removed_at.numpy().astype(np.int32),
                "target": np.asarray(self.target, dtype=np.int32),
                "normalized": np.asarray(self.normalize_layers, dtype=np.uint8)}

    def state_dict(self) -> dict[str, torch.Tensor]:
        if self.removed is None or self.removed_at is None:
            return {}
        return {"removed": self.removed.clone(), "removed_at": self.removed_at.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self._pending = dict(state) if state else None


@dataclass(frozen=True)
class HeadPruneSnapshot:
    """One snapshot of the ``head_prune`` hook: the importance matrix (layers x heads, eq. 4), which heads
    are removed and at which step each went (-1: present), and the final number to remove."""

    importance: np.ndarray
    removed: np.ndarray
    removed_at: np.ndarray
    target: int
    normalized: bool = False  # rows divided by their l2 norm (section 4.2)

    @property
    def heads_removed(self) -> int:
        return int(self.removed.sum())

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.importance.shape)  # type: ignore[return-value]


def read_head_prune_snapshot(arrays: Mapping[str, np.ndarray], label: str) -> HeadPruneSnapshot:
    """The typed reader of the ``head_prune`` hook's arrays stored under ``label`` (``""``: its own dict)."""
    pre = f"{label}/" if label else ""
    if f"{pre}importance" not in arrays or f"{pre}removed" not in arrays:
        raise ValueError(f"these snapshot arrays hold no head importance under {pre!r} "
                         f"(was the {NAME!r} hook in the run config?)")
    return HeadPruneSnapshot(np.asarray(arrays[f"{pre}importance"], dtype=np.float32),
                             np.asarray(arrays[f"{pre}removed"]).astype(bool),
                             np.asarray(arrays[f"{pre}removed_at"]).astype(np.int64), int(arrays[f"{pre}target"]),
                             bool(arrays[f"{pre}normalized"]) if f"{pre}normalized" in arrays else False)


def _target(config: Any) -> int:
    entries = [h for h in (getattr(config, "hooks", None) or []) if h.get("name") == NAME]
    default = hook_options(HeadPruneHook)["heads_removed"].default
    return int(entries[0].get("heads_removed", default)) if entries else int(default)


def head_prune_hook(heads_removed: int, rounds: int, start_step: int = 0, end_step: int | None = None,
                    **options: Any) -> dict[str, Any]:
    """The hook's config entry (checked when the config is validated)."""
    return {"name": NAME, "heads_removed": int(heads_removed), "rounds": int(rounds), "start_step": int(start_step),
            "end_step": None if end_step is None else int(end_step), **options}


def shrunk_model(model: torch.nn.Module, snapshot: HeadPruneSnapshot) -> torch.nn.Module:
    """A copy of a head-pruned run's model (its gated weights) with the removed heads taken out physically."""
    return shrink(model, snapshot.removed)


HEAD_PRUNE = register_method(MethodSpec(
    name=NAME, label="heads pruned", colour=ROLE_COLORS["head-pruned"],
    summary="remove the attention heads whose gate gradient E|dL/dxi_h| is smallest, a few at a time, while "
            "fine-tuning (Michel et al. 2019, eq. 4)",
    hook=HeadPruneHook, loss="ce", claims=uses_hook(NAME), priority=45,
    label_run=lambda config: f"{_target(config)} heads pruned", reader=read_head_prune_snapshot,
    widgets={"HeadPruningMonitor": "vit_heads"},
))
