"""Charts of a vision transformer's attention while a student distils from a teacher (TinyBERT, Jiao et
al. 2020, eqs. 7-11; Dosovitskiy et al. 2021's ViT).

* ``head_maps``: the class token's attention over the patch grid, one small heatmap per layer (rows)
  and head (columns), for one probe digit: where each head looks when it forms the prediction;
* ``token_matrices``: one layer-and-head's full N x N attention matrix (every token's row), teacher
  beside student: what eq. 7 compares entry by entry;
* ``rollout_maps``: the probe digit, and the attention rollout's class-token row (Abnar & Zuidema 2020)
  of teacher and student over the patches: where the whole network looks;
* ``distill_loss_curve``: the four losses against training steps;
* ``accuracy_race``: test accuracy of runs against steps, with the teacher as a line.

Data in, figure out: attention is plain arrays (heads x N x N with N = 1 + patches, row 0 the class
token), labels and colours arrive as arguments (no engine, no method).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import theme

TEACHER_COLOUR = theme.ROLE_COLORS["teacher"]
STUDENT_COLOUR = theme.ROLE_COLORS["transformer student"]


def _layers(name: str, layers: Sequence[Any], grid: tuple[int, int]) -> list[np.ndarray]:
    out = [np.asarray(a, dtype=np.float64) for a in layers]
    if not out:
        raise ValueError(f"{name}: no attention layers to draw")
    n = 1 + int(grid[0]) * int(grid[1])
    for i, a in enumerate(out):
        if a.ndim != 3 or a.shape[1:] != (n, n):
            raise ValueError(f"{name} layer {i + 1}: attention must be (heads, {n}, {n}) for a {grid[0]}x{grid[1]} "
                             f"patch grid plus the class token, got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"{name} layer {i + 1} holds values that are not finite")
    return out


def _cls_map(attention: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Row 0 of an (N, N) matrix over the patches, as the (rows, cols) patch grid."""
    return attention[0, 1:].reshape(int(grid[0]), int(grid[1]))


def head_maps(layers: Sequence[Any], grid: tuple[int, int], label: str = "teacher", colour: str = TEACHER_COLOUR,
              zmax: float | None = None) -> go.Figure:
    """The class token's attention over the patch grid per layer (rows) and head (columns), one colour
    scale from 0 to ``zmax`` (default: the largest weight), so equal colours mean equal attention."""
    maps = _layers(label, layers, grid)
    rows, cols = len(maps), max(a.shape[0] for a in maps)
    top = float(zmax) if zmax else max(float(_cls_map(h, grid).max()) for a in maps for h in a) or 1.0
    fig = make_subplots(rows=rows, cols=cols, horizontal_spacing=0.03, vertical_spacing=0.04,
                        row_titles=[f"layer {i + 1}" for i in range(rows)],
                        column_titles=[f"head {j + 1}" for j in range(cols)])
    hover = "patch row %{y}, column %{x}<br>attention %{z:.3f}<extra>" + label + " %{fullData.name}</extra>"
    for i, a in enumerate(maps):
        for j, head in enumerate(a):
            fig.add_trace(go.Heatmap(z=_cls_map(head, grid), name=f"layer {i + 1} head {j + 1}", coloraxis="coloraxis",
                                     hovertemplate=hover), i + 1, j + 1)
    fig.update_layout(coloraxis={"colorscale": theme.SEQUENTIAL, "cmin": 0.0, "cmax": top,
                                 "colorbar": {"title": {"text": "weight"}, "thickness": 10, "len": 0.8}})
    fig.update_yaxes(autorange="reversed", showticklabels=False)
    fig.update_xaxes(showticklabels=False)
    theme.apply(fig, f"<span style='color:{colour}'>{label}</span>: where the class token looks",
                height=110 + 95 * rows, subtitle="rows: layers, columns: heads; each square: the probe digit's "
                                                 "patches,<br>bright where the class token attends (softmax row)")
    fig.update_layout(margin={"l": 20, "r": 60, "t": 120, "b": 20})  # room for the two-line subtitle above the head titles
    return fig


def token_matrices(teacher: Any, student: Any, layer_label: str, teacher_label: str = "teacher",
                   student_label: str = "student") -> go.Figure:
    """One layer-and-head's N x N attention matrix of teacher and student (rows: the attending token,
    0 = class token; columns: the attended one), on one scale, with their mean squared difference."""
    t, s = np.asarray(teacher, dtype=np.float64), np.asarray(student, dtype=np.float64)
    if t.ndim != 2 or t.shape != s.shape or t.shape[0] != t.shape[1]:
        raise ValueError(f"teacher {t.shape} and student {s.shape} must be square attention matrices of one size")
    mse = float(((t - s) ** 2).mean())
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08, subplot_titles=(teacher_label, student_label))
    hover = "token %{y} attends to token %{x}: %{z:.3f}<extra>%{fullData.name}</extra>"
    for col, (label, z) in enumerate(((teacher_label, t), (student_label, s)), start=1):
        fig.add_trace(go.Heatmap(z=z, name=label, coloraxis="coloraxis", hovertemplate=hover), 1, col)
    fig.update_layout(coloraxis={"colorscale": theme.SEQUENTIAL, "cmin": 0.0, "cmax": float(max(t.max(), s.max())) or 1.0,
                                 "colorbar": {"thickness": 10, "len": 0.8}})
    fig.update_yaxes(autorange="reversed", title_text="attending token (0 = class)", row=1, col=1)
    fig.update_xaxes(title_text="attended token")
    return theme.apply(fig, f"{layer_label}: the matrices eq. 7 compares, MSE {mse:.2g}", height=380,
                       subtitle="the attention-matrix loss pulls the right matrix towards the left one, entry by entry")


