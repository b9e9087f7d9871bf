"""Charts of decoupled knowledge distillation (Zhao et al., "Decoupled Knowledge Distillation", CVPR 2022).

Eq. 7 splits Hinton's loss into two parts, KD = TCKD + (1 - p_t^T) NCKD, where p_t^T is the teacher's
probability of the target class at temperature T:

* ``dkd_parts_curve``: TCKD, NCKD and Hinton's KD on a fixed probe batch against training steps (and
  the (1 - p_t^T) NCKD that KD keeps), so one sees which part is larger and how KD is assembled;
* ``nckd_suppression``: per probe image, the NCKD weight 1 - p_t^T against the teacher's confidence
  p_t^T, and each image's NCKD beside the part KD keeps: a confident teacher suppresses NCKD;
* ``metric_series``: the curves read from evaluation records under keys the caller names.

Data in, figure out: values are plain sequences, keys, labels and colours arrive as arguments (this
module knows no method and no engine). All losses are T^2 KL in nats, as trained.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import theme

TCKD_COLOUR = theme.OKABE_ITO["orange"]
NCKD_COLOUR = theme.OKABE_ITO["sky blue"]
KD_COLOUR = theme.ROLE_COLORS["kd student"]  # Hinton's loss in KD's colour
CONFIDENT = 0.9  # a teacher "sure" of an image: p_t^T above this keeps under 10% of its NCKD in KD


def metric_series(records: Sequence[Mapping[str, Any]],
                  keys: Mapping[str, str]) -> tuple[list[float], dict[str, list[float]]]:
    """(steps, {name: values}) from the evaluation records that hold every key of ``keys`` ({name: record key})."""
    evals = [r for r in records if r.get("kind", "eval") == "eval" and all(k in r for k in keys.values())]
    return [float(r["step"]) for r in evals], {name: [float(r[key]) for r in evals] for name, key in keys.items()}


def _series(name: str, values: Sequence[float], steps: np.ndarray) -> np.ndarray:
    y = np.asarray(values, dtype=np.float64)
    if y.shape != steps.shape:
        raise ValueError(f"{name}: {y.size} values for {steps.size} steps")
    return y


def _parts_title(tckd: float, nckd: float) -> tuple[str, str]:
    """(headline, explanation) of the parts chart from the last TCKD and NCKD."""
    if not (np.isfinite(tckd) and np.isfinite(nckd)) or max(tckd, nckd) <= 0:
        return "TCKD and NCKD on a fixed probe batch", "both are 0: the student matches the teacher here"
    if nckd >= tckd:
        ratio = f"{nckd / tckd:.2g}x" if tckd > 0 else "far above"
        return (f"NCKD is {ratio} TCKD now", "the student's spread over the wrong classes is further from the "
                "teacher's than its confidence in the right one")
    return (f"TCKD is {tckd / max(nckd, 1e-12):.2g}x NCKD now", "the student's confidence in the right class is "
            "further from the teacher's than its spread over the wrong ones")


def _titled(fig: go.Figure, headline: str, explanation: str, **axes: str) -> go.Figure:
    """The theme's look with the explanation wrapped under the headline (narrow widgets clip long lines)."""
    return theme.compact(theme.apply(fig, theme.wrap_title(headline, 46), subtitle=theme.wrap_title(explanation, 70),
                                     **axes))


def dkd_parts_curve(steps: Sequence[float], tckd: Sequence[float], nckd: Sequence[float], kd: Sequence[float],
                    nckd_in_kd: Sequence[float] | None = None, T: float | None = None) -> go.Figure:
    """TCKD, NCKD (unweighted, times T^2) and Hinton's KD on the probe batch against training steps.

    ``nckd_in_kd`` (optional) is the probe mean of (1 - p_t^T) NCKD: KD = TCKD + that (eq. 7), drawn
    dotted so the gap to NCKD shows how much of NCKD Hinton's loss passes on. The title says which
    part is larger at the last step."""
    x = np.asarray(steps, dtype=np.float64)
    parts = {"TCKD (target vs rest)": (_series("tckd", tckd, x), TCKD_COLOUR, "solid"),
             "NCKD (among the wrong classes)": (_series("nckd", nckd, x), NCKD_COLOUR, "solid"),
             "Hinton's KD": (_series("Hinton's KD", kd, x), KD_COLOUR, "dash")}
    if nckd_in_kd is not None:
        parts["(1 − p_t) · NCKD, inside KD"] = (_series("nckd_in_kd", nckd_in_kd, x), NCKD_COLOUR, "dot")
    fig = go.Figure()
    for name, (y, colour, dash) in parts.items():
        fig.add_scatter(x=x, y=y, mode="lines+markers", name=name, line={"color": colour, "width": 2, "dash": dash},
                        marker={"size": 5}, hovertemplate="step %{x}: %{y:.3f}<extra>" + name + "</extra>")
    last_t = float(parts["TCKD (target vs rest)"][0][-1]) if x.size else np.nan
    last_n = float(parts["NCKD (among the wrong classes)"][0][-1]) if x.size else np.nan
    at = f" at T = {T:g}" if T is not None else ""
    fig.update_yaxes(rangemode="tozero")
    headline, explanation = _parts_title(last_t, last_n)
    return _titled(fig, headline, f"{explanation}; probe batch{at}", x_title="training step (optimizer updates)",
                   y_title="T²·KL (nats)")


