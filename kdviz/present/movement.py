"""Movement pruning beside magnitude pruning, for both UIs: the runs to start, and what to show.

Sanh, Wolf, Rush, "Movement Pruning" (NeurIPS 2020): while fine-tuning a trained model, keep the
weights that move away from zero (``kdviz.prune.movement``). ``movement_runs`` builds the two runs
(``kdviz.methods.movement.movement_configs``: the same cubic schedule, data, steps and seed; only the
rule that picks the weights differs). ``movement_story`` reads both (live jobs or folders) and returns
the progress chart, the |W|-against-score scatter of the latest movement snapshot and a caption
written from the records: which run is ahead at the same sparsity, and how far the chosen weights differ.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..engine import TrainConfig
from ..figures.movement import PruningCurve, movement_progress, movement_scatter
from ..methods.movement import MOVEMENT, MovementSnapshot, movement_configs, movement_hook
from .compression_configs import PRUNE_FINE_TUNE_LR, fine_tune_config
from .runs import RunView


def movement_runs(baseline: Any, sparsity: float = 0.9, epochs: int = 4, mode: str = "hard", score_lr: float = 0.01,
                  lr: float = PRUNE_FINE_TUNE_LR, warmup: float = 0.0, **overrides: Any) -> dict[str, TrainConfig]:
    """Movement and magnitude pruning of the finished ``baseline`` run to ``sparsity`` over ``epochs``
    (pruning from ``warmup``, a share of the steps), by job name (the methods' labels), validated."""
    base = fine_tune_config(baseline, movement_hook(sparsity, mode, score_lr=score_lr), epochs, lr, **overrides)
    return movement_configs(base, sparsity, mode, score_lr=score_lr, warmup=warmup)


def curve_of(view: RunView) -> PruningCurve:
    """A run's sparsity and test accuracy at each evaluation, from its method's own metric key."""
    key = view.method.metric_key(view.config, "sparsity")
    points = [(r["step"], r[key], r["test_acc"]) for r in view.evals if key in r and "test_acc" in r]
    return PruningCurve(view.method.label, view.colour, [p[0] for p in points], [p[1] for p in points],
                        [p[2] for p in points])


@dataclass(frozen=True)
class MovementStory:
    """The section's charts and caption at one reading."""

    progress: Any
    scatter: Any | None
    layers: list[str]
    caption: str
    snapshot: MovementSnapshot | None


def _caption(curves: list[PruningCurve], snap: MovementSnapshot | None) -> str:
    finished = [c for c in curves if c.accuracy]
    if not finished:
        return "Waiting for the first evaluation of both runs…"
    parts = [f"{c.label}: {100 * c.accuracy[-1]:.1f}% at {100 * c.sparsity[-1]:.0f}% sparsity (step {c.steps[-1]})"
             for c in finished]
    text = "; ".join(parts) + "."
    if len(finished) == 2 and finished[0].steps[-1] == finished[1].steps[-1]:
        a, b = finished
        gap = 100 * (a.accuracy[-1] - b.accuracy[-1])
        leader = a.label if gap > 0 else b.label
        text += (f" At the same step {leader} leads by {abs(gap):.1f} points." if abs(gap) >= 0.05
                 else " At the same step the two are level.")
    if snap is not None and snap.layers:
        agree = ", ".join(f"{layer.name} {layer.agreement:.0%}" for layer in snap.layers)
        text += (f" Of the weights movement keeps, magnitude pruning at the same count would keep: {agree} "
                 "(100%: the same weights).")
    return text


def movement_story(views: list[RunView], layer: str | None = None, dense_accuracy: float | None = None) -> MovementStory:
    """Progress of every run in ``views`` (refreshed by the caller) and the scatter of the movement
    run's latest snapshot at ``layer`` (default: its first layer)."""
    curves = [curve_of(v) for v in views]
    moving = next((v for v in views if v.method is MOVEMENT), None)
    snap = None
    if moving is not None and moving.snapshots:
        try:
            snap = moving.read(MOVEMENT)
        except ValueError:
            snap = None
    scatter, layers = None, []
    if snap is not None:
        layers = snap.names
        shown = snap.layer(layer if layer in layers else layers[0])
        scatter = movement_scatter(shown.abs_weight, shown.score, shown.kept, shown.magnitude_kept, shown.name,
                                   step=moving.latest_snapshot().step)
    return MovementStory(movement_progress(curves, dense_accuracy), scatter, layers, _caption(curves, snap), snap)