def rollout_maps(image: Any, teacher_rollout: Any, student_rollout: Any, grid: tuple[int, int],
                 teacher_label: str = "teacher", student_label: str = "student") -> go.Figure:
    """The probe digit, then the class-token row of each model's attention rollout over the patch grid."""
    img = np.asarray(image, dtype=np.float64).squeeze()
    t, s = np.asarray(teacher_rollout, dtype=np.float64), np.asarray(student_rollout, dtype=np.float64)
    n = 1 + int(grid[0]) * int(grid[1])
    if img.ndim != 2 or t.shape != (n, n) or s.shape != (n, n):
        raise ValueError(f"rollouts must be ({n}, {n}) and the image 2-D, got {t.shape}, {s.shape}, {img.shape}")
    tm, sm = _cls_map(t, grid), _cls_map(s, grid)
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.06,
                        subplot_titles=("probe digit", f"{teacher_label} rollout", f"{student_label} rollout"))
    fig.add_trace(go.Heatmap(z=img, colorscale="Greys", zmin=0.0, zmax=1.0, showscale=False, hoverinfo="skip"), 1, 1)
    hover = "patch row %{y}, column %{x}<br>rolled-out attention %{z:.3f}<extra>%{fullData.name}</extra>"
    for col, (label, z) in enumerate(((teacher_label, tm), (student_label, sm)), start=2):
        fig.add_trace(go.Heatmap(z=z, name=label, coloraxis="coloraxis", hovertemplate=hover), 1, col)
    fig.update_layout(coloraxis={"colorscale": theme.SEQUENTIAL, "cmin": 0.0, "cmax": float(max(tm.max(), sm.max())) or 1.0,
                                 "colorbar": {"thickness": 10, "len": 0.8}})
    fig.update_yaxes(autorange="reversed", showticklabels=False)
    fig.update_xaxes(showticklabels=False)
    gap = float(np.abs(tm - sm).sum())
    return theme.apply(fig, f"Attention rollout: where the whole network looks (L1 gap {gap:.2f})", height=330,
                       subtitle="Abnar & Zuidema 2020: the layers' head-mean attention, each mixed half-and-half with "
                                "the residual path, multiplied through; the class token's row")


def distill_loss_curve(steps: Sequence[float], losses: Mapping[str, Sequence[float]],
                       colours: Sequence[str] | None = None) -> go.Figure:
    """Each distillation loss (weighted, as trained) against training steps, log y."""
    x = np.asarray(steps, dtype=np.float64)
    if not losses:
        raise ValueError("no losses to draw: the run trains on none of the four")
    palette = list(colours) if colours else theme.SERIES
    fig = go.Figure()
    for i, (name, values) in enumerate(losses.items()):
        y = np.asarray(values, dtype=np.float64)
        if y.shape != x.shape:
            raise ValueError(f"loss {name!r}: {y.size} values for {x.size} steps")
        fig.add_scatter(x=x, y=np.where(y > 0, y, np.nan), mode="lines", name=name,
                        line={"color": palette[i % len(palette)], "width": 2},
                        hovertemplate="step %{x}: %{y:.4g}<extra>" + name + "</extra>")
    fig.update_yaxes(type="log")
    return theme.compact(theme.apply(fig, "The four TinyBERT losses as the student trains", x_title="training step",
                                     y_title="weighted loss (log)"))


def accuracy_race(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], colours: Mapping[str, str],
                  teacher_accuracy: float | None = None) -> go.Figure:
    """Test accuracy (%) of each run against steps; the teacher's final accuracy as a dashed line."""
    fig = go.Figure()
    for label, (steps, acc) in series.items():
        fig.add_scatter(x=list(steps), y=[100 * float(a) for a in acc], mode="lines+markers", name=label,
                        line={"color": colours.get(label, theme.SERIES[0]), "width": 2},
                        hovertemplate="step %{x}: %{y:.1f} %<extra>" + label + "</extra>")
    if teacher_accuracy is not None:
        fig.add_hline(y=100 * float(teacher_accuracy), line={"color": TEACHER_COLOUR, "dash": "dash"},
                      annotation_text=f"teacher {100 * float(teacher_accuracy):.1f} %")
    lasts = {label: float(acc[-1]) for label, (_, acc) in series.items() if len(acc)}
    title = "Test accuracy"
    if len(lasts) >= 2:
        best = max(lasts, key=lasts.get)
        title = f"{best} leads at {100 * lasts[best]:.1f} %"
    return theme.compact(theme.apply(fig, title, x_title="training step", y_title="test accuracy (%)"))