def suppressed_share(teacher_target_prob: Sequence[float], nckd: Sequence[float]) -> float:
    """1 - sum (1 - p_t^T) NCKD / sum NCKD: the share of the probe batch's NCKD that KD drops (eq. 7)."""
    p, n = np.asarray(teacher_target_prob, dtype=np.float64), np.asarray(nckd, dtype=np.float64)
    total = float(n.sum())
    return 0.0 if total <= 0 else 1.0 - float(((1.0 - p) * n).sum()) / total


def nckd_suppression(teacher_target_prob: Sequence[float], nckd: Sequence[float], colour: str = NCKD_COLOUR,
                     T: float | None = None) -> go.Figure:
    """Per probe image: the NCKD weight 1 - p_t^T against the teacher's confidence p_t^T (top), and
    the image's NCKD beside the (1 - p_t^T) NCKD that Hinton's KD keeps of it (bottom).

    ``teacher_target_prob`` and ``nckd`` are (n,) arrays (NCKD times T^2, the student's as it is
    now). The title gives the share of NCKD that the teacher's confidence removes from KD."""
    p, n = np.asarray(teacher_target_prob, dtype=np.float64), np.asarray(nckd, dtype=np.float64)
    if p.ndim != 1 or p.shape != n.shape or p.size == 0:
        raise ValueError(f"give one teacher probability and one NCKD per probe image; got shapes {p.shape} "
                         f"and {n.shape}")
    if not (np.isfinite(p).all() and np.isfinite(n).all()) or p.min() < 0 or p.max() > 1:
        raise ValueError("teacher probabilities must lie in [0, 1] and NCKD values must be finite")
    kept = (1.0 - p) * n
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.4, 0.6])
    line = np.linspace(0.0, 1.0, 2)
    fig.add_scatter(x=line, y=1.0 - line, mode="lines", name="1 − p_t (the weight)", showlegend=False,
                    line={"color": theme.OKABE_ITO["grey"], "dash": "dot", "width": 1}, hoverinfo="skip", row=1, col=1)
    hover = "teacher p_t %{x:.3f}<br>%{y:.3f}<extra>%{fullData.name}</extra>"
    fig.add_scatter(x=p, y=1.0 - p, mode="markers", name="NCKD weight in KD: 1 − p_t", row=1, col=1,
                    marker={"color": theme.OKABE_ITO["grey"], "size": 7}, hovertemplate=hover)
    gaps_x = np.repeat(p, 3)
    gaps_y = np.column_stack([n, kept, np.full_like(n, np.nan)]).ravel()
    fig.add_scatter(x=gaps_x, y=gaps_y, mode="lines", showlegend=False, hoverinfo="skip", row=2, col=1,
                    line={"color": "rgba(127,127,127,0.45)", "width": 1})
    fig.add_scatter(x=p, y=n, mode="markers", name="NCKD (what DKD weights by β)", row=2, col=1,
                    marker={"color": colour, "size": 8, "symbol": "circle-open", "line": {"width": 2}},
                    hovertemplate=hover)
    fig.add_scatter(x=p, y=kept, mode="markers", name="(1 − p_t) · NCKD (what KD keeps)", row=2, col=1,
                    marker={"color": colour, "size": 7}, hovertemplate=hover)
    sure = int((p > CONFIDENT).sum())
    share = suppressed_share(p, n)
    headline = f"Teacher confidence hides {100 * share:.0f}% of NCKD from KD"
    explanation = (f"the teacher is sure (p_t > {CONFIDENT:g}) of {sure} of {p.size} probe images; KD weights each "
                   f"image's NCKD by 1 − p_t")
    fig.update_xaxes(range=[-0.02, 1.02], row=1, col=1)
    fig.update_xaxes(range=[-0.02, 1.02], title_text=f"teacher's target probability p_t{' at T = %g' % T if T else ''}",
                     row=2, col=1)
    fig.update_yaxes(range=[-0.02, 1.02], title_text="1 − p_t", row=1, col=1)
    fig.update_yaxes(rangemode="tozero", title_text="NCKD (T²·KL, nats)", row=2, col=1)
    return _titled(fig, headline, explanation)
