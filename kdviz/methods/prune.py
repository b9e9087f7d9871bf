"""The ``"prune"`` training hook and method: magnitude pruning on a schedule, inside the one engine.

Han, Pool, Tran, Dally 2015 (prune by magnitude, fine-tune); Zhu & Gupta 2017 (the AGP schedule, eq. 1).

Config entry (plain JSON), e.g. gradual pruning of a trained model (``init_from``) to 90%::

    {"name": "prune", "sparsity": 0.9, "scope": "layer", "schedule": "agp",
     "start_step": 0, "end_step": 600, "frequency": 50, "l1": 0.0}

* ``sparsity``: the final target, a float in [0, 1) or (``scope="layer"``) a dict per layer
  (``{"fc1": 0.92, "fc2": 0.91, "fc3": 0.74}``).
* ``scope``: ``"layer"`` (each layer to its target) or ``"global"`` (one magnitude cut over all).
* ``schedule``: ``"one-shot"`` (prune at ``start_step``, then fine-tune) or ``"agp"`` (Zhu & Gupta
  2017's cubic ramp from ``initial_sparsity`` at ``start_step`` to the target at ``end_step``, every
  ``frequency`` steps; ``end_step`` defaults to 75% of the run, ``frequency`` to a tenth of the ramp).
* ``l1``: weight of an L1 penalty on the prunable weights (0 = off).
* ``layers``: restrict pruning to these layers (default: every Linear and Conv2d weight).
* ``allow_empty``: ``false`` (default) refuses a target that prunes a layer whole (the layer would
  output only its bias; ``kdviz.prune.magnitude``, "Emptied layers"). ``scope="layer"``: checked
  exactly at the start of the run (s >= 1 - 0.5/n empties a layer of n weights), so the run fails
  at once with a message naming the layers, before any step. ``scope="global"``: the cut depends on
  the weights, so the start checks the final target on the starting weights (the trained model of
  ``init_from``) and refuses the same way; should the weights drift so that a later pruning step of
  the ramp would still empty a layer, that step stops the run with the same message rather than
  train a silently broken network (the run's records so far are kept). ``true``: prune anyway.

After every optimizer step the masks are re-applied, so pruned weights stay exactly zero.
``state_dict`` holds the masks, so a resumed run is still pruned. Snapshot arrays (stored by the
engine under ``"prune/<key>"``): ``layers`` (names); ``sparsity``, ``threshold``, ``target`` and
``weights`` (count), one entry per layer in that order; ``mask/<layer>`` (uint8 percent of weights
kept per cell: 0 or 100 at full resolution, a block average when the matrix is larger than
``mask_max_side``, the block size in ``mask_block/<layer>``); ``hist/<layer>`` + ``edges/<layer>``
(histogram of the surviving weights). ``threshold`` is the smallest surviving |w| at the last
pruning step (the magnitude cut).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from ..engine.hooks import HOOKS, StepBatch, TrainContext, TrainingHook, validate_hook_spec
from ..palette import ROLE_COLORS
from ..prune.magnitude import SCOPES, check_sparsity, kept_magnitude_threshold, layers_emptied, magnitude_masks
from ..prune.masks import PruningMasks, downsample_mask, layer_name, prunable_weights
from ..prune.penalty import l1_penalty
from ..prune.schedule import SCHEDULES, build_schedule
from .base import MethodSpec, PageSpec, register_method, uses_hook


@HOOKS.register("prune")
class PruneHook(TrainingHook):
    """Magnitude pruning on a one-shot or AGP schedule, optional L1 penalty, masks kept every step."""

    def __init__(
        self, sparsity: float | Mapping[str, float] = 0.9, scope: str = "layer", schedule: str = "agp",
        start_step: int = 0, end_step: int | None = None, frequency: int | None = None,
        initial_sparsity: float = 0.0, l1: float = 0.0, layers: list[str] | None = None,
        mask_max_side: int = 128, histogram_bins: int = 60, allow_empty: bool = False,
    ) -> None:
        SCOPES.get(scope)
        SCHEDULES.get(schedule)
        if isinstance(sparsity, Mapping):
            if scope == "global":
                raise ValueError("scope 'global' takes one sparsity for all layers, not a dict per layer")
            self.targets = {str(k): check_sparsity(v, f"sparsity of {k!r}") for k, v in sparsity.items()}
        else:
            self.targets = check_sparsity(sparsity)
        check_sparsity(initial_sparsity, "initial_sparsity")
        if isinstance(l1, bool) or not isinstance(l1, (int, float)) or not math.isfinite(l1) or l1 < 0:
            raise ValueError(f"l1 must be a finite number >= 0, got {l1!r}")
        for name, value in (("start_step", start_step), ("mask_max_side", mask_max_side), ("histogram_bins", histogram_bins)):
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "start_step" else 1):
                raise ValueError(f"{name} must be a {'non-negative' if name == 'start_step' else 'positive'} integer, got {value!r}")
        if not isinstance(allow_empty, bool):
            raise ValueError(f"allow_empty must be true or false, got {allow_empty!r}")
        self.scope, self.schedule_name, self.l1, self.allow_empty = scope, schedule, float(l1), allow_empty
        self.start_step, self.end_step, self.frequency = start_step, end_step, frequency
        self.initial_sparsity, self.layers = float(initial_sparsity), layers
        self.mask_max_side, self.histogram_bins = mask_max_side, histogram_bins
        self.masks: PruningMasks | None = None
        self.thresholds: dict[str, float] = {}
        self.current: dict[str, float] = {}
        self._pending_state: dict[str, torch.Tensor] | None = None
        self._model = None

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, ctx: TrainContext) -> None:
        self._model = ctx.model
        self.names = list(prunable_weights(ctx.model, self._param_names(ctx.model)))
        end = self.end_step if self.end_step is not None else max(self.start_step + 1, round(0.75 * ctx.total_steps))
        if self.schedule_name == "agp" and end <= self.start_step:
            raise ValueError(f"the AGP ramp needs end_step > start_step ({self.start_step}); got {end} "
                             f"(total steps {ctx.total_steps})")
        freq = self.frequency if self.frequency is not None else max(1, (end - self.start_step) // 10)
        finals = self.targets if isinstance(self.targets, dict) else {n: self.targets for n in self.names}
        finals = {self._param_name(k): v for k, v in finals.items()}
        missing = [n for n in finals if n not in self.names]
        if missing:
            raise ValueError(f"sparsity given for layers that are not pruned: {missing} (pruned: {self.names})")
        self.schedules = {
            n: build_schedule(self.schedule_name, finals.get(n, 0.0), start_step=self.start_step, end_step=end,
                              frequency=freq, initial=min(self.initial_sparsity, finals.get(n, 0.0)))
            for n in self.names
        }
        self._refuse_emptied(ctx.model, {n: finals.get(n, 0.0) for n in self.names})
        self.masks = PruningMasks.dense(ctx.model, self.names)
        self.current = {n: 0.0 for n in self.names}
        if self._pending_state is not None:
            self.load_state_dict(self._pending_state)
        self._update(ctx.model, ctx.step)

    def _refuse_emptied(self, model, finals: dict[str, float]) -> None:
        """Before any step: a ``ValueError`` naming the layers the final target prunes whole (unless
        ``allow_empty``). Exact for ``scope="layer"``; for ``"global"`` judged on the starting weights."""
        if self.allow_empty:
            return
        if self.scope == "global":
            weights = prunable_weights(model, self.names)
            emptied = layers_emptied(weights, next(iter(finals.values()), 0.0), scope="global")
        else:
            emptied = layers_emptied(prunable_weights(model, self.names), finals, scope="layer")
        if emptied:
            sizes = ", ".join(f"{layer_name(n)} ({prunable_weights(model, [n])[n].numel()} weights)" for n in emptied)
            raise ValueError(
                f"prune: the {self.scope} target would prune every weight of {sizes}, leaving a layer that outputs "
                "only its bias. Lower the sparsity (a layer of n weights is emptied at s >= 1 - 0.5/n), prune "
                "other layers, or set allow_empty to true to prune it anyway"
            )

    def _param_names(self, model) -> list[str] | None:
        if self.layers is None:
            return [self._param_name(k) for k in self.targets] if isinstance(self.targets, dict) else None
        return [self._param_name(k) for k in self.layers]

    @staticmethod
    def _param_name(layer: str) -> str:
        return layer if layer.endswith(".weight") else f"{layer}.weight"

    # -- the schedule ---------------------------------------------------------------------------
    def target_at(self, step: int) -> dict[str, float]:
        """The scheduled sparsity of each pruned weight at ``step``."""
        return {n: s.sparsity_at(step) for n, s in self.schedules.items()}

    def _update(self, model, step: int) -> None:
        """Prune further when the schedule's target has risen; always re-apply the masks."""
        target = self.target_at(step)
        if any(target[n] > self.current[n] for n in self.names):
            spec = next(iter(target.values())) if self.scope == "global" else target
            self.masks = magnitude_masks(model, spec, scope=self.scope, previous=self.masks, names=self.names,
                                         allow_empty=self.allow_empty)
            params = prunable_weights(model, self.names)
            self.thresholds = {n: kept_magnitude_threshold(params[n], self.masks[n]) for n in self.names}
            self.current = target
        self.masks.apply(model)

    # -- training -------------------------------------------------------------------------------
    def loss_terms(self, ctx: TrainContext, batch: StepBatch) -> dict[str, torch.Tensor]:
        if self.l1 <= 0:
            return {}
        return {"l1": l1_penalty(ctx.model, self.l1, self.names)}

    def after_step(self, ctx: TrainContext) -> None:
        self._update(ctx.model, ctx.step)

    def metrics(self, ctx: TrainContext) -> dict[str, float]:
        out = {"sparsity": self.masks.overall_sparsity()}
        out.update({f"sparsity/{layer_name(n)}": s for n, s in self.masks.sparsity().items()})
        return out

    def snapshot(self, ctx: TrainContext) -> dict[str, np.ndarray]:
        params = prunable_weights(ctx.model, self.names)
        sparsity = self.masks.sparsity()
        arrays: dict[str, np.ndarray] = {
            "layers": np.asarray([layer_name(n) for n in self.names]),
            "sparsity": np.asarray([sparsity[n] for n in self.names], dtype=np.float64),
            "threshold": np.asarray([self.thresholds.get(n, 0.0) for n in self.names], dtype=np.float64),
            "target": np.asarray([self.current[n] for n in self.names], dtype=np.float64),
            "weights": np.asarray([params[n].numel() for n in self.names], dtype=np.int64),
        }
        for n in self.names:
            layer = layer_name(n)
            grid, block = downsample_mask(self.masks[n].cpu().numpy(), self.mask_max_side)
            arrays[f"mask/{layer}"] = grid
            arrays[f"mask_block/{layer}"] = np.asarray(block, dtype=np.int64)
            kept = params[n].detach()[self.masks[n]].double().cpu().numpy()
            r = float(np.abs(params[n].detach().cpu().numpy()).max()) or 1.0
            counts, edges = np.histogram(kept, bins=self.histogram_bins, range=(-r, r))
            arrays[f"hist/{layer}"], arrays[f"edges/{layer}"] = counts.astype(np.int64), edges
        return arrays

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        if self.masks is None:
            return {}
        state = {f"mask/{n}": m for n, m in self.masks.state_dict().items()}
        state["current"] = torch.tensor([self.current[n] for n in self.names], dtype=torch.float64)
        state["thresholds"] = torch.tensor([self.thresholds.get(n, 0.0) for n in self.names], dtype=torch.float64)
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if self.masks is None:  # before setup: keep it until the model is known
            self._pending_state = dict(state)
            return
        self.masks.load_state_dict({k[len("mask/"):]: v for k, v in state.items() if k.startswith("mask/")})
        if "current" in state:
            self.current = dict(zip(self.names, (float(x) for x in state["current"])))
        if "thresholds" in state:
            self.thresholds = dict(zip(self.names, (float(x) for x in state["thresholds"])))
        self._pending_state = None
        if self._model is not None:
            self.masks.apply(self._model)


