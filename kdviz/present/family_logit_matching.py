"""Logit matching as a member of the distillation family (issue 16, method 3).

Ba & Caruana (NIPS 2014) regress the teacher's logits with L2; Hinton et al. (2015, section 2.1,
eqs. 2-4) show that their own loss, times T^2, becomes that regression as T grows (for zero-mean
logits; for any logits it becomes the centred distance over K, ``kdviz.distill.logit_matching``).
The member's knobs are the hook's weight, whether to centre the logits, and whether the student also
sees the labels (cross-entropy plus the term, as in seed texts) or only the teacher's logits (Ba &
Caruana's recipe). Its panel reads the run's latest snapshot and evaluations:

* the ratio (T^2 KL) / (L2 / K) over T = 1..1000 for the current student and teacher probe logits;
* the student's probe logits against the teacher's, with y = x;
* Ba & Caruana's loss on the probe batch over training.

Every caption is computed from the numbers drawn, so it says what the figure shows now.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from ..distill.logit_matching import limit_ratios
from ..engine import TrainConfig
from ..figures.logit_matching import hinton_limit_curve, logit_distance_curve, logit_scatter
from ..methods.logit_matching import LABEL_FREE_LOSS, LOGIT_MATCHING, NAME, LogitMatchingSnapshot
from .family import FamilyMember, Knob, PanelFigure, register_member
from .runs import RunView

CURVE_TEMPERATURES = tuple(float(T) for T in np.geomspace(1.0, 1000.0, 19))  # 1 to 1000, 6 points a decade
MEAN_GAP = 0.01  # plain and centred ratios this far apart: the mean logits differ enough to say so
SAME = 0.005  # relative change of the probe L2 the scatter caption calls "as at the first evaluation"
NEAR = 1.0  # a logit within this many units of the teacher's counts as matched in the scatter caption


def configure(base: TrainConfig, values: Mapping[str, Any]) -> TrainConfig:
    """The logit-matching student: ``base`` plus the hook; cross-entropy or (``labels`` = 0) no base loss."""
    hook = {"name": NAME, "weight": float(values["weight"]), "center": bool(values["center"])}
    method = LOGIT_MATCHING.loss if values["labels"] else LABEL_FREE_LOSS
    return replace(base, method=method, hooks=[*base.hooks, hook])


def limit_caption(snap: LogitMatchingSnapshot, ratios: np.ndarray, raw: np.ndarray) -> str:
    """What the limit curve shows now: the ratio at T = 1, 4 and 100, and why the plain ratio differs."""
    if not np.isfinite(ratios).all():
        return "The student's centred logits equal the teacher's on the probe batch: both losses are 0, no ratio to draw."
    at = {T: float(snap.ratios([T])[0]) for T in (1.0, 4.0, 100.0)}
    text = (f"On the {len(snap.student)} probe images now, T²·KL is {at[1.0]:.2f}× the centred logit distance ÷ K "
            f"at T = 1, {at[4.0]:.2f}× at T = 4 and {at[100.0]:.3f}× at T = 100")
    text += (": at high T Hinton's loss is logit matching. " if abs(at[100.0] - 1.0) < 0.05 else
             ": even T = 100 is not yet high enough for these logits. ")
    gap = abs(float(raw[-1]) - float(ratios[-1]))
    if gap > MEAN_GAP:
        text += (f"Against the plain distance the ratio levels off at {float(raw[-1]):.3f}, not 1: the student's mean "
                 f"logit differs from the teacher's, a shift softmax cannot see.")
    else:
        text += "The plain and centred distances agree: the mean logits match, as Hinton's zero-mean assumption asks."
    return text


def scatter_caption(snap: LogitMatchingSnapshot, step: int, first_l2: float | None) -> str:
    """What the scatter shows now: the loss, its change since the first evaluation, the share near y = x."""
    l2 = snap.l2()
    near = float(np.mean(np.abs(snap.student - snap.teacher) <= NEAR))
    text = f"At step {step} Ba & Caruana's loss on the probe batch is {l2:.3g}"
    if first_l2 is not None and first_l2 > 0:
        if abs(l2 - first_l2) <= SAME * first_l2:
            text += ", as at the first evaluation"
        else:
            text += (f", {first_l2 / l2:.2g}× below the first evaluation's {first_l2:.3g}" if l2 < first_l2 else
                     f", up from {first_l2:.3g} at the first evaluation")
    return text + f"; {100 * near:.0f}% of the logits lie within {NEAR:g} of the teacher's (the dotted line y = x)."


def _distance_series(view: RunView) -> tuple[list[float], list[float]]:
    key = LOGIT_MATCHING.metric_key(view.config, "probe_l2")
    points = [(float(r["step"]), float(r[key])) for r in view.evals if key in r]
    return [p[0] for p in points], [p[1] for p in points]


def reading(view: RunView, snapshot: Any = None) -> LogitMatchingSnapshot | None:
    """The hook's arrays in ``snapshot`` (default: the run's latest), or None while there are none."""
    snapshot = snapshot or view.latest_snapshot()
    try:
        return view.read(LOGIT_MATCHING, snapshot) if snapshot is not None else None
    except ValueError:  # a snapshot without the hook's arrays
        return None


def panel(view: RunView) -> list[PanelFigure]:
    """The member's live figures from its run's latest snapshot and evaluations (empty until the first)."""
    return panel_at(view, view.latest_snapshot())


def panel_at(view: RunView, snapshot: Any) -> list[PanelFigure]:
    """The panel drawn from one snapshot of the run (the distance curve: every evaluation so far)."""
    snap = reading(view, snapshot)
    if snap is None:
        return []
    ratios, raw = snap.ratios(CURVE_TEMPERATURES), _raw_ratios(snap)
    steps, distances = _distance_series(view)
    figures = [
        PanelFigure(hinton_limit_curve(CURVE_TEMPERATURES, ratios, raw, colour=view.colour, label=view.label),
                    limit_caption(snap, ratios, raw)),
        PanelFigure(logit_scatter(snap.student, snap.teacher, snap.labels, student_label=view.label, colour=view.colour),
                    scatter_caption(snap, snapshot.step, distances[0] if distances else None)),
    ]
    if len(steps) > 1:
        fell = distances[-1] < distances[0]
        figures.append(PanelFigure(logit_distance_curve(steps, distances, colour=view.colour, label=view.label),
                                   f"Over {len(steps)} evaluations the probe L2 went from {distances[0]:.3g} to "
                                   f"{distances[-1]:.3g}: the student's logits are {'closing in on' if fell else 'not closing in on'} "
                                   f"the teacher's."))
    return figures


def _raw_ratios(snap: LogitMatchingSnapshot) -> np.ndarray:
    return limit_ratios(snap.student, snap.teacher, CURVE_TEMPERATURES, center=False)


LOGIT_MATCHING_MEMBER = register_member(FamilyMember(
    spec=LOGIT_MATCHING,
    knobs=(Knob("weight", "weight of the logit loss", 0.01, 2.0, 0.1, 0.01,
                "CE + weight · 1/(2B) Σ‖z_s − z_t‖² (Ba & Caruana 2014); 1 collapsed a digits student at lr 0.05"),
           Knob("center", "centre the logits (1) or not (0)", 0, 1, 0, 1,
                "subtract each image's mean logit first: the distance Hinton's loss tends to at high T", integer=True),
           Knob("labels", "also learn from the labels (1) or logits only (0)", 0, 1, 1, 1,
                "0 is Ba & Caruana's recipe: the student regresses the teacher's logits and never sees a label",
                integer=True)),
    configure=configure,
    panel=panel,
    order=30,
))

__all__ = ["CURVE_TEMPERATURES", "LOGIT_MATCHING_MEMBER", "configure", "limit_caption", "panel", "panel_at", "reading", "scatter_caption"]
