"""Charts for FSP distillation (Yim et al., "A Gift from Knowledge Distillation", CVPR 2017).

* ``fsp_heatmaps``: teacher, student and difference FSP matrices of one section pair (eq. 1).
* ``fsp_loss_curve``: the FSP loss (eq. 2) per pair and in total against training steps, log y.
* ``fast_optimisation``: test accuracy against iterations for FSP stage 1 + stage 2 and for the
  same student from scratch (section 4.1, "fast optimisation").
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import theme

# Three panels with room between the student's and the difference panel for the G colour bar and
# the difference panel's own tick labels (they overlapped at 0.08): the student panel ends here.
_GAP = 0.14
_STUDENT_RIGHT = 2 * (1 - 2 * _GAP) / 3 + _GAP


def _matrix(name: str, m) -> np.ndarray:
    arr = np.asarray(m, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D FSP matrix (C1, C2), got shape {arr.shape}")
    return arr


def fsp_heatmaps(teacher, student, difference=None, pair: Sequence[str] | str = ("in", "out")) -> go.Figure:
    """Teacher, student and (teacher - student) FSP matrices of one pair, side by side.

    Teacher and student share one sequential colour scale, so equal colours mean equal values;
    the difference uses a diverging scale centred on zero whose ends are the teacher's largest
    |G| (fixed over training, so the panel fades to white as the student matches). ``pair`` is ``(in_name, out_name)`` or a
    label such as ``"stage2_in->stage2_out"``. Rows are channels i of the first map, columns
    channels j of the second, as in G_ij (eq. 1).
    """
    t, s = _matrix("teacher", teacher), _matrix("student", student)
    if t.shape != s.shape:
        raise ValueError(f"teacher {t.shape} and student {s.shape} FSP matrices must have the same shape")
    d = t - s if difference is None else _matrix("difference", difference)
    if d.shape != t.shape:
        raise ValueError(f"difference {d.shape} must have the teacher's shape {t.shape}")
    a, b = (pair.split("->") + [""])[:2] if isinstance(pair, str) else (str(pair[0]), str(pair[1]))
    lo, hi = float(min(t.min(), s.min())), float(max(t.max(), s.max()))
    if hi <= lo:
        hi = lo + 1e-12
    # The difference is drawn on the teacher's own scale (not its own maximum), so it fades to white as
    # the student's matrix approaches the teacher's, and a large gap saturates instead of looking small.
    dmax = float(np.abs(t).max()) or float(np.abs(d).max()) or 1e-12
    fig = make_subplots(rows=1, cols=3, subplot_titles=("teacher G<sup>T</sup>", "student G<sup>S</sup>",
                                                       "difference G<sup>T</sup> − G<sup>S</sup>"),
                        horizontal_spacing=_GAP)
    hover = f"{a} channel %{{y}}<br>{b} channel %{{x}}<br>G = %{{z:.4g}}<extra>%{{fullData.name}}</extra>"
    for col, (name, z) in enumerate((("teacher", t), ("student", s)), start=1):
        fig.add_trace(go.Heatmap(z=z, name=name, coloraxis="coloraxis", hovertemplate=hover), row=1, col=col)
    fig.add_trace(go.Heatmap(z=d, name="difference", coloraxis="coloraxis2", hovertemplate=hover), row=1, col=3)
    fig.update_layout(
        coloraxis={"colorscale": theme.SEQUENTIAL, "cmin": lo, "cmax": hi,
                   "colorbar": {"title": {"text": "G"}, "x": _STUDENT_RIGHT + 0.01, "xanchor": "left", "len": 0.8,
                                "thickness": 12}},
        coloraxis2={"colorscale": theme.DIVERGING, "cmin": -dmax, "cmax": dmax,
                    "colorbar": {"title": {"text": "ΔG"}, "x": 1.0, "len": 0.8, "thickness": 12}},
    )
    fig.update_yaxes(autorange="reversed", title_text=f"channel i of {a} (index)", col=1)
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title_text=f"channel j of {b} (index)")
    frob = float(np.sqrt((d ** 2).sum()))
    rel = frob / (float(np.sqrt((t ** 2).sum())) or 1e-12)
    theme.apply(fig, f"FSP flow {a} → {b}: the student is {rel:.0%} off the teacher (‖ΔG‖_F = {frob:.3g})",
                height=360, subtitle="stage 1 drives the right panel to zero (white); it is drawn on the teacher's scale")
    fig.update_layout(margin={"r": 60, "t": 110})
    return fig


def fsp_loss_curve(
    steps: Sequence[float], total: Sequence[float], per_pair: Mapping[str, Sequence[float]] | None = None
) -> go.Figure:
    """The FSP loss (Yim et al. eq. 2) against training steps on a log axis, total and per pair.

    ``per_pair`` maps a pair label to one value per step. Non-positive values cannot be drawn on a
    log axis and are left out.
    """
    x = np.asarray(steps, dtype=np.float64)
    series = {"total": np.asarray(total, dtype=np.float64), **{k: np.asarray(v, dtype=np.float64) for k, v in (per_pair or {}).items()}}
    for name, y in series.items():
        if y.shape != x.shape:
            raise ValueError(f"FSP loss series {name!r} has {y.size} values for {x.size} steps")
    fig = go.Figure()
    for i, (name, y) in enumerate(series.items()):
        keep = y > 0
        is_total = name == "total"
        fig.add_scatter(
            x=x[keep], y=y[keep], mode="lines", name=name,
            line={"color": theme.OKABE_ITO["black"] if is_total else theme.SERIES[(i - 1) % len(theme.SERIES)],
                  "width": 2.5 if is_total else 1.5, "dash": "solid" if is_total else "dot"},
            hovertemplate=f"{name}<br>step %{{x}}: %{{y:.4g}}<extra></extra>",
        )
    fig.update_yaxes(type="log")
    positive = series["total"][series["total"] > 0]
    if positive.size >= 2 and positive[-1] < positive[0]:
        title = f"FSP loss fell {positive[0] / positive[-1]:.3g}x: the student's flow is closing in on the teacher's"
    elif positive.size >= 2:
        title = f"FSP loss rose {positive[-1] / positive[0]:.3g}x: lower the learning rate or check the pairs"
    else:
        title = "FSP loss: how far the student's flow between layers is from the teacher's"
    return theme.apply(fig, title, x_title="training step (iterations)", y_title="FSP loss (log scale)")


def _curve(name: str, iters, acc) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(iters, dtype=np.float64), np.asarray(acc, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size == 0:
        raise ValueError(f"{name}: iterations and accuracies must be equal-length non-empty 1-D sequences")
    if np.any((y < 0) | (y > 1)):
        raise ValueError(f"{name}: accuracies must be fractions in [0, 1]")
    return x, y


def fast_optimisation(
    scratch_iters: Sequence[float], scratch_accuracy: Sequence[float],
    stage2_iters: Sequence[float], stage2_accuracy: Sequence[float],
    stage1_steps: int,
    stage1_iters: Sequence[float] | None = None, stage1_accuracy: Sequence[float] | None = None,
    count_stage1: bool = True,
    name: str = "FSP",
) -> go.Figure:
    """Test accuracy (fractions in [0, 1], drawn in %) against iterations: scratch vs FSP.

    Stage-2 iterations count from 0 in their own run; with ``count_stage1`` they are shifted by
    ``stage1_steps`` so the FSP curve pays for stage 1 (a dotted line marks the boundary), otherwise
    both curves start at 0 as in the paper's comparison of main-task training. Stage-1 accuracies
    (optional) are drawn faintly: the student's classifier is untrained then. ``name`` is the
    stage-1 method's short name in legends and title ("FSP", or "FitNets" for hints stage 1).
    """
    sx, sy = _curve("scratch student", scratch_iters, scratch_accuracy)
    fx, fy = _curve(f"{name} stage 2", stage2_iters, stage2_accuracy)
    if int(stage1_steps) < 0:
        raise ValueError(f"stage1_steps must be non-negative, got {stage1_steps}")
    offset = float(stage1_steps) if count_stage1 else 0.0
    fig = go.Figure()
    fig.add_scatter(x=sx, y=100 * sy, mode="lines+markers", name="scratch student",
                    line={"color": theme.role_color("scratch student"), "width": 2.5},
                    hovertemplate="scratch<br>iteration %{x}: %{y:.2f}%<extra></extra>")
    if stage1_iters is not None and stage1_accuracy is not None and count_stage1:
        ax, ay = _curve(f"{name} stage 1", stage1_iters, stage1_accuracy)
        fig.add_scatter(x=ax, y=100 * ay, mode="lines", name=f"{name} stage 1 (no classification loss)", opacity=0.45,
                        line={"color": theme.role_color("fsp student"), "width": 1.5, "dash": "dot"},
                        hovertemplate=f"{name} stage 1<br>iteration %{{x}}: %{{y:.2f}}%<extra></extra>")
    fig.add_scatter(x=fx + offset, y=100 * fy, mode="lines+markers", name=f"{name} student (stage 2)",
                    line={"color": theme.role_color("fsp student"), "width": 2.5},
                    hovertemplate=f"{name} stage 2<br>iteration %{{x}}: %{{y:.2f}}%<extra></extra>")
    if count_stage1 and stage1_steps > 0:
        fig.add_vline(x=offset, line={"dash": "dot", "color": theme.OKABE_ITO["grey"]},
                      annotation_text="stage 1 → stage 2", annotation_position="top left")
    target = float(sy[-1])
    fig.add_hline(y=100 * target, line={"dash": "dash", "color": theme.role_color("scratch student"), "width": 1},
                  annotation_text=f"scratch final {100 * target:.2f}%", annotation_position="bottom right")
    reached = np.nonzero(fy >= target)[0]
    if reached.size:
        at = float(fx[reached[0]])
        title = (f"{name} reaches the scratch student's final accuracy after {at:g} stage-2 iterations "
                 f"({at / max(float(sx[-1]), 1.0):.0%} of scratch's {sx[-1]:g})")
    else:
        title = f"{name} stage 2 peaks at {100 * fy.max():.2f}%, short of scratch's final {100 * target:.2f}%"
    x_title = "iterations (stage 1 + stage 2)" if count_stage1 else "main-task iterations"
    return theme.apply(fig, title, x_title=x_title, y_title="test accuracy (%)")
