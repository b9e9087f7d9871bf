"""The "why didn't KD help?" charts: per-class agreement and gain, the dark knowledge the student
received, the teacher's reliability diagram (Guo et al. 2017) and the T x alpha response surface.

Data in, plotly Figure out: labels and colours arrive as arguments (the present layer reads them
from the runs' methods), so these functions know nothing about runs or methods.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from . import theme

TITLE_WIDTH = 60  # characters per title line: these charts are drawn two to a row

GAIN_UP, GAIN_DOWN = theme.OKABE_ITO["blue"], theme.OKABE_ITO["vermillion"]


def _per_class(values: Sequence[float], class_names: Sequence[str], what: str) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64)
    if out.shape != (len(class_names),):
        raise ValueError(f"{what}: {out.shape} values for {len(class_names)} classes")
    return out


def _percent(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{100 * value:.0f}%"


def agreement_bars(class_names: Sequence[str], agreement: Sequence[float], colour: str, student_label: str = "student",
                   title: str | None = None) -> go.Figure:
    """Per true class, the fraction of test images on which the student predicts the teacher's class."""
    values = _per_class(agreement, class_names, "agreement")
    fig = go.Figure(go.Bar(x=[str(n) for n in class_names], y=100 * values, marker_color=colour, name=student_label,
                           text=[_percent(v) for v in values], textposition="outside",
                           hovertemplate="class %{x}: %{y:.1f}% agree<extra></extra>"))
    fig.update_yaxes(range=[0, 110])
    worst = int(np.nanargmin(values)) if np.isfinite(values).any() else 0
    title = title or f"{student_label} agrees with the teacher least on class {class_names[worst]}"
    return theme.wrap_figure_title(theme.apply(fig, title, x_title="true class",
                                               y_title="agreement with the teacher (% of test images)"), TITLE_WIDTH)


def gain_bars(class_names: Sequence[str], gain: Sequence[float], title: str | None = None) -> go.Figure:
    """Per class, test accuracy of the distilled student minus the scratch student's (percentage
    points): above zero where distillation helped, below where it hurt."""
    values = 100 * _per_class(gain, class_names, "gain")
    colours = [GAIN_UP if v >= 0 else GAIN_DOWN for v in np.nan_to_num(values)]
    fig = go.Figure(go.Bar(x=[str(n) for n in class_names], y=values, marker_color=colours, showlegend=False,
                           text=[f"{v:+.1f}" if np.isfinite(v) else "" for v in values], textposition="outside",
                           hovertemplate="class %{x}: %{y:+.1f} points<extra></extra>"))
    fig.add_hline(y=0, line_color="#555", line_width=1)
    helped, hurt = int(np.sum(values > 0)), int(np.sum(values < 0))
    title = title or f"Distillation helped on {helped} classes and hurt on {hurt}"
    return theme.wrap_figure_title(theme.apply(fig, title, x_title="true class",
                                               y_title="gain over scratch (accuracy points)"), TITLE_WIDTH)


def non_target_mass_bars(class_names: Sequence[str], from_right: Sequence[float], from_wrong: Sequence[float], T: float,
                         colour: str, threshold: float | None = None, right_mean: float | None = None,
                         title: str | None = None) -> go.Figure:
    """Per class, the mean probability the teacher's soft targets at ``T`` put on the other classes
    (Hinton et al. 2015's dark knowledge) over the student's training images, stacked: the part
    from images the teacher classifies correctly (``from_right``) and from those it gets wrong
    (``from_wrong``: there the soft target points at a wrong class). ``threshold``: a dashed line
    below which soft targets are nearly the labels; ``right_mean``: the mean over correct images."""
    right = _per_class(from_right, class_names, "non-target mass (teacher right)")
    wrong = _per_class(from_wrong, class_names, "non-target mass (teacher wrong)")
    x = [str(n) for n in class_names]
    fig = go.Figure([
        go.Bar(x=x, y=100 * right, marker_color=colour, name="where the teacher is right: dark knowledge",
               hovertemplate="class %{x}: %{y:.2f}% from images the teacher gets right<extra></extra>"),
        go.Bar(x=x, y=100 * wrong, marker_color=theme.OKABE_ITO["grey"], name="where it is wrong: a wrong label",
               text=[_percent(v) if v >= 0.01 or not np.isfinite(v) else f"{100 * v:.2f}%" for v in right + wrong],
               textposition="outside", hovertemplate="class %{x}: %{y:.2f}% from images it gets wrong<extra></extra>"),
    ])
    fig.update_layout(barmode="stack")
    if threshold is not None:
        fig.add_hline(y=100 * threshold, line_dash="dash", line_color="#555",
                      annotation_text=f"{100 * threshold:g}%: little dark knowledge below", annotation_position="top right")
    if title is None and right_mean is not None:
        title = f"Dark knowledge at T = {T:g}: {100 * right_mean:.1f}% off the true class where the teacher is right"
    fig.update_yaxes(rangemode="tozero")
    theme.apply(fig, title or f"Soft targets at T = {T:g}: probability off the true class", x_title="true class",
                y_title="off the true class (% of the soft target)")
    return theme.wrap_figure_title(theme.legend_below(fig), TITLE_WIDTH)


