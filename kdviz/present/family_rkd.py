"""Relational KD as a member of the distillation family (Park, Kim, Lu, Cho, CVPR 2019, eqs. 3-6).

Knobs: the weights lambda_D of the distance-wise loss (eq. 4) and lambda_A of the angle-wise loss
(eq. 6), the paper's 25 and 50 by default; ``configure`` adds the ``RKDHook`` entry to the shared
student config with the base loss cross-entropy. The panel draws, from the run's latest snapshot,
the teacher's and the student's normalised pairwise-distance matrices psi_D on the probe batch, and,
from its evaluations, both losses and the matrices' correlation over training. Captions are written
from those numbers: how close the student's matrix is to the teacher's now, and how that changed.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..engine import TrainConfig
from ..figures.rkd import distance_heatmaps, rkd_loss_curve, rkd_series
from ..methods.rkd import RKD, RKDSnapshot, rkd_hook_entry, rkd_weights
from ..methods.scratch import TEACHER
from .family import FamilyMember, Knob, PanelFigure, register_member
from .runs import RunView

SAME_GEOMETRY_R = 0.9  # a correlation of the two psi_D matrices from here on reads as "nearly the same geometry"
SIMILAR_GEOMETRY_R = 0.6  # from here on, "similar"; below it the student spaces the probe images its own way
CHANGE_R = 0.02  # a change in r smaller than this over training reads as "about the same"


def configure_rkd(base: TrainConfig, values: Mapping[str, Any]) -> TrainConfig:
    """The RKD student: ``base`` on cross-entropy plus the ``RKDHook`` with the knobs' weights."""
    hook = rkd_hook_entry(float(values["distance_weight"]), float(values["angle_weight"]))
    return replace(base, method=RKD.loss, hooks=[*base.hooks, hook])


def geometry_caption(snapshot: RKDSnapshot, step: int, first_r: float | None = None) -> str:
    """What the heatmaps show now: Pearson's r of the student's psi_D matrix with the teacher's, read as
    nearly the same / similar / different geometry, and its change since the first evaluation."""
    r, n = snapshot.correlation, len(snapshot.labels)
    head = (f"Step {step}. Normalised distances ψ_D between {n} fixed test images, sorted by class, in the "
            f"teacher's {snapshot.teacher_feature!r} and the student's {snapshot.student_feature!r} embedding.")
    if not math.isfinite(r):
        return f"{head} The student's distances are all equal so far: no correlation with the teacher's yet."
    if r >= SAME_GEOMETRY_R:
        verdict = "the student now spaces these images nearly as the teacher does"
    elif r >= SIMILAR_GEOMETRY_R:
        verdict = "the student's geometry is similar to the teacher's, with visible differences"
    else:
        verdict = "the student still spaces these images its own way"
    trend = ""
    if first_r is not None and math.isfinite(first_r):
        change = r - first_r
        how = "up" if change >= CHANGE_R else "down" if change <= -CHANGE_R else "about the same as"
        trend = f" ({how} {'from ' if how != 'about the same as' else ''}r = {first_r:.2f} at the first evaluation)"
    return (f"{head} The two matrices correlate at r = {r:.2f}{trend}: {verdict}. "
            f"Huber losses on this batch: distance {snapshot.distance_loss:.4f}, angle {snapshot.angle_loss:.4f}.")


def losses_caption(steps: Sequence[float], series: Mapping[str, Sequence[float]], weights: tuple[float, float]) -> str:
    """What the loss curves show: each loss's first and latest value, and which terms are trained."""
    if not steps:
        return "No evaluation yet."
    parts = []
    for name, values in series.items():
        first, last = values[0], values[-1]
        if len(values) < 2 or not (first > 0 and last > 0):
            parts.append(f"{name} is {last:.4f}")
        else:
            verb = "fell" if last < first else "rose"
            parts.append(f"{name} {verb} from {first:.4f} to {last:.4f} ({max(first, last) / min(first, last):.2g}x)")
    w_d, w_a = weights
    watched = [n for n, w in (("distance", w_d), ("angle", w_a)) if w == 0]
    trained = f"trained with λ_D = {w_d:g}, λ_A = {w_a:g}"
    note = f"; the {' and '.join(watched)} loss is only watched (weight 0)" if watched else ""
    return f"By step {int(steps[-1])}, on the probe batch, " + "; ".join(parts) + f" ({trained}{note})."


def _metric_keys(view: RunView) -> dict[str, str]:
    return {name: RKD.metric_key(view.config, key)
            for name, key in (("distance loss", "probe_distance"), ("angle loss", "probe_angle"), ("r", "distance_corr"))}


def rkd_panel(view: RunView) -> list[PanelFigure]:
    """The RKD student's heatmaps (latest snapshot) and its losses over training (evaluations).

    Both or neither: a page or widget keeps one chart per position, so the list never changes shape."""
    steps, series = rkd_series(view.evals, _metric_keys(view))
    correlation = series.pop("r")
    snap = view.latest_snapshot()
    try:
        reading = view.read(RKD, snap) if snap is not None else None
    except ValueError:  # a snapshot without the hook's arrays
        reading = None
    if reading is None or not steps:
        return []
    heatmaps = distance_heatmaps(reading.teacher, reading.student, reading.labels, teacher_label=TEACHER.label,
                                 student_label=view.label, teacher_colour=TEACHER.colour, student_colour=view.colour,
                                 step=snap.step)
    return [PanelFigure(heatmaps, geometry_caption(reading, snap.step, correlation[0])),
            PanelFigure(rkd_loss_curve(steps, series, correlation=correlation),
                        losses_caption(steps, series, rkd_weights(view.config)))]


RKD_MEMBER = register_member(FamilyMember(
    spec=RKD,
    knobs=(Knob("distance_weight", "distance weight λ_D", 0.0, 100.0, 25.0, 5.0,
                "Park et al. 2019, eq. 4: weight of the Huber loss between normalised pairwise distances"),
           Knob("angle_weight", "angle weight λ_A", 0.0, 100.0, 50.0, 5.0,
                "eq. 6: weight of the Huber loss between the cosines of triplet angles (0: distances only)")),
    configure=configure_rkd,
    panel=rkd_panel,
    order=20,
))

__all__ = ["RKD_MEMBER", "configure_rkd", "geometry_caption", "losses_caption", "rkd_panel"]
