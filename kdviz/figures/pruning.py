"""Pruning charts: masks, weight histograms with the threshold, sparsity, accuracy, sensitivity, norms.

Every function is a pure function of plain data (one layer's mask grid, a list of numbers), so a
scrubber over snapshot time just calls it again with another snapshot. Papers: Han et al. 2015
(magnitude pruning, figure 4's weight distribution before and after pruning; figure 6's
sensitivity curves), Li et al. 2017 (filters ranked by L1 norm, figure 2).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from . import theme

KEPT = theme.OKABE_ITO["blue"]
REMOVED = theme.OKABE_ITO["vermillion"]
THRESHOLD = theme.OKABE_ITO["black"]
PRUNED = theme.OKABE_ITO["orange"]  # the bars' default colour; a run's own colour comes as ``colour``


def mask_heatmap(mask: np.ndarray, layer: str, block: Sequence[int] = (1, 1), step: int | None = None) -> go.Figure:
    """One layer's mask as a heatmap of the percent of weights kept per cell (rows: output units,
    columns: inputs, conv filters flattened as in x kh x kw). ``mask`` is a bool mask, or the uint8
    percent grid of a pruning snapshot with its ``block`` size (``PruneSnapshot.mask(layer)``).

    What to notice: which inputs lose their connections first (for fc1 on MNIST, the border pixels).
    """
    grid = np.asarray(mask)
    grid = grid.reshape(grid.shape[0], -1)
    # Whole percents travel as one byte per cell (plotly sends numpy arrays as typed binary data): a
    # 128 x 128 grid is 16 KB to the browser at every slider move instead of 130 KB of float64.
    percent = grid.astype(np.uint8) * np.uint8(100) if grid.dtype == bool else grid
    if percent.dtype != np.uint8:
        percent = percent.astype(np.float64)
    br, bc = (int(b) for b in block)
    kept = float(percent.mean())  # exact for full-resolution masks, block-weighted otherwise
    fig = go.Figure(go.Heatmap(
        z=percent, x0=0, dx=bc, y0=0, dy=br, zmin=0, zmax=100, colorscale=theme.SEQUENTIAL,
        colorbar={"title": {"text": "% kept"}},
        hovertemplate="outputs %{y}, inputs %{x}: %{z:.0f}% kept<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed")
    when = f" at step {step}" if step is not None else ""
    cell = "each cell one weight" if (br, bc) == (1, 1) else f"each cell a {br} x {bc} block of weights"
    return theme.apply(
        fig, f"{layer}: about {kept:.1f}% of weights kept{when}",
        x_title="input index (column of the weight matrix)", y_title="output unit (row)",
        subtitle=f"dark = pruned, bright = kept; {cell}", height=420,
    )


def weight_histogram(counts: Sequence[float], edges: Sequence[float], layer: str,
                     thresholds: float | Sequence[float] | None = None, pruned: int | None = None) -> go.Figure:
    """Histogram of a layer's surviving weights with the pruning threshold(s) marked at +-t.

    What to notice: after magnitude pruning a gap opens around zero (Han et al. 2015, figure 4);
    retraining lets the survivors spread back towards it.
    """
    counts, edges = np.asarray(counts, dtype=np.float64), np.asarray(edges, dtype=np.float64)
    if edges.size != counts.size + 1:
        raise ValueError(f"need len(edges) == len(counts) + 1, got {edges.size} and {counts.size}")
    centres, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    fig = go.Figure(go.Bar(x=centres, y=counts, width=widths, marker_color=KEPT, name="kept weights",
                           hovertemplate="w near %{x:.3g}: %{y:.0f} weights<extra></extra>"))
    ts = [] if thresholds is None else np.atleast_1d(np.asarray(thresholds, dtype=np.float64)).tolist()
    ts = [t for t in ts if t > 0]  # a threshold of 0 prunes nothing: no band, no "gap" title
    for i, t in enumerate(ts):
        fig.add_vrect(x0=-t, x1=t, fillcolor=REMOVED, opacity=0.12, line_width=0)
        for x in (-t, t):
            fig.add_vline(x=x, line={"color": THRESHOLD, "dash": "dash", "width": 1.5})
        # inside the band, against its right edge: the band is where no weight survives, so no bar is hidden
        fig.add_annotation(x=t, y=1, yref="paper", text=f"threshold ±{t:.3g}", showarrow=False, xanchor="right",
                           yanchor="top", xshift=-4, yshift=-14 * i)
    note = f"; {pruned:,} weights pruned (shaded band)" if pruned is not None else ""
    title = f"{layer}: weight distribution"
    if ts:
        t = max(ts)
        inside = counts[(edges[:-1] >= -t) & (edges[1:] <= t)].sum()  # bins wholly within +-t
        title = (f"{layer}: a gap around zero where weights were pruned" if inside == 0
                 else f"{layer}: {int(inside):,} survivors drifted inside the threshold")
    fig.update_layout(bargap=0, showlegend=False)
    return theme.apply(fig, title, x_title="weight value", y_title="number of weights",
                       subtitle=f"{int(counts.sum()):,} weights kept{note}")


def sparsity_bars(layers: Sequence[str], sparsity: Sequence[float], targets: Sequence[float] | None = None,
                  sizes: Sequence[int] | None = None, colour: str = PRUNED) -> go.Figure:
    """Percent of weights pruned per layer (bars in ``colour``, the run's), with the scheduled
    targets as markers; with ``sizes`` (weights per layer) the title gives the overall sparsity,
    weighted by layer size.

    What to notice: large FC layers tolerate far more pruning than the last layer (Han et al. 2015
    keep 8% of LeNet-300-100's fc1 but 26% of fc3).
    """
    layers, sp = list(layers), 100 * np.asarray(sparsity, dtype=np.float64)
    if len(layers) != sp.size:
        raise ValueError(f"{len(layers)} layers but {sp.size} sparsity values")
    fig = go.Figure(go.Bar(x=layers, y=sp, marker_color=colour, name="pruned",
                           text=[f"{100 - s:.1f}% kept" for s in sp], textposition="outside",
                           hovertemplate="%{x}: %{y:.2f}% pruned<extra></extra>"))
    if targets is not None:
        fig.add_scatter(x=layers, y=100 * np.asarray(targets, dtype=np.float64), mode="markers", name="target",
                        marker={"symbol": "line-ew-open", "size": 28, "color": THRESHOLD, "line": {"width": 2}})
    fig.update_yaxes(range=[0, 110])
    if sizes is not None and len(sizes) == sp.size and sum(sizes) > 0:
        title = f"{np.average(sp, weights=np.asarray(sizes, dtype=np.float64)):.1f}% of all weights pruned"
    else:
        title = f"Sparsity per layer (unweighted mean {sp.mean():.1f}%)" if sp.size else "No pruned layers"
    return theme.apply(fig, title, x_title="layer", y_title="weights pruned (%)")


def accuracy_vs_sparsity(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                         baseline: float | None = None, current: tuple[float, float] | None = None,
                         colours: Mapping[str, str] | None = None) -> go.Figure:
    """Test accuracy against sparsity, one line per method (e.g. "pruned", "pruned + retrained"),
    the dense baseline as a horizontal line and the slider's current point as a marker. A curve's
    colour is ``colours[label]`` when given, else the next series colour.

    What to notice: accuracy holds flat up to a knee, then falls; retraining moves the knee right.
    """
    fig = go.Figure()
    for i, (label, (sparsities, accs)) in enumerate(curves.items()):
        colour = (colours or {}).get(label, theme.SERIES[i % len(theme.SERIES)])
        fig.add_scatter(x=100 * np.asarray(sparsities, dtype=np.float64), y=100 * np.asarray(accs, dtype=np.float64),
                        mode="lines+markers", name=label, line={"color": colour},
                        hovertemplate="%{x:.1f}% pruned: %{y:.2f}% accuracy<extra></extra>")
    if baseline is not None:
        fig.add_hline(y=100 * baseline, line={"color": theme.ROLE_COLORS["baseline"], "dash": "dot"},
                      annotation_text=f"dense {100 * baseline:.2f}%", annotation_position="bottom left")
    title = "Accuracy against sparsity"
    if current is not None:
        fig.add_scatter(x=[100 * current[0]], y=[100 * current[1]], mode="markers", name="now",
                        marker={"size": 13, "color": THRESHOLD, "symbol": "diamond"})
        title = f"{100 * current[0]:.1f}% of weights pruned: {100 * current[1]:.2f}% test accuracy"
    fig.update_xaxes(range=[0, 100])
    return theme.apply(fig, title, x_title="weights pruned (%)", y_title="test accuracy (%)")


def sensitivity_lines(curves: Mapping[str, Sequence[tuple[float, float]]], baseline: float | None = None) -> go.Figure:
    """Per-layer sensitivity: accuracy when only that layer is pruned, against its sparsity.

    What to notice: the layer whose curve drops first is the sensitive one; prune it least.
    """
    fig = go.Figure()
    drops = {}
    for i, (layer, points) in enumerate(curves.items()):
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        name = layer[: -len(".weight")] if layer.endswith(".weight") else layer
        fig.add_scatter(x=100 * pts[:, 0], y=100 * pts[:, 1], mode="lines+markers", name=name,
                        line={"color": theme.SERIES[i % len(theme.SERIES)]},
                        hovertemplate=name + ": %{x:.0f}% pruned -> %{y:.2f}%<extra></extra>")
        drops[name] = float(pts[0, 1] - pts[:, 1].min()) if len(pts) else 0.0
    if baseline is not None:
        fig.add_hline(y=100 * baseline, line={"color": theme.ROLE_COLORS["baseline"], "dash": "dot"})
    title = "Sensitivity of each layer to pruning"
    if drops:
        worst = max(drops, key=drops.get)
        title = f"{worst} is the most sensitive layer (loses {100 * drops[worst]:.1f} points)"
    fig.update_xaxes(range=[0, 100])
    return theme.apply(fig, title, x_title="sparsity of that layer alone (% pruned)", y_title="test accuracy (%)",
                       subtitle="one layer pruned at a time, others dense, no retraining")


def filter_norm_bars(norms: Sequence[float], layer: str, kept: Sequence[int] | None = None, norm: str = "l1") -> go.Figure:
    """Units (filters or neurons) sorted by norm, coloured kept or removed (Li et al. 2017, figure 2).

    What to notice: a long tail of small-norm units contributes little; they are removed first.
    """
    values = np.asarray(norms, dtype=np.float64)
    order = np.argsort(-values, kind="stable")
    keep = np.zeros(values.size, bool)
    if kept is not None:
        keep[np.asarray(kept, dtype=np.int64)] = True
    else:
        keep[:] = True
    colors = [KEPT if keep[i] else REMOVED for i in order]
    fig = go.Figure(go.Bar(x=np.arange(values.size), y=values[order], marker_color=colors,
                           customdata=order, hovertemplate="rank %{x}: unit %{customdata}, norm %{y:.3g}<extra></extra>"))
    removed = int((~keep).sum())
    fig.update_layout(bargap=0.05, showlegend=False)
    return theme.apply(fig, f"{layer}: {removed} of {values.size} units removed (smallest {norm.upper()} norm)",
                       x_title="rank (largest norm first)", y_title=f"{norm.upper()} norm of the unit's weights",
                       subtitle="blue = kept, vermillion = removed")


def storage_bars(rows: Sequence[Mapping]) -> go.Figure:
    """Bytes per layer stored dense, as CSR and in Han's relative-index format (``SizeReport.rows()``
    without its total row, or with it: the total row is dropped here)."""
    rows = [r for r in rows if not str(r["layer"]).startswith("total")]
    layers = [r["layer"] for r in rows]
    fig = go.Figure()
    for i, (key, label) in enumerate((("dense bytes", "dense float32"), ("CSR bytes", "CSR (int32 indices)"),
                                      ("relative-index bytes", "relative index (5/8-bit)"))):
        fig.add_bar(x=layers, y=[r[key] / 1024 for r in rows], name=label, marker_color=theme.SERIES[i],
                    hovertemplate="%{x}: %{y:.1f} KiB<extra>" + label + "</extra>")
    dense = sum(r["dense bytes"] for r in rows)
    rel = sum(r["relative-index bytes"] for r in rows)
    fig.update_layout(barmode="group")
    return theme.apply(fig, f"Weights take {dense / max(rel, 1):.1f}x less space in relative-index form",
                       x_title="layer", y_title="storage (KiB)")
