"""Lottery tickets: iterative magnitude pruning (IMP) with rewinding, the random re-init control, mask overlap.

Frankle & Carbin, "The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural Networks"
(ICLR 2019), section 1, the algorithm:

    1. randomly initialise a network f(x; theta_0);
    2. train it for j iterations, reaching theta_j;
    3. prune p% of the parameters in theta_j, creating a mask m;
    4. reset the remaining parameters to their values in theta_0: the winning ticket f(x; m * theta_0).

Iterative pruning repeats 2-4 for n rounds, each round pruning p% of the weights *that survived*
the previous round, so after round r a layer keeps (1 - p)^r of its weights. Frankle & Carbin prune
per layer, the output layer at half the rate (section 2: "p = 20% for fully-connected layers ...
connections to output pruned at half the rate"). open_lth (facebookresearch/open_lth,
``pruning/sparse_global.py``) prunes globally with fraction 0.2 and ignores the output layer of
LeNet-300-100 (``pruning_layers_to_ignore='fc.weight'``); ``output_fraction=0`` with
``scope="global"`` is that convention.

Rewinding (Frankle, Dziugaite, Roy, Carbin, "Linear Mode Connectivity and the Lottery Ticket
Hypothesis", ICML 2020, section 5): reset the survivors to theta_k, their values after k training
iterations, instead of theta_0 (k = 0 is the original lottery ticket). The control (Frankle &
Carbin, section 2, "randomly reinitialized"): the same mask m on a fresh random initialisation
theta'_0; winning tickets learn faster and reach higher accuracy than this control.

Counting: a round prunes ``round(p * remaining)`` weights of a layer (or of all globally pruned
layers together), Python's round as ``torch.nn.utils.prune`` (``_compute_nparams_toprune``), so our
masks equal torch's ``l1_unstructured`` / ``global_unstructured`` applied round after round. The
choice itself is ``magnitude.magnitude_masks`` (already pruned weights stay pruned).

Mask overlap (``mask_overlap``): Jaccard |A n B| / |A u B| of the kept weights, and the fraction of
A's survivors that B keeps; between consecutive IMP rounds the masks nest, so both are (1 - p).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from ..models import INIT_LOCK
from .magnitude import global_magnitude_masks, layerwise_magnitude_masks
from .masks import PruningMasks, prunable_weights

LOTTERY_SCOPES = ("layer", "global")


def check_fraction(value: object, what: str = "prune fraction", allow_zero: bool = False) -> float:
    """A per-round pruning fraction in (0, 1) ([0, 1) with ``allow_zero``); a ``ValueError`` names a bad one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} must be a number in {'[0' if allow_zero else '(0'}, 1), got {value!r}")
    if not ((0.0 <= value if allow_zero else 0.0 < value) and value < 1.0):
        raise ValueError(f"{what} must be in {'[0' if allow_zero else '(0'}, 1) (a fraction of the surviving "
                         f"weights pruned per round), got {value!r}")
    return float(value)


def ticket_sparsity(prune_fraction: float, rounds: int) -> float:
    """Sparsity after ``rounds`` rounds of pruning ``prune_fraction`` of the survivors: 1 - (1 - p)^r
    (ignoring rounding; the masks count exactly, see ``prune_count``)."""
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
        raise ValueError(f"rounds must be a non-negative integer, got {rounds!r}")
    return 1.0 - (1.0 - check_fraction(prune_fraction, allow_zero=True)) ** rounds


def prune_count(remaining: int, fraction: float) -> int:
    """Weights one round prunes out of ``remaining`` survivors: ``round(fraction * remaining)``
    (``torch.nn.utils.prune._compute_nparams_toprune``'s rule), never all of them."""
    return min(round(fraction * remaining), max(remaining - 1, 0))


