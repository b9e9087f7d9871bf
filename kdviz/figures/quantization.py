"""Charts for the quantization lab: codebooks, index maps, accuracy against bits, compression
against accuracy, singular-value spectra and the Deep Compression size waterfall.

Inputs are plain arrays and dicts (the ``kmeans`` hook's snapshot arrays, the slider evaluator's
results), so a live run, a reopened run folder and a notebook draw the same charts.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from . import theme

_BEFORE = theme.ROLE_COLORS["baseline"]
_AFTER = theme.ROLE_COLORS["quantized"]
_BARS = theme.OKABE_ITO["blue"]


def _vlines(xs: np.ndarray, top: float) -> tuple[list, list]:
    """x and y of vertical segments from 0 to ``top``, separated by gaps (one trace, many lines)."""
    x, y = [], []
    for v in np.asarray(xs, dtype=float).ravel():
        x += [v, v, None]
        y += [0.0, top, None]
    return x, y


def codebook_histogram(
    hist_counts: Sequence[int], hist_edges: Sequence[float], centroids_initial: Sequence[float],
    centroids: Sequence[float] | None = None, layer: str = "",
) -> go.Figure:
    """The layer's (non-zero) weight histogram with the codebook drawn on it: initial centroids
    dashed, fine-tuned centroids solid (Han et al. 2016, fig. 4 and 5).

    What to notice: the centroids follow the weight distribution, and fine-tuning shifts them.
    """
    counts, edges = np.asarray(hist_counts, dtype=float), np.asarray(hist_edges, dtype=float)
    if counts.size and edges.size != counts.size + 1:
        raise ValueError(f"hist_edges needs {counts.size + 1} values for {counts.size} counts, got {edges.size}")
    start = np.asarray(centroids_initial, dtype=float).ravel()
    fig = go.Figure()
    if counts.size:
        fig.add_bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges), name="weights",
                    marker_color=_BARS, opacity=0.45, hovertemplate="w = %{x:.4f}: %{y} weights<extra></extra>")
    top = float(counts.max()) if counts.size else 1.0
    x, y = _vlines(start, top)
    fig.add_scatter(x=x, y=y, mode="lines", name=f"initial centroids ({start.size})",
                    line={"color": _BEFORE, "dash": "dash", "width": 1.5}, hoverinfo="skip")
    subtitle = f"{start.size} shared values"
    if centroids is not None:
        after = np.asarray(centroids, dtype=float).ravel()
        if after.size != start.size:
            raise ValueError(f"{after.size} fine-tuned centroids for {start.size} initial ones")
        x, y = _vlines(after, top)
        fig.add_scatter(x=x, y=y, mode="lines", name="fine-tuned centroids", line={"color": _AFTER, "width": 2},
                        hoverinfo="skip")
        shift = float(np.abs(after - start).max()) if start.size else 0.0
        subtitle += f"; fine-tuning moved them by up to {shift:.2g}"
    fig.update_layout(bargap=0)
    name = f"{layer}: " if layer else ""
    return theme.apply(fig, f"{name}the codebook sits on the weight distribution", x_title="weight value",
                       y_title="number of weights", subtitle=subtitle)


def index_map_heatmap(index_map: np.ndarray, num_clusters: int | None = None, layer: str = "",
                      conv: bool | None = None, rows: Sequence[int] | None = None,
                      cols: Sequence[int] | None = None, subvectors: bool = False) -> go.Figure:
    """Each weight's codebook index as a heatmap; pruned weights (index -1) are left blank. A fully
    connected layer's rows are its output units and its columns its input units; a conv layer's rows
    are its filters (output channels) and its columns every (input channel, kernel row, kernel column)
    of a filter, flattened in that order (``conv``: None reads it from the layer's name). Large layers
    come evenly subsampled (``kdviz.quant.histograms.index_map``); ``rows`` and ``cols`` give the real
    unit and input numbers of the kept rows and columns, so the axes count units, not samples.
    ``subvectors``: a product quantizer's map, whose columns are a row's sub-vectors and whose indices
    point at codewords (Gong et al. 2014). What to notice: structure in which inputs share values."""
    m = np.asarray(index_map)
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"index_map must be a non-empty 2-D array, got shape {m.shape}")
    is_conv = ("conv" in layer.rsplit(".", 1)[-1].lower()) if conv is None else bool(conv)
    row, col = ("filter", "input channel × kernel position") if is_conv else ("output unit", "input unit")
    if subvectors:
        col = "sub-vector"
    z = np.where(m < 0, np.nan, m.astype(float))
    k = int(num_clusters) if num_clusters is not None else int(max(m.max(), 0)) + 1
    where = {}
    if rows is not None or cols is not None:
        y = np.arange(m.shape[0]) if rows is None else np.asarray(rows)
        x = np.arange(m.shape[1]) if cols is None else np.asarray(cols)
        if y.shape != (m.shape[0],) or x.shape != (m.shape[1],):
            raise ValueError(f"rows/cols must number the map's {m.shape[0]} rows and {m.shape[1]} columns")
        where = {"x": x, "y": y}
    fig = go.Figure(go.Heatmap(z=z, **where, zmin=0, zmax=max(k - 1, 1), colorscale=theme.SEQUENTIAL,
                               colorbar={"title": {"text": "index"}},
                               hovertemplate=f"{row} %{{y}}, column %{{x}}: index %{{z}}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    pruned = float((m < 0).mean())
    name = f"{layer}: " if layer else ""
    what = f"which of the {k} codewords each sub-vector uses" if subvectors else f"which of the {k} shared values each weight uses"
    return theme.apply(fig, f"{name}{what}", x_title=f"{col} (column)", y_title=f"{row} (row)",
                       subtitle=f"blank: pruned ({pruned:.0%} of the map)", height=420)


def codebook_table(centroids: Sequence[float], counts: Sequence[int] | None = None,
                   centroids_initial: Sequence[float] | None = None) -> go.Figure:
    """The codebook as a table: index, initial and fine-tuned value, shift, weights per entry."""
    c = np.asarray(centroids, dtype=float).ravel()
    header = ["index", "value"]
    cols: list[list] = [list(range(c.size)), [f"{v:+.5f}" for v in c]]
    if centroids_initial is not None:
        c0 = np.asarray(centroids_initial, dtype=float).ravel()
        if c0.size != c.size:
            raise ValueError(f"{c0.size} initial centroids for {c.size} centroids")
        header = ["index", "initial", "fine-tuned", "shift"]
        cols = [cols[0], [f"{v:+.5f}" for v in c0], cols[1], [f"{v:+.2e}" for v in c - c0]]
    if counts is not None:
        n = np.asarray(counts).ravel()
        if n.size != c.size:
            raise ValueError(f"{n.size} counts for {c.size} centroids")
        header.append("weights")
        cols.append([int(v) for v in n])
    fig = go.Figure(go.Table(header={"values": [f"<b>{h}</b>" for h in header], "align": "right",
                                     "fill_color": "#EEEEEE"},
                             cells={"values": cols, "align": "right", "format": [None] * len(cols)}))
    theme.apply(fig, f"Codebook: {c.size} shared values", height=min(120 + 24 * c.size, 520))
    fig.update_layout(margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


def accuracy_vs_bits(results: Mapping[str, Mapping[int, float]], baseline: float | None = None) -> go.Figure:
    """Test accuracy against bits per weight, one line per method (``{"k-means linear": {2: 0.93,
    ...}}``, accuracies in [0, 1]); the float model as a dotted line. What to notice: where each
    method's curve falls off."""
    if not results:
        raise ValueError("results is empty: give at least one method")
    fig = go.Figure()
    for i, (method, curve) in enumerate(results.items()):
        bits = sorted(curve)
        fig.add_scatter(x=bits, y=[100 * curve[b] for b in bits], mode="lines+markers", name=method,
                        line={"color": theme.SERIES[i % len(theme.SERIES)], "width": 2.5},
                        hovertemplate=f"{method}<br>%{{x}} bits: %{{y:.2f}}%<extra></extra>")
    if baseline is not None:
        fig.add_hline(y=100 * baseline, line={"dash": "dot", "color": _BEFORE},
                      annotation_text=f"float32: {100 * baseline:.2f}%", annotation_position="bottom right")
    fig.update_xaxes(dtick=1)
    return theme.apply(fig, "Accuracy against bits: where each method breaks down", x_title="bits per weight",
                       y_title="test accuracy (%)")


_LABEL_SIDES = ("top center", "bottom center", "middle right", "middle left")


def _label_positions(count: int, series: int) -> list[str]:
    """Point labels that alternate above and below along a series (neighbours at similar ratios
    no longer print over each other), each series starting on a different side."""
    return [_LABEL_SIDES[(series + k) % 2 if series < 2 else 2 + (series + k) % 2] for k in range(count)]


def compression_vs_accuracy(points: Sequence[Mapping], baseline: float | None = None) -> go.Figure:
    """Compression ratio against accuracy, one marker series per method. Each point is a dict with
    ``method``, ``ratio`` (original / compressed size), ``accuracy`` in [0, 1] and an optional
    ``label`` (e.g. "6 bits"). What to notice: the points up and to the right win."""
    if not points:
        raise ValueError("points is empty")
    methods = list(dict.fromkeys(p["method"] for p in points))
    fig = go.Figure()
    for i, method in enumerate(methods):
        pts = sorted((p for p in points if p["method"] == method), key=lambda p: p["ratio"])
        fig.add_scatter(x=[p["ratio"] for p in pts], y=[100 * p["accuracy"] for p in pts], mode="markers+text",
                        text=[p.get("label", "") for p in pts], textposition=_label_positions(len(pts), i), name=method,
                        marker={"size": 11, "color": theme.SERIES[i % len(theme.SERIES)], "opacity": 0.8,
                                "line": {"color": "white", "width": 1}}, cliponaxis=False,  # coinciding points stay visible
                        hovertemplate=f"{method} %{{text}}<br>%{{x:.1f}}x smaller, %{{y:.2f}}%<extra></extra>")
    ratios = [float(p["ratio"]) for p in points if float(p["ratio"]) > 0]
    if ratios:  # room on both sides for the first and last points' labels (log axis: in decades)
        fig.update_xaxes(range=[np.log10(min(ratios)) - 0.12, np.log10(max(ratios)) + 0.12])
    if baseline is not None:
        fig.add_hline(y=100 * baseline, line={"dash": "dot", "color": _BEFORE},
                      annotation_text=f"float32: {100 * baseline:.2f}%", annotation_position="bottom right")
    fig.update_xaxes(type="log", **theme.log_ticks(ratios))
    return theme.apply(fig, "Smaller and still accurate: up and to the right is better",
                       x_title="compression ratio (x, log scale)", y_title="test accuracy (%)")


def singular_spectrum(singular_values: Sequence[float], rank: int, layer: str = "") -> go.Figure:
    """Singular values (log scale) with the chosen rank marked and the energy it keeps,
    sum_{i<=r} s_i^2 / sum s_i^2. What to notice: how fast the spectrum decays."""
    s = np.asarray(singular_values, dtype=float).ravel()
    if s.size == 0:
        raise ValueError("no singular values given")
    if not 1 <= int(rank) <= s.size:
        raise ValueError(f"rank must be in 1..{s.size}, got {rank}")
    r = int(rank)
    energy = float((s[:r] ** 2).sum() / (s**2).sum()) if (s**2).sum() > 0 else 1.0
    i = np.arange(1, s.size + 1)
    fig = go.Figure()
    fig.add_scatter(x=i[:r], y=s[:r], mode="lines+markers", name=f"kept ({r})", marker={"size": 4},
                    line={"color": _AFTER, "width": 2.5}, hovertemplate="s_%{x} = %{y:.4g}<extra></extra>")
    if r < s.size:
        fig.add_scatter(x=i[r - 1:], y=s[r - 1:], mode="lines+markers", name=f"discarded ({s.size - r})",
                        marker={"size": 4}, line={"color": _BEFORE, "width": 1.5, "dash": "dot"},
                        hovertemplate="s_%{x} = %{y:.4g}<extra></extra>")
    fig.add_vline(x=r, line={"color": theme.OKABE_ITO["vermillion"], "width": 2},
                  annotation_text=f"rank {r}: {energy:.1%} of the energy", annotation_position="top right")
    fig.update_yaxes(type="log", **theme.log_ticks(s))
    name = f"{layer}: " if layer else ""
    return theme.apply(fig, f"{name}rank {r} keeps {energy:.1%} of the squared Frobenius norm",
                       x_title="singular value index i", y_title="singular value s_i (log scale)")


def size_waterfall(stages: Sequence[tuple[str, float]], unit: str = "KB") -> go.Figure:
    """Model size after each Deep Compression stage (``[("dense", bytes), ("pruned", bytes),
    ("quantized", bytes), ("Huffman", bytes)]``): the first bar is the dense size, each next bar
    the saving, the last the final size. What to notice: which stage saves most."""
    if len(stages) < 2:
        raise ValueError("give at least two stages (dense first)")
    scale = {"B": 1.0, "KB": 1e3, "MB": 1e6}[unit]
    names = [s[0] for s in stages]
    sizes = np.array([float(s[1]) for s in stages]) / scale
    if (sizes <= 0).any():
        raise ValueError("stage sizes must be positive")
    y = [sizes[0], *np.diff(sizes), 0.0]
    labels = [f"{b:.1f} {unit} ({sizes[0] / b:.1f}x)" for b in sizes]
    fig = go.Figure(go.Waterfall(
        x=[*names, "final"], y=y, measure=["absolute"] + ["relative"] * (len(sizes) - 1) + ["total"],
        customdata=[*labels, labels[-1]], decreasing={"marker": {"color": theme.OKABE_ITO["bluish green"]}},
        increasing={"marker": {"color": theme.OKABE_ITO["vermillion"]}},
        totals={"marker": {"color": _BARS}}, connector={"line": {"color": "#999"}},
        hovertemplate="%{x}: %{customdata}<extra></extra>",
    ))
    # each label sits above its bar: the size after that stage (and the ratio to dense)
    tops = [sizes[0], *np.maximum(sizes[:-1], sizes[1:]), sizes[-1]]
    texts = [labels[0], *(f"-> {t}" for t in labels[1:]), labels[-1]]
    for x, top, text in zip([*names, "final"], tops, texts):
        fig.add_annotation(x=x, y=top, text=text, showarrow=False, yanchor="bottom", font={"size": 12})
    fig.update_yaxes(range=[0, sizes[0] * 1.15])
    return theme.apply(fig, f"{names[0]} {sizes[0]:.0f} {unit} to {sizes[-1]:.1f} {unit}: "
                            f"{sizes[0] / sizes[-1]:.1f}x smaller", x_title="stage", y_title=f"model size ({unit})")