def reliability_diagram(edges: Sequence[float], accuracy: Sequence[float], confidence: Sequence[float],
                        counts: Sequence[int], ece: float, colour: str, who: str = "teacher") -> go.Figure:
    """Guo et al. 2017, figure 1: per confidence bin, the accuracy (bars) beside the diagonal of a
    calibrated model; the gap to each bin's mean confidence in grey. ECE (eq. 3) in the title."""
    edges = np.asarray(edges, dtype=np.float64)
    acc, conf = np.asarray(accuracy, dtype=np.float64), np.asarray(confidence, dtype=np.float64)
    counts = np.asarray(counts)
    if not len(acc) == len(conf) == len(counts) == len(edges) - 1:
        raise ValueError(f"{len(edges)} bin edges need {len(edges) - 1} accuracies, confidences and counts")
    centres, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    filled = counts > 0
    fig = go.Figure()
    fig.add_trace(go.Bar(x=centres[filled], y=acc[filled], width=width[filled], marker_color=colour,
                         marker_line_color="white", name="accuracy", customdata=counts[filled],
                         hovertemplate="confidence %{x:.2f}: accuracy %{y:.2f} (%{customdata} images)<extra></extra>"))
    gap_low = np.minimum(acc, conf)[filled]
    fig.add_trace(go.Bar(x=centres[filled], y=np.abs(acc - conf)[filled], base=gap_low, width=width[filled] * 0.5,
                         marker_color="rgba(127,127,127,0.55)", name="gap to confidence",
                         hovertemplate="mean confidence vs accuracy: gap %{y:.3f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dash", "color": "#555"},
                             name="perfectly calibrated", hoverinfo="skip"))
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1.02])
    mood = "overconfident" if np.sum((conf - acc)[filled] * counts[filled]) > 0 else "underconfident"
    title = f"The {who}'s calibration: ECE = {100 * ece:.1f}% (mostly {mood})"
    theme.apply(fig, title, x_title="confidence (largest softmax probability)", y_title="accuracy in the bin")
    return theme.wrap_figure_title(theme.legend_below(fig), TITLE_WIDTH)  # a legend at the top hid the title


def response_surface(temperatures: Sequence[float], alphas: Sequence[float], gain: np.ndarray,
                     run_counts: np.ndarray | None = None, current: tuple[float, float] | None = None,
                     title: str | None = None) -> go.Figure:
    """A T x alpha heatmap of final test accuracy minus the scratch student's (percentage points),
    centred on zero (blue: distillation helped); empty cells had no run; ``current`` is ringed."""
    values = 100 * np.asarray(gain, dtype=np.float64)
    if values.shape != (len(alphas), len(temperatures)):
        raise ValueError(f"gain has shape {values.shape}, expected ({len(alphas)} alphas, {len(temperatures)} temperatures)")
    x, y = [f"{t:g}" for t in temperatures], [f"{a:g}" for a in alphas]
    counts = np.ones_like(values) if run_counts is None else np.asarray(run_counts)
    text = [[("" if not np.isfinite(v) else f"{v:+.1f}" + (f" ({int(n)} runs)" if n > 1 else "")) for v, n in zip(row, nrow)]
            for row, nrow in zip(values, counts)]
    span = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    fig = go.Figure(go.Heatmap(x=x, y=y, z=values, text=text, texttemplate="%{text}", colorscale="RdBu", zmid=0,
                               zmin=-max(span, 0.1), zmax=max(span, 0.1), colorbar={"title": {"text": "points"}},
                               hovertemplate="T = %{x}, alpha = %{y}: %{z:+.2f} points over scratch<extra></extra>"))
    if current is not None and f"{current[0]:g}" in x and f"{current[1]:g}" in y:
        fig.add_trace(go.Scatter(x=[f"{current[0]:g}"], y=[f"{current[1]:g}"], mode="markers", name="this run",
                                 marker={"symbol": "square-open", "size": 46, "color": "#222", "line": {"width": 3}},
                                 hoverinfo="skip"))
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category")
    if title is None and np.isfinite(values).any():
        i, j = np.unravel_index(np.nanargmax(values), values.shape)
        title = f"Best so far: T = {x[j]}, alpha = {y[i]} ({values[i, j]:+.1f} points over scratch)"
    return theme.apply(fig, title or "No finished runs to compare yet", x_title="temperature T",
                       y_title="alpha (weight of the soft targets)")


__all__ = ["agreement_bars", "gain_bars", "non_target_mass_bars", "reliability_diagram", "response_surface"]