@dataclass(frozen=True)
class PruneSnapshot:
    """One snapshot of the ``prune`` hook, per pruned layer (in ``layers`` order): sparsity reached,
    scheduled target, magnitude threshold and weight count; per layer the mask grid (uint8 percent
    kept per cell, ``block`` weights a cell) and the histogram of the surviving weights."""

    layers: list[str]
    sparsity: np.ndarray
    target: np.ndarray
    threshold: np.ndarray
    weights: np.ndarray
    arrays: Mapping[str, np.ndarray]
    label: str

    def mask(self, layer: str) -> tuple[np.ndarray, tuple[int, int]]:
        """(mask grid, block size) of ``layer``."""
        self._check(layer)
        block = self.arrays.get(_key(self.label, f"mask_block/{layer}"))
        grid = np.asarray(self.arrays[_key(self.label, f"mask/{layer}")])
        return grid, tuple(int(b) for b in (block if block is not None else (1, 1)))

    def histogram(self, layer: str) -> tuple[np.ndarray, np.ndarray]:
        """(counts, edges) of the surviving weights of ``layer``."""
        self._check(layer)
        return (np.asarray(self.arrays[_key(self.label, f"hist/{layer}")]),
                np.asarray(self.arrays[_key(self.label, f"edges/{layer}")]))

    def kept(self) -> int:
        """Number of weights that survive, over all pruned layers."""
        return int(round(float(((1.0 - self.sparsity) * self.weights).sum())))

    def overall_sparsity(self) -> float:
        """Pruned fraction of all prunable weights."""
        w = self.weights.astype(np.float64)
        return float((self.sparsity * w).sum() / w.sum()) if w.sum() else 0.0

    def _check(self, layer: str) -> None:
        if layer not in self.layers:
            raise ValueError(f"layer {layer!r} is not pruned in this run (pruned: {self.layers})")


