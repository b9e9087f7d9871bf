"""The ``"lottery"`` training hook and method: one round of iterative magnitude pruning with rewinding.

Frankle & Carbin 2019 (the lottery ticket: train, prune p% of the survivors, reset them to theta_0,
repeat) and Frankle et al. 2020 (rewind to theta_k, the weights after k iterations). The maths is
``kdviz.prune.lottery``; this module puts one round inside the one training engine, so a round is an
ordinary run with a live chart, a checkpoint and a resume, and the ticket search is an
``Experiment`` of rounds (``lottery_experiment``), each starting when the previous one finishes.

Config entry, e.g. round r+1 of a search whose round r is the run folder ``R``::

    {"name": "lottery", "prune_fraction": 0.2, "output_fraction": null, "scope": "layer",
     "rewind_step": 0, "reinit": false, "reinit_seed": 1}     with  init_from = R

* Without ``init_from`` the run is **round 0**: dense training that captures theta_k at step
  ``rewind_step`` (0: the initialisation) into the hook's checkpoint state.
* With ``init_from`` (a finished round of the search) the run is **round r+1**: at setup the mask is
  the previous mask pruned by ``prune_fraction`` of its survivors, judged on the previous round's
  trained weights (``output_fraction`` for the output layer: default p/2 as Frankle & Carbin, 0 keeps
  it dense as open_lth); then the survivors are reset to theta_k (``reinit: false``, the ticket) or to
  a fresh initialisation drawn with ``reinit_seed`` (``reinit: true``, Frankle & Carbin's random
  re-initialisation control, same mask); the mask is re-applied after every optimizer step.
* ``scope``: ``"layer"`` (Frankle & Carbin) or ``"global"`` (one cut over all but the output layer).

Live: at every evaluation the hook computes the mask the *next* round would take from the weights as
they are now and reports its Jaccard overlap with the one of the previous evaluation
(``candidate_overlap``: near 1 once the ticket's mask has settled; You et al. 2020's "early-bird"
signal); ``round_overlap`` is the Jaccard of this round's mask with the previous round's (the masks
nest, so it is the share kept, about 1 - p: a check, not news). Snapshot arrays (under
``"lottery/<key>"``): ``layers``, ``sparsity``, ``weights``, ``candidate_overlap`` (per layer),
``round`` and ``reinit`` (one value each), ``mask/<layer>`` (uint8 percent kept per cell).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..engine.hooks import HOOKS, TrainContext, TrainingHook, labels_of_hook, validate_hook_spec
from ..engine.run_folder import load_checkpoint, read_config
from ..palette import ROLE_COLORS
from ..prune.lottery import (
    LOTTERY_SCOPES, capture_weights, check_fraction, mask_overlap, next_ticket_masks, random_reinit, rewind,
)
from ..prune.masks import PruningMasks, downsample_mask, layer_name, prunable_weights
from .base import MethodSpec, PageSpec, register_method, uses_hook

HOOK = "lottery"


@HOOKS.register(HOOK)
class LotteryHook(TrainingHook):
    """One IMP round: dense round 0 capturing theta_k, or a pruned round rewound (or re-initialised)."""

    def __init__(self, prune_fraction: float = 0.2, output_fraction: float | None = None, scope: str = "layer",
                 rewind_step: int = 0, reinit: bool = False, reinit_seed: int = 1, mask_max_side: int = 64) -> None:
        self.prune_fraction = check_fraction(prune_fraction, "prune_fraction")
        self.output_fraction = None if output_fraction is None else check_fraction(
            output_fraction, "output_fraction", allow_zero=True)
        if scope not in LOTTERY_SCOPES:
            raise ValueError(f"scope must be one of {', '.join(LOTTERY_SCOPES)}, got {scope!r}")
        for name, value, low in (("rewind_step", rewind_step, 0), ("reinit_seed", reinit_seed, 0),
                                 ("mask_max_side", mask_max_side, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if not isinstance(reinit, bool):
            raise ValueError(f"reinit must be true or false, got {reinit!r}")
        self.scope, self.rewind_step, self.reinit, self.reinit_seed = scope, rewind_step, reinit, reinit_seed
        self.mask_max_side = mask_max_side
        self.round = 0
        self.masks: PruningMasks | None = None
        self.previous_masks: PruningMasks | None = None
        self.rewind_weights: dict[str, torch.Tensor] | None = None
        self._candidate: PruningMasks | None = None
        self._candidate_overlap: dict[str, float] = {}
        self._pending_state: dict[str, torch.Tensor] | None = None
        self._model = None

    # -- setup ----------------------------------------------------------------------------------
    def setup(self, ctx: TrainContext) -> None:
        self._model = ctx.model
        self.names = list(prunable_weights(ctx.model))
        if self._pending_state is not None:  # a resume: the checkpoint says where the round stood
            self._restore(self._pending_state)
            self._pending_state = None
        elif ctx.config.init_from:
            self._start_round(ctx)
        else:
            if self.reinit:
                raise ValueError("lottery: reinit (the random re-initialisation control) needs init_from, the "
                                 "round whose mask it reuses; round 0 is the dense network")
            self.masks = PruningMasks.dense(ctx.model)
            if self.rewind_step == 0:
                self.rewind_weights = capture_weights(ctx.model)
        self.masks.apply(ctx.model)

    def _start_round(self, ctx: TrainContext) -> None:
        """Round r+1: prune the previous round's trained weights (now in the model), then rewind or re-init."""
        state = previous_round_state(ctx.config.init_from)
        if not any(k.startswith("rewind/") for k in state):
            raise ValueError(f"lottery: the round in {ctx.config.init_from} never reached rewind_step, so it holds no "
                             "weights to rewind to; let it train past rewind_step first")
        self.round = int(state["round"]) + 1 if "round" in state else 1
        self.rewind_weights = {k[len("rewind/"):]: v for k, v in state.items() if k.startswith("rewind/")}
        prev = {k[len("mask/"):]: v for k, v in state.items() if k.startswith("mask/")}
        self.previous_masks = PruningMasks(prev) if prev else PruningMasks.dense(ctx.model)
        self.masks = next_ticket_masks(ctx.model, self.previous_masks, self.prune_fraction, self.output_fraction,
                                       self.scope)
        if self.reinit:
            random_reinit(ctx.model, self.reinit_seed, self.masks)
        else:
            rewind(ctx.model, {k: v.to(ctx.device) for k, v in self.rewind_weights.items()}, self.masks)

    # -- training -------------------------------------------------------------------------------
    def after_step(self, ctx: TrainContext) -> None:
        self.masks.apply(ctx.model)
        if self.rewind_weights is None and ctx.step >= self.rewind_step:
            self.rewind_weights = capture_weights(ctx.model)

    def _next_candidate(self, model) -> dict[str, float]:
        """The mask the next round would take now, and its overlap with the previous evaluation's."""
        candidate = next_ticket_masks(model, self.masks, self.prune_fraction, self.output_fraction, self.scope)
        if self._candidate is not None:
            overlap = mask_overlap(self._candidate, candidate)
            self._candidate_overlap = {"all": overlap.jaccard, **overlap.per_layer_jaccard}
        self._candidate = candidate
        return self._candidate_overlap

    def metrics(self, ctx: TrainContext) -> dict[str, float]:
        out = {"round": float(self.round), "sparsity": self.masks.overall_sparsity(), "reinit": float(self.reinit)}
        overlap = self._next_candidate(ctx.model)
        if overlap:
            out["candidate_overlap"] = overlap["all"]
        if self.previous_masks is not None:
            out["round_overlap"] = mask_overlap(self.previous_masks, self.masks).jaccard
        return out

    def snapshot(self, ctx: TrainContext) -> dict[str, np.ndarray]:
        sparsity, params = self.masks.sparsity(), prunable_weights(ctx.model)
        overlap = self._candidate_overlap
        arrays = {
            "layers": np.asarray([layer_name(n) for n in self.names]),
            "sparsity": np.asarray([sparsity[n] for n in self.names], dtype=np.float64),
            "weights": np.asarray([params[n].numel() for n in self.names], dtype=np.int64),
            "candidate_overlap": np.asarray([overlap.get(n, np.nan) for n in self.names], dtype=np.float64),
            "round": np.asarray([self.round], dtype=np.int64),
            "reinit": np.asarray([int(self.reinit)], dtype=np.int64),
        }
        for n in self.names:
            arrays[f"mask/{layer_name(n)}"] = downsample_mask(self.masks[n].cpu().numpy(), self.mask_max_side)[0]
        return arrays

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        if self.masks is None:
            return {}
        state = {f"mask/{n}": m for n, m in self.masks.state_dict().items()}
        if self.previous_masks is not None:
            state.update({f"previous/{n}": m for n, m in self.previous_masks.state_dict().items()})
        if self.rewind_weights is not None:
            state.update({f"rewind/{k}": v.detach().cpu().clone() for k, v in self.rewind_weights.items()})
        state["round"] = torch.tensor(self.round, dtype=torch.int64)
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if state:
            self._pending_state = dict(state)

    def _restore(self, state: Mapping[str, torch.Tensor]) -> None:
        self.masks = PruningMasks({k[len("mask/"):]: v for k, v in state.items() if k.startswith("mask/")})
        prev = {k[len("previous/"):]: v for k, v in state.items() if k.startswith("previous/")}
        self.previous_masks = PruningMasks(prev) if prev else None
        rewound = {k[len("rewind/"):]: v for k, v in state.items() if k.startswith("rewind/")}
        self.rewind_weights = rewound or None
        self.round = int(state.get("round", torch.tensor(0)))


