"""A sweep's charts: the metric over two swept fields (mean and spread over seeds), every trial on
parallel coordinates, and the best trials as a table.

Data in, plotly Figure out: the cells, columns and rows arrive computed (``kdviz.present.sweep``), so
these functions know nothing of Ray, runs or configs. Accuracies arrive as fractions and are drawn in
percent.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from . import theme


def _cell_text(mean: float, std: float, count: int) -> str:
    if not np.isfinite(mean):
        return ""
    spread = f" ± {100 * std:.1f}" if count > 1 and np.isfinite(std) else ""
    return f"{100 * mean:.1f}{spread}" + (f"<br>n={count}" if count > 1 else "")


def sweep_heatmap(x_values: Sequence, y_values: Sequence, mean: np.ndarray, std: np.ndarray, count: np.ndarray,
                  x_title: str, y_title: str, metric_title: str = "test accuracy (%)",
                  title: str | None = None) -> go.Figure:
    """``mean[i][j]``: the metric's mean over the trials with ``y_values[i]`` and ``x_values[j]`` (seeds
    and any other swept field pooled); each cell's text is the mean ± the standard deviation over those
    trials, and n; empty cells have no evaluation yet."""
    means, stds, counts = (np.asarray(a, dtype=np.float64) for a in (mean, std, count))
    shape = (len(y_values), len(x_values))
    if means.shape != shape or stds.shape != shape or counts.shape != shape:
        raise ValueError(f"cells have shapes {means.shape}, {stds.shape}, {counts.shape}; expected {shape} "
                         f"({len(y_values)} {y_title} x {len(x_values)} {x_title})")
    x, y = [_label(v) for v in x_values], [_label(v) for v in y_values]
    text = [[_cell_text(m, s, int(n)) for m, s, n in zip(mr, sr, nr)] for mr, sr, nr in zip(means, stds, counts)]
    spread = [[f"{100 * s:.2f}" if np.isfinite(s) else "n/a" for s in row] for row in stds]
    fig = go.Figure(go.Heatmap(
        x=x, y=y, z=100 * means, text=text, texttemplate="%{text}", customdata=np.dstack([spread, counts]),
        colorscale=theme.SEQUENTIAL, colorbar={"title": {"text": "%"}}, hoverongaps=False,
        hovertemplate=(f"{x_title} = %{{x}}, {y_title} = %{{y}}<br>{metric_title}: %{{z:.2f}} "
                       "(sd %{customdata[0]}, n = %{customdata[1]})<extra></extra>")))
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category")
    if title is None:
        title = _best_title(means, x, y, x_title, y_title)
    return theme.apply(fig, title, x_title=x_title, y_title=y_title)


def _best_title(means: np.ndarray, x: list[str], y: list[str], x_title: str, y_title: str) -> str:
    if not np.isfinite(means).any():
        return "The cells fill in as trials report"
    i, j = np.unravel_index(np.nanargmax(means), means.shape)
    return f"Best so far: {x_title} = {x[j]}, {y_title} = {y[i]} ({100 * means[i, j]:.1f}%)"


def sweep_parallel(columns: dict[str, Sequence], metric: Sequence[float], metric_title: str = "test accuracy (%)",
                   title: str | None = None) -> go.Figure:
    """Every trial as a line through its swept values and its metric (coloured by the metric).
    A column of words (a model name) gets one tick per value."""
    scores = 100 * np.asarray(metric, dtype=np.float64)
    dimensions = []
    for name, values in columns.items():
        if len(values) != len(scores):
            raise ValueError(f"column {name!r} has {len(values)} values for {len(scores)} trials")
        dimensions.append(_dimension(name, list(values)))
    finite = scores[np.isfinite(scores)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 100.0)
    dimensions.append({"label": metric_title, "values": scores.tolist(), "range": [low, max(high, low + 1e-6)]})
    # plain lists, not numpy arrays: callers test trace colours for truth (an array has none)
    fig = go.Figure(go.Parcoords(line={"color": scores.tolist(), "colorscale": theme.SEQUENTIAL, "showscale": True,
                                       "cmin": low, "cmax": max(high, low + 1e-6)}, dimensions=dimensions))
    fig = theme.apply(fig, title or f"Every trial: its values and its {metric_title.split(' (')[0]}")
    fig.update_layout(margin={"l": 60, "r": 60, "t": 90, "b": 40})
    return fig


def _dimension(name: str, values: list) -> dict:
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return {"label": name, "values": [float(v) for v in values]}
    labels = sorted({_label(v) for v in values})
    index = {label: i for i, label in enumerate(labels)}
    return {"label": name, "values": [index[_label(v)] for v in values], "tickvals": list(range(len(labels))),
            "ticktext": labels}


def best_runs_table(rows: Sequence[dict], columns: Sequence[str], title: str = "The best trials") -> go.Figure:
    """A table of ``rows`` (dicts) in ``columns`` order; floats below 1 in a ``*acc*`` column in percent."""
    cells = [[_cell(column, row.get(column)) for row in rows] for column in columns]
    narrow = {"rank": 0.5, "step": 0.6, "state": 0.9}  # relative widths; the rest share the room
    fig = go.Figure(go.Table(header={"values": [f"<b>{c}</b>" for c in columns], "align": "left"},
                             cells={"values": cells, "align": "left"},
                             columnwidth=[narrow.get(c, 1.6) for c in columns]))
    fig = theme.apply(fig, title, height=max(160, 60 + 28 * (len(rows) + 1)))
    fig.update_layout(margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


def _cell(column: str, value) -> str:
    if value is None:
        return ""
    if "acc" in column and isinstance(value, float):
        return f"{100 * value:.2f}%"
    return _label(value)


def _label(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


__all__ = ["best_runs_table", "sweep_heatmap", "sweep_parallel"]