def _key(label: str, key: str) -> str:
    return f"{label}/{key}" if label else key


def read_prune_snapshot(arrays: Mapping[str, np.ndarray], label: str = "prune") -> PruneSnapshot:
    """The typed reader of the ``prune`` hook's arrays stored under ``label`` (``""``: the hook's
    own arrays, unprefixed, as ``PruneHook.snapshot`` returns them)."""
    if _key(label, "layers") not in arrays:
        where = f"under {label + '/'!r}" if label else "(unprefixed)"
        raise ValueError(f"this snapshot has no pruning arrays {where} (was the prune hook in the run config?)")
    get = lambda key, kind: np.asarray(arrays[_key(label, key)], dtype=kind)  # noqa: E731
    return PruneSnapshot([str(x) for x in np.asarray(arrays[_key(label, "layers")]).tolist()], get("sparsity", np.float64),
                         get("target", np.float64), get("threshold", np.float64), get("weights", np.int64), arrays, label)


def read_prune_arrays(arrays: Mapping[str, np.ndarray]) -> PruneSnapshot:
    """The typed view of unprefixed pruning arrays: a ``PruneHook.snapshot`` before the engine files
    it under the hook's label, or a sparsity slider's (``kdviz.prune.explore.slider_arrays``)."""
    return read_prune_snapshot(arrays, "")


