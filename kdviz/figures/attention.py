"""Charts of attention transfer (Zagoruyko & Komodakis, "Paying More Attention to Attention", ICLR 2017).

* ``attention_maps``: one probe image beside the teacher's and the student's spatial attention maps
  of one layer pair, Q/||Q||_2 with Q = vec(sum_c |A_c|^2) (section 3.1), on one colour scale;
* ``attention_distance_curve``: each pair's probe-batch distance mean_b ||q_S - q_T||_2 (the term
  of eq. 2 without beta/2) against training steps;
* ``distance_series``: those distances read from a run's evaluation records.

Data in, figure out: maps are plain arrays, labels and colours arrive as arguments, the metric key
is the caller's (this module knows no method and no engine).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import theme

TEACHER_COLOUR = theme.ROLE_COLORS["teacher"]
STUDENT_COLOUR = theme.OKABE_ITO["black"]
MAX_DISTANCE = float(np.sqrt(2.0))  # two unit vectors with non-negative entries are at most sqrt 2 apart


def _map(name: str, m: Any) -> np.ndarray:
    arr = np.asarray(m, dtype=np.float64)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"{name} must be a 2-D attention map (H, W), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds values that are not finite")
    return arr


def _coloured(text: str, colour: str) -> str:
    return f"<span style='color:{colour}'><b>{text}</b></span>"


def attention_maps(image: Any, teacher: Any, student: Any, pair: str, teacher_label: str = "teacher",
                   student_label: str = "student", teacher_colour: str = TEACHER_COLOUR,
                   student_colour: str = STUDENT_COLOUR) -> go.Figure:
    """The input image, then the teacher's and the student's normalised attention maps of ``pair``.

    ``teacher`` and ``student`` are unit-length maps (H, W) (Q/||Q||_2 reshaped), drawn on one
    sequential scale from 0 to the larger maximum, so equal colours mean equal attention. The title
    gives their distance ||q_S - q_T||_2 for this image (0: the same map; at most sqrt 2)."""
    img = _map("image", np.asarray(image).squeeze())
    t, s = _map("teacher map", teacher), _map("student map", student)
    if t.shape != s.shape:
        raise ValueError(f"teacher {t.shape} and student {s.shape} attention maps must have the same size")
    distance = float(np.linalg.norm(t - s))
    top = float(max(t.max(), s.max())) or 1.0
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.06, subplot_titles=(
        "input image", _coloured(f"{teacher_label} attention", teacher_colour),
        _coloured(f"{student_label} attention", student_colour)))
    fig.add_trace(go.Heatmap(z=img, colorscale="Greys", zmin=0.0, zmax=1.0, showscale=False, hoverinfo="skip"), 1, 1)
    hover = "row %{y}, column %{x}<br>attention %{z:.3f}<extra>%{fullData.name}</extra>"
    for col, (label, z) in enumerate(((teacher_label, t), (student_label, s)), start=2):
        fig.add_trace(go.Heatmap(z=z, name=label, coloraxis="coloraxis", hovertemplate=hover), 1, col)
    fig.update_layout(coloraxis={"colorscale": theme.SEQUENTIAL, "cmin": 0.0, "cmax": top,
                                 "colorbar": {"title": {"text": "q"}, "thickness": 12, "len": 0.8}})
    fig.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False)
    fig.update_xaxes(showticklabels=False, constrain="domain")
    for col in (2, 3):
        fig.update_yaxes(scaleanchor=f"x{col}", row=1, col=col)
    theme.apply(fig, f"Where do they look at {pair}? {student_label} vs {teacher_label}: ‖q_S − q_T‖₂ = {distance:.2f}",
                height=360, subtitle="bright = large sum of squared activations over channels; 0 = the same map, "
                                     "√2 = no overlap. Attention transfer pulls the right map towards the middle one.")
    fig.update_layout(margin={"t": 120, "r": 60})
    return fig


def distance_series(records: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], dict[str, list[float]]]:
    """(steps, {pair: distances}) from evaluation records that log ``key/<pair>`` per pair (the
    caller names ``key``, e.g. a method's probe-loss metric)."""
    prefix = f"{key}/"
    evals = [r for r in records if r.get("kind") == "eval" and any(k.startswith(prefix) for k in r)]
    pairs = [k[len(prefix):] for k in (evals[0] if evals else {}) if k.startswith(prefix)]
    return [float(r["step"]) for r in evals], {p: [float(r.get(prefix + p, np.nan)) for r in evals] for p in pairs}


def attention_distance_curve(steps: Sequence[float], distances: Mapping[str, Sequence[float]],
                             colours: Sequence[str] | None = None) -> go.Figure:
    """Each pair's probe-batch distance mean_b ||q_S − q_T||₂ against training steps (linear y, 0 to √2)."""
    x = np.asarray(steps, dtype=np.float64)
    if not len(distances):
        raise ValueError("no attention pairs to draw: give at least one pair's distances")
    palette = list(colours) if colours else theme.SERIES
    fig = go.Figure()
    for i, (pair, ys) in enumerate(distances.items()):
        y = np.asarray(ys, dtype=np.float64)
        if y.shape != x.shape:
            raise ValueError(f"pair {pair!r}: {y.size} distances for {x.size} steps")
        fig.add_scatter(x=x, y=y, mode="lines+markers", name=pair, line={"color": palette[i % len(palette)], "width": 2},
                        hovertemplate="step %{x}: %{y:.3f}<extra>" + pair + "</extra>")
    first = np.nanmean([v[0] for v in distances.values()]) if x.size else np.nan
    last = np.nanmean([v[-1] for v in distances.values()]) if x.size else np.nan
    title = (f"Attention distance fell {first / last:.2g}x: the student learns where to look" if x.size > 1 and last > 0
             and first > last else "Attention distance to the teacher on a fixed probe batch")
    fig.update_yaxes(rangemode="tozero")
    return theme.compact(theme.apply(fig, title, x_title="training step (optimizer updates)",
                                     y_title="mean ‖q_S − q_T‖₂ (0 to √2)"))
