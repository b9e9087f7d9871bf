"""The ``"n_m"`` training hook and method: N:M semi-structured sparsity, one-shot or gradual, while fine-tuning.

Mishra et al. 2021 (NVIDIA ASP: prune a trained network to 2:4 by magnitude in one shot, then
fine-tune with the mask fixed) and Zhou et al. 2021 (N:M fine-grained sparsity, groups of M along
the input dimension). The maths is ``kdviz.prune.n_m``.

Config entry, e.g. 2:4 from a trained model (``init_from``)::

    {"name": "n_m", "n": 2, "m": 4, "schedule": "one-shot", "start_step": 0}

* ``schedule``: ``"one-shot"`` (the pattern at ``start_step``, then fine-tune: ASP) or ``"gradual"``
  (keep N_t of M, N_t stepping from M down to N as Zhu & Gupta's AGP sparsity rises to 1 - N/M
  between ``start_step`` and ``end_step``, every ``frequency`` steps; ``end_step`` defaults to 75%
  of the run, ``frequency`` to a tenth of the ramp). Weights pruned earlier stay pruned.
* ``layers``: the layers to pattern (default: every Linear/Conv2d weight whose input dimension is a
  multiple of M; the others stay dense and are named in the snapshot's ``skipped``).

Snapshot arrays (under ``"n_m/<key>"``): ``layers``, ``sparsity``, ``weights`` (per patterned layer),
``n_now`` and ``m`` (one value each), ``skipped`` (names left dense), ``block_weight/<layer>`` and
``block_mask/<layer>`` (the top-left ``block_rows`` x ``block_cols`` corner of each layer's weight
and mask, in the input-last layout the groups run along: the picture of the pattern).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from ..engine.hooks import HOOKS, TrainContext, TrainingHook, validate_hook_spec
from ..palette import ROLE_COLORS
from ..prune.masks import PruningMasks, layer_name, prunable_weights
from ..prune.n_m import check_n_m, n_at, n_m_masks
from ..prune.schedule import build_schedule
from .base import MethodSpec, register_method, uses_hook

HOOK = "n_m"
N_M_SCHEDULES = ("one-shot", "gradual")


@HOOKS.register(HOOK)
class NMHook(TrainingHook):
    """N:M masks by magnitude on a one-shot or gradual schedule, re-applied after every step."""

    def __init__(self, n: int = 2, m: int = 4, schedule: str = "one-shot", start_step: int = 0,
                 end_step: int | None = None, frequency: int | None = None, layers: list[str] | None = None,
                 block_rows: int = 8, block_cols: int = 16) -> None:
        self.n, self.m = check_n_m(n, m)
        if schedule not in N_M_SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(N_M_SCHEDULES)}, got {schedule!r}")
        for name, value, low in (("start_step", start_step, 0), ("block_rows", block_rows, 1),
                                 ("block_cols", block_cols, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        for name, value in (("end_step", end_step), ("frequency", frequency)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer or null, got {value!r}")
        if layers is not None and not all(isinstance(x, str) for x in layers):
            raise ValueError(f"layers must be a list of layer names, got {layers!r}")
        self.schedule_name, self.start_step, self.end_step, self.frequency = schedule, start_step, end_step, frequency
        self.layers, self.block_rows, self.block_cols = layers, block_rows, block_cols
        self.n_now = self.m  # dense until the schedule's first pruning step
        self.masks: PruningMasks | None = None
        self.skipped: dict[str, str] = {}
        self._pending_state: dict[str, torch.Tensor] | None = None

    def setup(self, ctx: TrainContext) -> None:
        names = None if self.layers is None else [x if x.endswith(".weight") else f"{x}.weight" for x in self.layers]
        _, self.skipped = n_m_masks(ctx.model, self.n, self.m, names)  # checks the layers now, before any step
        self.names = [n for n in prunable_weights(ctx.model, names) if n not in self.skipped]
        end = self.end_step if self.end_step is not None else max(self.start_step + 1, round(0.75 * ctx.total_steps))
        if self.schedule_name == "gradual" and end <= self.start_step:
            raise ValueError(f"the gradual N:M ramp needs end_step > start_step ({self.start_step}); got {end}")
        freq = self.frequency if self.frequency is not None else max(1, (end - self.start_step) // 10)
        final = 1.0 - self.n / self.m
        self.schedule = (build_schedule("agp", final, start_step=self.start_step, end_step=end, frequency=freq)
                         if self.schedule_name == "gradual" else build_schedule("one-shot", final, start_step=self.start_step))
        self.masks = PruningMasks.dense(ctx.model, self.names)
        if self._pending_state is not None:
            self.masks.load_state_dict({k[len("mask/"):]: v for k, v in self._pending_state.items() if k.startswith("mask/")})
            self.n_now = int(self._pending_state.get("n_now", torch.tensor(self.m)))
            self._pending_state = None
        self._update(ctx.model, ctx.step)

    def n_scheduled(self, step: int) -> int:
        """N_t: the weights kept per group of M at ``step`` (M before the first pruning step)."""
        return n_at(self.schedule.sparsity_at(step), self.n, self.m)

    def _update(self, model, step: int) -> None:
        n_t = self.n_scheduled(step)
        if n_t < self.n_now:
            self.masks, _ = n_m_masks(model, n_t, self.m, self.names, previous=self.masks)
            self.n_now = n_t
        self.masks.apply(model)

    def after_step(self, ctx: TrainContext) -> None:
        self._update(ctx.model, ctx.step)

    def metrics(self, ctx: TrainContext) -> dict[str, float]:
        return {"sparsity": self.masks.overall_sparsity(), "n_now": float(self.n_now)}

    def snapshot(self, ctx: TrainContext) -> dict[str, np.ndarray]:
        params, sparsity = prunable_weights(ctx.model, self.names), self.masks.sparsity()
        arrays = {
            "layers": np.asarray([layer_name(n) for n in self.names]),
            "sparsity": np.asarray([sparsity[n] for n in self.names], dtype=np.float64),
            "weights": np.asarray([params[n].numel() for n in self.names], dtype=np.int64),
            "n_now": np.asarray([self.n_now], dtype=np.int64), "m": np.asarray([self.m], dtype=np.int64),
            "skipped": np.asarray([layer_name(n) for n in self.skipped] or [""]),
        }
        for n in self.names:
            arrays[f"block_weight/{layer_name(n)}"] = _input_last(params[n].detach())[: self.block_rows, : self.block_cols].cpu().numpy()
            arrays[f"block_mask/{layer_name(n)}"] = _input_last(self.masks[n])[: self.block_rows, : self.block_cols].cpu().numpy()
        return arrays

    def state_dict(self) -> dict[str, torch.Tensor]:
        if self.masks is None:
            return {}
        state = {f"mask/{n}": m for n, m in self.masks.state_dict().items()}
        state["n_now"] = torch.tensor(self.n_now, dtype=torch.int64)
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if state:
            self._pending_state = dict(state)


def _input_last(tensor: torch.Tensor) -> torch.Tensor:
    """A weight (or mask) as rows of inputs, the layout N:M groups run along (conv: (out*kh*kw, in))."""
    if tensor.dim() == 4:
        return tensor.permute(0, 2, 3, 1).reshape(-1, tensor.shape[1])
    return tensor.reshape(tensor.shape[0], -1)


@dataclass(frozen=True)
class NMSnapshot:
    """One snapshot of the ``n_m`` hook: per patterned layer its sparsity and weight count, the N kept
    now of every M, the layers left dense, and per layer a corner block of weights and mask."""

    layers: list[str]
    sparsity: np.ndarray
    weights: np.ndarray
    n_now: int
    m: int
    skipped: list[str]
    arrays: Mapping[str, np.ndarray]
    label: str

    def block(self, layer: str) -> tuple[np.ndarray, np.ndarray]:
        """(weights, bool mask) of the corner block of ``layer``, inputs along the columns."""
        if layer not in self.layers:
            raise ValueError(f"layer {layer!r} has no N:M pattern in this run (patterned: {self.layers})")
        return (np.asarray(self.arrays[_key(self.label, f"block_weight/{layer}")]),
                np.asarray(self.arrays[_key(self.label, f"block_mask/{layer}")]).astype(bool))

    def overall_sparsity(self) -> float:
        w = self.weights.astype(np.float64)
        return float((self.sparsity * w).sum() / w.sum()) if w.sum() else 0.0


def _key(label: str, key: str) -> str:
    return f"{label}/{key}" if label else key


def read_n_m_snapshot(arrays: Mapping[str, np.ndarray], label: str = HOOK) -> NMSnapshot:
    """The typed reader of the ``n_m`` hook's arrays stored under ``label`` ("" for unprefixed)."""
    if _key(label, "layers") not in arrays:
        raise ValueError(f"this snapshot has no N:M arrays under {label!r} (was the n_m hook in the run?)")
    get = lambda key, kind: np.asarray(arrays[_key(label, key)], dtype=kind)  # noqa: E731
    skipped = [str(x) for x in np.asarray(arrays[_key(label, "skipped")]).tolist() if str(x)]
    return NMSnapshot([str(x) for x in np.asarray(arrays[_key(label, "layers")]).tolist()], get("sparsity", np.float64),
                      get("weights", np.int64), int(get("n_now", np.int64)[0]), int(get("m", np.int64)[0]), skipped,
                      arrays, label)


def n_m_hook(n: int = 2, m: int = 4, schedule: str = "one-shot", **options) -> dict:
    """The config entry of the ``n_m`` hook, checked now (a bad option is a ``ValueError`` here)."""
    entry = {"name": HOOK, "n": n, "m": m, "schedule": schedule, **options}
    validate_hook_spec(entry)
    return entry


def _label_run(config) -> str:
    spec = next(h for h in config.hooks if h.get("name") == HOOK)
    return f"{spec.get('n', 2)}:{spec.get('m', 4)} sparse"


N_M = register_method(MethodSpec(
    name=HOOK, label="N:M sparse", colour=ROLE_COLORS["n:m sparse"],
    summary="N:M semi-structured sparsity (keep N of every M inputs), one-shot or gradual, then fine-tune "
            "(Mishra et al. 2021; Zhou et al. 2021)",
    hook=NMHook, claims=uses_hook(HOOK), priority=42, label_run=_label_run, reader=read_n_m_snapshot,
    widgets={"NMMonitor": "lottery"},
))