def previous_round_state(run_folder: str | Path) -> dict[str, torch.Tensor]:
    """The ``lottery`` hook's checkpoint state of a round's run folder; a ``ValueError`` when that run
    is not a lottery round or has no checkpoint yet."""
    folder = Path(run_folder)
    labels = labels_of_hook(list(read_config(folder).hooks), HOOK)
    if not labels:
        raise ValueError(f"lottery: init_from {folder} is not a round of a lottery-ticket search (its config has "
                         "no 'lottery' hook); start with a round 0 run")
    checkpoint = load_checkpoint(folder)
    return dict(checkpoint.get("hooks", {}).get(labels[0], {}))


@dataclass(frozen=True)
class LotterySnapshot:
    """One snapshot of a lottery round: per layer (``layers`` order) the sparsity, weight count and
    the overlap of the next round's candidate mask with the previous evaluation's; the round number,
    whether it is the random re-init control, and per layer the mask grid."""

    layers: list[str]
    sparsity: np.ndarray
    weights: np.ndarray
    candidate_overlap: np.ndarray
    round: int
    reinit: bool
    arrays: Mapping[str, np.ndarray]
    label: str

    def mask(self, layer: str) -> np.ndarray:
        if layer not in self.layers:
            raise ValueError(f"layer {layer!r} is not in this run (layers: {self.layers})")
        return np.asarray(self.arrays[_key(self.label, f"mask/{layer}")])

    def kept_fraction(self) -> float:
        """Share of all prunable weights that survive."""
        w = self.weights.astype(np.float64)
        return float(((1.0 - self.sparsity) * w).sum() / w.sum()) if w.sum() else 1.0


