"""Charts of relational knowledge distillation (Park, Kim, Lu, Cho, "Relational Knowledge Distillation", CVPR 2019).

* ``distance_heatmaps``: the teacher's and the student's normalised pairwise-distance matrices
  psi_D = ||e_i - e_j||_2 / mu (eq. 3) on a probe batch sorted by class, side by side on one colour
  scale, with the correlation of the two in the title;
* ``rkd_series``: the probe-batch losses (and the correlation) read from a run's evaluation records;
* ``rkd_loss_curve``: the distance-wise and angle-wise losses L_RKD-D and L_RKD-A (eqs. 4, 6) against
  training steps, log y, with the matrices' correlation on a second axis.

Data in, figure out: matrices are plain arrays, labels and colours arrive as arguments, the metric
keys are the caller's (this module knows no method and no engine).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..distill.rkd import distance_matrix_correlation
from . import theme

TEACHER_COLOUR = theme.ROLE_COLORS["teacher"]
STUDENT_COLOUR = theme.OKABE_ITO["sky blue"]
CORRELATION_COLOUR = theme.OKABE_ITO["grey"]


def _matrix(name: str, m: Any) -> np.ndarray:
    arr = np.asarray(m, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] < 2:
        raise ValueError(f"{name} must be a square pairwise-distance matrix (N, N) with N >= 2, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds values that are not finite")
    return arr


def _class_ticks(labels: np.ndarray) -> tuple[list[float], list[str], list[float]]:
    """Tick positions at the middle of each class's block, their texts, and the block edges."""
    starts = [0, *[i for i in range(1, len(labels)) if labels[i] != labels[i - 1]]]
    ends = [*starts[1:], len(labels)]
    middles = [(a + b - 1) / 2 for a, b in zip(starts, ends)]
    return middles, [str(labels[a]) for a in starts], [a - 0.5 for a in starts[1:]]


def _coloured(text: str, colour: str) -> str:
    return f"<span style='color:{colour}'><b>{text}</b></span>"


def distance_heatmaps(teacher: Any, student: Any, labels: Sequence[int], teacher_label: str = "teacher",
                      student_label: str = "student", teacher_colour: str = TEACHER_COLOUR,
                      student_colour: str = STUDENT_COLOUR, step: int | None = None) -> go.Figure:
    """The teacher's and the student's psi_D matrices (eq. 3), probe images sorted by ``labels``.

    Both are drawn on one sequential scale from 0 to the larger maximum, so equal colours mean equal
    normalised distances; class blocks are outlined, so a clean block diagonal means the embedding
    keeps each class together. The title gives Pearson's r of the two matrices over the pairs i < j."""
    t, s = _matrix("teacher matrix", teacher), _matrix("student matrix", student)
    lab = np.asarray(labels)
    if t.shape != s.shape or lab.shape != (t.shape[0],):
        raise ValueError(f"teacher {t.shape} and student {s.shape} matrices and {lab.shape[0]} labels must describe "
                         "the same probe images")
    corr = distance_matrix_correlation(t, s)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08, subplot_titles=(
        _coloured(f"{teacher_label}: ψ_D", teacher_colour), _coloured(f"{student_label}: ψ_D", student_colour)))
    hover = "image %{y} ↔ %{x}<br>ψ_D %{z:.2f}<extra>%{fullData.name}</extra>"
    for col, (name, z) in enumerate(((teacher_label, t), (student_label, s)), start=1):
        fig.add_trace(go.Heatmap(z=z, name=name, coloraxis="coloraxis", hovertemplate=hover), 1, col)
    middles, texts, edges = _class_ticks(lab)
    end, style = len(lab) - 0.5, {"type": "line", "line": {"color": "white", "width": 1}}
    fig.update_layout(shapes=[{**style, "xref": f"x{axis}", "yref": f"y{axis}", **line}
                              for axis in ("", "2") for edge in edges
                              for line in ({"x0": edge, "x1": edge, "y0": -0.5, "y1": end},
                                           {"x0": -0.5, "x1": end, "y0": edge, "y1": edge})])
    fig.update_layout(coloraxis={"colorscale": theme.SEQUENTIAL, "cmin": 0.0, "cmax": float(max(t.max(), s.max())) or 1.0,
                                 "colorbar": {"title": {"text": "ψ_D"}, "thickness": 12, "len": 0.8}})
    fig.update_xaxes(tickvals=middles, ticktext=texts, title_text="probe image (by class)", constrain="domain")
    fig.update_yaxes(tickvals=middles, ticktext=texts, autorange="reversed")
    fig.update_yaxes(scaleanchor="x", row=1, col=1)
    fig.update_yaxes(scaleanchor="x2", row=1, col=2)
    at = f" at step {step}" if step is not None else ""
    verdict = "the same geometry" if corr >= 0.9 else "a similar geometry" if corr >= 0.6 else "a different geometry"
    title = (f"{student_label} vs {teacher_label}{at}: r = {corr:.2f}, {verdict}" if np.isfinite(corr)
             else f"{student_label} vs {teacher_label}{at}: pairwise distances")
    theme.apply(fig, title, height=420, subtitle="ψ_D = ‖e_i − e_j‖₂ / mean distance (Park et al. 2019, eq. 3); dark = "
                                               "close pairs. RKD-D pulls the right matrix towards the left one.")
    fig.update_layout(margin={"t": 110, "r": 60})
    return fig