def next_ticket_masks(
    model: nn.Module, previous: PruningMasks | None, prune_fraction: float = 0.2,
    output_fraction: float | None = None, scope: str = "layer", names: list[str] | None = None,
) -> PruningMasks:
    """The mask of the next IMP round, from the trained weights of ``model``: prune ``prune_fraction``
    of the survivors of ``previous`` by |w| (per layer, or with one global cut over every layer but
    the output layer), and ``output_fraction`` of the output layer's (the last prunable weight;
    default p / 2 as Frankle & Carbin; 0 leaves it dense as open_lth). Weights ``previous`` pruned
    stay pruned, so consecutive masks nest."""
    p = check_fraction(prune_fraction)
    p_out = p / 2 if output_fraction is None else check_fraction(output_fraction, "output fraction", allow_zero=True)
    if scope not in LOTTERY_SCOPES:
        raise ValueError(f"unknown lottery scope {scope!r} (known: {', '.join(LOTTERY_SCOPES)})")
    weights = prunable_weights(model, names)
    order = list(weights)
    output = order[-1]
    before = previous.kept() if previous is not None else {n: w.numel() for n, w in weights.items()}
    missing = [n for n in order if n not in before]
    if missing:
        raise ValueError(f"the previous masks have no entry for {missing} (they cover {list(before)})")
    hidden = [n for n in order if n != output] or []
    targets = {output: _cumulative(weights[output].numel(), before[output], p_out)}
    if scope == "layer" or not hidden:
        targets.update({n: _cumulative(weights[n].numel(), before[n], p) for n in hidden})
        return layerwise_magnitude_masks(model, targets, previous=_only(previous, order), names=order)
    total = sum(weights[n].numel() for n in hidden)
    cut = global_magnitude_masks(model, _cumulative(total, sum(before[n] for n in hidden), p),
                                 previous=_only(previous, hidden), names=hidden)
    out = layerwise_magnitude_masks(model, targets, previous=_only(previous, [output]), names=[output])
    return PruningMasks({n: (cut[n] if n in cut else out[n]) for n in order})


def _cumulative(size: int, kept: int, fraction: float) -> float:
    """The cumulative sparsity (pruned / size) after pruning ``round(fraction * kept)`` more weights."""
    pruned = size - kept + prune_count(kept, fraction)
    return pruned / size if size else 0.0


def _only(masks: PruningMasks | None, names: list[str]) -> PruningMasks | None:
    return None if masks is None else PruningMasks({n: masks[n] for n in names if n in masks})


def capture_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every parameter and buffer (theta_k, to rewind to later)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def rewind(model: nn.Module, weights: Mapping[str, torch.Tensor], masks: PruningMasks | None) -> nn.Module:
    """Reset ``model`` to ``weights`` (theta_k; every parameter, biases too, as Frankle & Carbin) and
    zero what ``masks`` prunes: the ticket f(x; m * theta_k). Parameters are written in place, so an
    optimizer built over them stays valid."""
    state = model.state_dict()
    missing = [k for k in state if k not in weights]
    if missing:
        raise ValueError(f"the rewind weights lack {missing}: they were captured from another model")
    with torch.no_grad():
        for key, value in state.items():
            if tuple(weights[key].shape) != tuple(value.shape):
                raise ValueError(f"rewind weight {key!r} has shape {tuple(weights[key].shape)}, the model's "
                                 f"{tuple(value.shape)}")
            value.copy_(weights[key])
    if masks is not None:
        masks.apply(model)
    return model


def random_reinit(model: nn.Module, seed: int, masks: PruningMasks | None = None) -> nn.Module:
    """The control: every layer's ``reset_parameters()`` under ``torch.manual_seed(seed)`` (a fresh
    theta'_0 from the model's own initialiser), then ``masks`` applied. The global generator is used
    under ``INIT_LOCK`` and restored afterwards, so other runs' draws are untouched."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    with INIT_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with torch.no_grad():
            for module in model.modules():
                if hasattr(module, "reset_parameters") and module is not model:
                    module.reset_parameters()
    if masks is not None:
        masks.apply(model)
    return model


@dataclass(frozen=True)
class MaskOverlap:
    """Overlap of two masks' kept weights: ``jaccard`` = |A n B| / |A u B|, ``kept_of_first`` =
    |A n B| / |A| (the share of A's survivors that B keeps), overall and per layer."""

    jaccard: float
    kept_of_first: float
    per_layer_jaccard: dict[str, float]


def mask_overlap(first: PruningMasks, second: PruningMasks) -> MaskOverlap:
    """Jaccard and fraction kept between the masks ``first`` (A) and ``second`` (B) over their
    common layers (names must match; two empty masks count as identical, 1.0)."""
    if set(first.names()) != set(second.names()):
        raise ValueError(f"the masks cover different layers: {first.names()} vs {second.names()}")
    inter = union = kept_a = 0
    per_layer = {}
    for name in first.names():
        a, b = first[name], second[name]
        if a.shape != b.shape:
            raise ValueError(f"mask {name!r} has shape {tuple(a.shape)} in one and {tuple(b.shape)} in the other")
        i, u = int((a & b).sum()), int((a | b).sum())
        per_layer[name] = i / u if u else 1.0
        inter, union, kept_a = inter + i, union + u, kept_a + int(a.sum())
    return MaskOverlap(inter / union if union else 1.0, inter / kept_a if kept_a else 1.0, per_layer)