def _key(label: str, key: str) -> str:
    return f"{label}/{key}" if label else key


def read_lottery_snapshot(arrays: Mapping[str, np.ndarray], label: str = HOOK) -> LotterySnapshot:
    """The typed reader of the ``lottery`` hook's arrays stored under ``label`` ("" for unprefixed)."""
    if _key(label, "layers") not in arrays:
        raise ValueError(f"this snapshot has no lottery-ticket arrays under {label!r} (was the lottery hook in the run?)")
    get = lambda key, kind: np.asarray(arrays[_key(label, key)], dtype=kind)  # noqa: E731
    return LotterySnapshot([str(x) for x in np.asarray(arrays[_key(label, "layers")]).tolist()],
                           get("sparsity", np.float64), get("weights", np.int64), get("candidate_overlap", np.float64),
                           int(get("round", np.int64)[0]), bool(get("reinit", np.int64)[0]), arrays, label)


def lottery_hook(prune_fraction: float = 0.2, rewind_step: int = 0, reinit: bool = False, **options) -> dict:
    """The config entry of the ``lottery`` hook, checked now (a bad option is a ``ValueError`` here)."""
    entry = {"name": HOOK, "prune_fraction": prune_fraction, "rewind_step": rewind_step, "reinit": reinit, **options}
    validate_hook_spec(entry)
    return entry


def _label_run(config) -> str:
    spec = next(h for h in config.hooks if h.get("name") == HOOK)
    if not config.init_from:
        return "dense (round 0)"
    return "random re-init" if spec.get("reinit") else f"ticket (rewind to step {spec.get('rewind_step', 0)})"


LOTTERY = register_method(MethodSpec(
    name=HOOK, label="lottery ticket", colour=ROLE_COLORS["pruned"],
    summary="iterative magnitude pruning with rewinding to iteration k, against random re-init "
            "(Frankle & Carbin 2019; Frankle et al. 2020)",
    hook=LotteryHook, claims=uses_hook(HOOK), priority=41, label_run=_label_run, reader=read_lottery_snapshot,
    pages=(PageSpec("lottery", "Lottery tickets & N:M", ":material/casino:", order=34, section="Compression"),),
    widgets={"LotteryMonitor": "lottery"},
))