def rkd_series(records: Sequence[Mapping[str, Any]], keys: Mapping[str, str]) -> tuple[list[float], dict[str, list[float]]]:
    """(steps, {name: values}) from the evaluation records that hold every key of ``keys``
    ({series name: metric key}, the caller's, e.g. a hook's probe losses)."""
    evals = [r for r in records if r.get("kind") == "eval" and all(k in r for k in keys.values())]
    return [float(r["step"]) for r in evals], {name: [float(r[k]) for r in evals] for name, k in keys.items()}


def rkd_loss_curve(steps: Sequence[float], losses: Mapping[str, Sequence[float]],
                   correlation: Sequence[float] | None = None, colours: Sequence[str] | None = None) -> go.Figure:
    """The unweighted RKD losses on the probe batch ({name: values}) against training steps (log y),
    and, if given, the correlation of the two distance matrices on a second axis (0 to 1)."""
    x = np.asarray(steps, dtype=np.float64)
    if not len(losses):
        raise ValueError("no RKD losses to draw: give at least one series")
    palette = list(colours) if colours else [theme.OKABE_ITO["vermillion"], theme.OKABE_ITO["blue"]]
    fig = make_subplots(specs=[[{"secondary_y": correlation is not None}]])
    for i, (name, ys) in enumerate(losses.items()):
        y = np.asarray(ys, dtype=np.float64)
        if y.shape != x.shape:
            raise ValueError(f"series {name!r}: {y.size} values for {x.size} steps")
        fig.add_scatter(x=x, y=y, mode="lines+markers", name=name, line={"color": palette[i % len(palette)], "width": 2},
                        hovertemplate="step %{x}: %{y:.4f}<extra>" + name + "</extra>")
    if correlation is not None:
        r = np.asarray(correlation, dtype=np.float64)
        if r.shape != x.shape:
            raise ValueError(f"correlation: {r.size} values for {x.size} steps")
        fig.add_scatter(x=x, y=r, mode="lines", name="r(ψ_D teacher, student)", secondary_y=True,
                        line={"color": CORRELATION_COLOUR, "width": 2, "dash": "dot"},
                        hovertemplate="step %{x}: r = %{y:.3f}<extra></extra>")
    fig.update_yaxes(type="log", secondary_y=False, **theme.log_ticks([v for ys in losses.values() for v in ys]))
    first = np.asarray([v[0] for v in losses.values()]) if x.size else np.array([])
    last = np.asarray([v[-1] for v in losses.values()]) if x.size else np.array([])
    falling = x.size > 1 and np.all(last > 0) and np.all(first > last)
    title = (f"RKD losses fell {np.min(first / last):.2g}x or more: the student copies the teacher's relations"
             if falling else "RKD losses on a fixed probe batch: distances (eq. 4) and angles (eq. 6)")
    theme.apply(fig, title, x_title="training step (optimizer updates)")
    fig.update_yaxes(title_text="Huber loss (unweighted, log)", secondary_y=False)
    if correlation is not None:  # after apply, which would title every y axis alike
        low = min(0.0, float(np.nanmin(correlation))) if len(correlation) else 0.0
        fig.update_yaxes(range=[low, 1.0], title_text="correlation r of ψ_D (dotted)", secondary_y=True, showgrid=False,
                         tickmode="array", tickvals=[v for v in (-1.0, -0.5, 0.0, 0.25, 0.5, 0.75, 1.0) if v >= low])
    return theme.compact(fig)
