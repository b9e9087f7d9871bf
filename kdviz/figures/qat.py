"""Charts of quantization-aware training (Jacob et al. 2018) and learned step sizes (LSQ, Esser et
al., ICLR 2020):

* ``step_size_curve``: each layer's step size against training steps (LSQ's learned s, or QAT's
  min/max scale S), log y, so the steps of layers of very different ranges share one chart;
* ``weight_grid_histogram``: a layer's latent float weights with the quantization grid drawn on them
  (the values k * s they snap to); redrawn per snapshot, the grid lines move while the steps learn;
* ``accuracy_against_bits``: test accuracy against bits, post-training quantization beside QAT and
  LSQ, with the float model as a line.

Data in, figure out: series, arrays, labels and colours are the caller's.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from . import theme

_BARS = theme.OKABE_ITO["blue"]
_GRID = theme.OKABE_ITO["vermillion"]
_FLOAT = theme.ROLE_COLORS["baseline"]


def step_size_curve(series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                    colours: Sequence[str] | None = None, what: str = "weight") -> go.Figure:
    """Each layer's step size against training steps: ``{layer: (steps, sizes)}``."""
    if not series:
        raise ValueError("no layers to draw: give at least one layer's step sizes")
    palette = list(colours) if colours else theme.SERIES
    fig = go.Figure()
    changes = []
    for i, (layer, (steps, sizes)) in enumerate(series.items()):
        x, y = np.asarray(steps, dtype=float), np.asarray(sizes, dtype=float)
        if x.shape != y.shape:
            raise ValueError(f"layer {layer!r}: {y.size} step sizes for {x.size} training steps")
        if y.size and not (np.isfinite(y).all() and (y > 0).all()):
            raise ValueError(f"layer {layer!r}: step sizes must be positive and finite")
        fig.add_scatter(x=x, y=y, mode="lines+markers", name=layer, line={"color": palette[i % len(palette)], "width": 2},
                        hovertemplate="step %{x}: s = %{y:.4g}<extra>" + layer + "</extra>")
        if y.size > 1:
            changes.append((abs(np.log(y[-1] / y[0])), layer, y[-1] / y[0]))
    if changes and max(changes)[0] > 1e-3:
        _, layer, ratio = max(changes)
        title = f"{what.capitalize()} step sizes: {layer}'s changed most ({ratio:.2f}x its start)"
    else:
        title = f"{what.capitalize()} step size of each layer"
    fig.update_yaxes(type="log")
    return theme.compact(theme.apply(fig, title, x_title="training step (optimizer updates)",
                                     y_title=f"{what} step size s (log)"))


MAX_DRAWN_LEVELS = 32  # finer grids are drawn by their two ends only


def _vlines(xs: np.ndarray, top: float) -> tuple[list, list]:
    x, y = [], []
    for v in xs:
        x += [float(v), float(v), None]
        y += [0.0, top, None]
    return x, y


def weight_grid_histogram(hist_counts: Sequence[int], hist_edges: Sequence[float], grid: Sequence[float],
                          layer: str = "", bits: int | None = None, step: int | None = None,
                          grid_colour: str = _GRID) -> go.Figure:
    """The layer's latent float weights (histogram) and the grid of values they are quantized to.

    What to notice: at few bits the grid is coarse and its outer lines clip the tails; LSQ moves the
    lines (its step is learned) while QAT's follow the weights' range."""
    counts, edges = np.asarray(hist_counts, dtype=float), np.asarray(hist_edges, dtype=float)
    if counts.size and edges.size != counts.size + 1:
        raise ValueError(f"hist_edges needs {counts.size + 1} values for {counts.size} counts, got {edges.size}")
    levels = np.asarray(grid, dtype=float).ravel()
    if levels.size < 2 or not np.isfinite(levels).all():
        raise ValueError("the quantization grid needs at least two finite levels")
    fig = go.Figure()
    if counts.size:
        fig.add_bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges), name="latent weights",
                    marker_color=_BARS, opacity=0.5, hovertemplate="w = %{x:.4f}: %{y} weights<extra></extra>")
    top = float(counts.max()) if counts.size else 1.0
    drawn = levels if levels.size <= MAX_DRAWN_LEVELS else levels[[0, -1]]  # 256 lines hid the histogram
    name = (f"grid ({levels.size} levels)" if levels.size <= MAX_DRAWN_LEVELS
            else f"grid: {levels.size} levels, too fine to draw; its ends")
    x, y = _vlines(drawn, top * 1.05)
    fig.add_scatter(x=x, y=y, mode="lines", name=name, line={"color": grid_colour, "width": 1.5}, hoverinfo="skip")
    span = float(levels[1] - levels[0])
    clipped = ""
    if counts.size:
        centres = (edges[:-1] + edges[1:]) / 2
        outside = counts[(centres < levels.min() - span / 2) | (centres > levels.max() + span / 2)].sum()
        clipped = f"; {100 * outside / counts.sum():.1f}% of weights beyond the grid are clipped"
    fig.update_layout(bargap=0)
    where = f"{layer}: " if layer else ""
    when = f" at step {step}" if step is not None else ""
    width = f"{bits} bits, " if bits is not None else ""
    return theme.apply(fig, f"{where}weights and the grid they snap to{when}", x_title="weight value",
                       y_title="number of weights", subtitle=f"{width}step s = {span:.4g}{clipped}")


def accuracy_against_bits(curves: Mapping[str, Mapping[int, float]], colours: Mapping[str, str] | None = None,
                          float_accuracy: float | None = None) -> go.Figure:
    """Test accuracy (in [0, 1]) against bits, one line per approach (``{"PTQ": {8: 0.98, 4: 0.9}}``)."""
    if not curves:
        raise ValueError("no results to draw: give at least one approach's accuracies")
    fig = go.Figure()
    for i, (name, curve) in enumerate(curves.items()):
        bits = sorted(int(b) for b in curve)
        colour = (colours or {}).get(name, theme.SERIES[i % len(theme.SERIES)])
        fig.add_scatter(x=bits, y=[100 * float(curve[b]) for b in bits], mode="lines+markers", name=name,
                        line={"color": colour, "width": 2.5}, marker={"size": 9},
                        hovertemplate=f"{name}<br>%{{x}} bits: %{{y:.2f}}%<extra></extra>")
    if float_accuracy is not None:
        fig.add_hline(y=100 * float_accuracy, line={"dash": "dot", "color": _FLOAT},
                      annotation_text=f"float: {100 * float_accuracy:.2f}%", annotation_position="bottom right")
    fig.update_xaxes(dtick=1, autorange="reversed")
    return theme.apply(fig, bits_title(curves), x_title="bits per weight and activation (fewer to the right)",
                       y_title="test accuracy (%)")


def bits_title(curves: Mapping[str, Mapping[int, float]]) -> str:
    """What the chart shows now: at the fewest bits two approaches share, the best against the worst
    ("Accuracy against bits: at 2 bits LSQ 96.4 % against PTQ 95.6 %"), never a fixed claim."""
    shared = [b for b in {int(b) for curve in curves.values() for b in curve}
              if sum(b in {int(k) for k in curve} for curve in curves.values()) >= 2]
    if not shared:
        return "Accuracy against bits"
    fewest = min(shared)
    at = sorted(((float(curve[b]), name) for name, curve in curves.items() for b in curve if int(b) == fewest),
                reverse=True)
    (best, leader), (worst, last) = at[0], at[-1]
    return f"Accuracy against bits: at {fewest} bits {leader} {100 * best:.1f} % against {last} {100 * worst:.1f} %"