def prune_hook(sparsity: float | Mapping[str, float], scope: str = "layer", schedule: str = "agp",
               **options) -> dict:
    """The config entry of the ``prune`` hook (checked now: a bad option is a ``ValueError`` here,
    not when the run starts), e.g. ``prune_hook(0.9)`` for Zhu & Gupta's AGP ramp to 90%."""
    entry = {"name": "prune", "sparsity": sparsity if isinstance(sparsity, Mapping) else float(sparsity),
             "scope": scope, "schedule": schedule, **options}
    validate_hook_spec(entry)
    return entry


def _label_run(config) -> str:
    spec = next(h for h in config.hooks if h.get("name") == "prune")
    target = spec.get("sparsity", 0.9)
    return f"pruned to {target:.0%}" if isinstance(target, (int, float)) else "pruned per layer"


PRUNE = register_method(MethodSpec(
    name="prune", label="pruned fine-tune", colour=ROLE_COLORS["pruned"],
    summary="magnitude pruning while fine-tuning, one-shot or on Zhu & Gupta's AGP schedule (Han et al. 2015)",
    hook=PruneHook, claims=uses_hook("prune"), priority=40, label_run=_label_run, reader=read_prune_snapshot,
    pages=(PageSpec("pruning", "Pruning", ":material/content_cut:", order=30, section="Compression"),),
    widgets={"PruningExplorer": "pruning", "PruningMonitor": "pruning"},
))
