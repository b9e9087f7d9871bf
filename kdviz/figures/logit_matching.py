"""Charts of logit matching (Ba & Caruana, NIPS 2014) and its relation to Hinton's loss (Hinton, Vinyals,
Dean 2015, section 2.1, eqs. 2-4).

* ``hinton_limit_curve``: (T^2 KL) / (centred L2 / K) against T on a log axis for the current student
  and teacher logits: the ratio tends to 1, so at high T Hinton's scaled loss *is* logit matching;
  optionally the same ratio against the plain (uncentred) L2, which misses 1 when the mean logits differ;
* ``logit_scatter``: each student logit against the teacher's for the same probe image and class, with
  the line y = x on which perfect logit matching puts every point;
* ``logit_distance_curve``: Ba & Caruana's loss on the probe batch against training steps.

Data in, figure out: ratios, logits and colours arrive as arguments (``kdviz.distill.logit_matching``
computes the ratios); this module knows no method and no engine.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from . import theme

STUDENT_COLOUR = theme.OKABE_ITO["yellow"]
OUTLINE = "#333333"  # yellow markers need a dark edge on a white background


def _vector(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of numbers, got shape {arr.shape}")
    return arr


def hinton_limit_curve(temperatures: Sequence[float], ratios: Sequence[float], raw_ratios: Sequence[float] | None = None,
                       colour: str = STUDENT_COLOUR, label: str = "student vs teacher") -> go.Figure:
    """The ratio (T^2 KL) / (L2 / K) against T (log x axis), with the line ratio = 1.

    ``ratios`` use the centred distance (``limit_ratios(center=True)``), drawn in ``colour``; ``raw_ratios``
    (optional) the plain one, dashed dark grey; one value per temperature (NaN: undefined, not drawn)."""
    T = _vector("temperatures", temperatures)
    if (T <= 0).any() or not np.isfinite(T).all():
        raise ValueError("temperatures must be positive finite numbers")
    series = {"T² KL ÷ (centred L2 / K)": _vector("ratios", ratios)}
    if raw_ratios is not None:
        series["T² KL ÷ (plain L2 / K)"] = _vector("raw_ratios", raw_ratios)
    fig = go.Figure()
    fig.add_hline(y=1.0, line={"color": "#777", "dash": "dot", "width": 1},
                  annotation_text="logit matching (ratio 1)", annotation_position="bottom right")
    for (name, y), (dash, line_colour) in zip(series.items(), (("solid", colour), ("dash", OUTLINE))):
        if y.shape != T.shape:
            raise ValueError(f"{name}: {y.size} ratios for {T.size} temperatures")
        fig.add_scatter(x=T, y=y, mode="lines+markers", name=name, line={"color": line_colour, "width": 2.5, "dash": dash},
                        marker={"size": 6, "line": {"color": OUTLINE, "width": 1}},
                        hovertemplate="T = %{x:.3g}: ratio %{y:.4f}<extra>" + label + "</extra>")
    finite = np.isfinite(series["T² KL ÷ (centred L2 / K)"])
    gap = abs(series["T² KL ÷ (centred L2 / K)"][finite][-1] - 1.0) if finite.any() else float("nan")
    title = (f"Hinton's loss at T, times T², approaches logit matching: off by {100 * gap:.2g}% at T = {T[finite][-1]:g}"
             if finite.any() else "Hinton's loss at T, times T², approaches logit matching (no distance yet)")
    fig.update_xaxes(type="log")
    fig.update_yaxes(rangemode="tozero")
    return theme.compact(theme.apply(fig, title, x_title="temperature T (log scale)",
                                     y_title="(T² KL) / (L2 / K), K = classes"))


def logit_scatter(student: Any, teacher: Any, labels: Any = None, student_label: str = "student",
                  teacher_label: str = "teacher", colour: str = STUDENT_COLOUR) -> go.Figure:
    """Every student logit (y) against the teacher's (x) on the probe batch, with y = x.

    ``student`` and ``teacher`` are (n, K); ``labels`` (n,) optional class indices: the logit of each
    image's true class is drawn filled, the others open. The title gives Ba & Caruana's loss
    1/(2n) sum ||z_s - z_t||^2 and the correlation of the two sets of logits."""
    s, t = np.asarray(student, dtype=np.float64), np.asarray(teacher, dtype=np.float64)
    if s.ndim != 2 or s.shape != t.shape or s.size == 0:
        raise ValueError(f"student {s.shape} and teacher {t.shape} logits must both be (images, classes)")
    if not (np.isfinite(s).all() and np.isfinite(t).all()):
        raise ValueError("the logits hold values that are not finite")
    is_target = np.zeros(s.shape, dtype=bool)
    if labels is not None:
        y = np.asarray(labels)
        if y.shape != (s.shape[0],) or y.min() < 0 or y.max() >= s.shape[1]:
            raise ValueError(f"labels must be {s.shape[0]} class indices in 0..{s.shape[1] - 1}")
        is_target[np.arange(s.shape[0]), y.astype(int)] = True
    fig = go.Figure()
    low, high = float(min(s.min(), t.min())), float(max(s.max(), t.max()))
    fig.add_scatter(x=[low, high], y=[low, high], mode="lines", name="y = x (matched)",
                    line={"color": "#777", "dash": "dot", "width": 1}, hoverinfo="skip")
    for name, mask, fill in (("other classes", ~is_target, "rgba(0,0,0,0)"), ("true class", is_target, colour)):
        if mask.any():
            fig.add_scatter(x=t[mask], y=s[mask], mode="markers", name=name,
                            marker={"size": 6, "color": fill, "line": {"color": OUTLINE, "width": 1}},
                            hovertemplate=f"{teacher_label} %{{x:.2f}}, {student_label} %{{y:.2f}}<extra>{name}</extra>")
    l2 = float(((s - t) ** 2).sum() / (2 * s.shape[0]))
    r = float(np.corrcoef(s.ravel(), t.ravel())[0, 1]) if s.std() > 0 and t.std() > 0 else float("nan")
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return theme.compact(theme.apply(
        fig, f"{student_label} logits against the {teacher_label}'s: L2 = {l2:.3g}, correlation {r:.3f}",
        x_title=f"{teacher_label} logit", y_title=f"{student_label} logit"))


def logit_distance_curve(steps: Sequence[float], distances: Sequence[float], colour: str = STUDENT_COLOUR,
                         label: str = "student") -> go.Figure:
    """Ba & Caruana's loss 1/(2n) sum ||z_s - z_t||^2 on the probe batch against training steps."""
    x, y = _vector("steps", steps), _vector("distances", distances)
    if x.shape != y.shape:
        raise ValueError(f"{y.size} distances for {x.size} steps")
    fig = go.Figure()
    fig.add_scatter(x=x, y=y, mode="lines+markers", name=label, line={"color": colour, "width": 2.5},
                    marker={"size": 6, "line": {"color": OUTLINE, "width": 1}},
                    hovertemplate="step %{x}: L2 %{y:.3g}<extra>" + label + "</extra>")
    title = (f"Logit distance to the teacher fell {y[0] / y[-1]:.2g}x on a fixed probe batch"
             if x.size > 1 and 0 < y[-1] < y[0] else "Logit distance to the teacher on a fixed probe batch")
    fig.update_yaxes(rangemode="tozero")
    return theme.compact(theme.apply(fig, title, x_title="training step (optimizer updates)",
                                     y_title="1/(2n) Σ ‖z_S − z_T‖²"))


__all__ = ["hinton_limit_curve", "logit_distance_curve", "logit_scatter"]
