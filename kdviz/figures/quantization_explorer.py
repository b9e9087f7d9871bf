"""The quantization explorers' charts, shared by the Streamlit page and the Jupyter widget.

Each builds on ``kdviz.figures.quantization`` (data in, figure out) and adds what the explorers
need: the levels of any method on the weight histogram, the codebook of a centroid fine-tuning
run (a k-means snapshot's arrays, read by the method's typed reader) with each centroid's shift,
and accuracy while the centroids are fine-tuned.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from . import theme
from .quantization import codebook_histogram, codebook_table
from .training import accuracy_comparison

_C = theme.OKABE_ITO
# One colour (and marker) per method on every chart, whatever subset a chart shows.
METHOD_STYLES: dict[str, tuple[str, str]] = {
    "k-means, linear init": (_C["blue"], "circle"), "k-means, density init": (_C["sky blue"], "circle"),
    "k-means, random init": (_C["bluish green"], "circle"), "uniform, per tensor, symmetric": (_C["orange"], "diamond"),
    "uniform, per tensor, asymmetric": (_C["orange"], "diamond-open"),
    "uniform, per channel, symmetric": (_C["vermillion"], "diamond-open"),
    "uniform, per channel, asymmetric": (_C["vermillion"], "diamond"), "BinaryConnect": (_C["reddish purple"], "circle"),
    "XNOR (BWN)": (_C["reddish purple"], "square"), "low rank (SVD)": (_C["black"], "triangle-up"),
}
PRODUCT_STYLE = (_C["yellow"], "star")


def legend_below(fig: go.Figure, rows: int = 1) -> go.Figure:
    """``theme.legend_below`` (the legend under the plot, clear of a two-line title) with the chart
    made taller by the room the legend takes, so the plot area keeps its height."""
    theme.legend_below(fig, y=-0.22, rows=rows)
    fig.update_layout(height=(fig.layout.height or 380) + 50 + 22 * rows)
    return fig


def levels_histogram(hist_counts: Sequence[int], hist_edges: Sequence[float], levels: Sequence[float], layer: str,
                     method_label: str, bits: int, n_weights: int, shared: bool = True, per_row: bool = False) -> go.Figure:
    """The layer's float weights with a method's values drawn on them: k-means' shared values
    (``shared``), uniform or binary levels (``per_row``: output unit 0's, since each unit has its
    own), or none (an empty ``levels``: product quantization, whose codewords are vectors)."""
    lv = np.asarray(levels, dtype=float).ravel()
    fig = codebook_histogram(hist_counts, hist_edges, lv, layer=layer)
    name = "shared values" if shared else "levels"
    fig.data[-1].name = f"{name} ({lv.size})"
    if lv.size == 0:
        fig.data = fig.data[:1]
        note = "product quantization stores vectors of weights: no single values to draw"
    elif per_row:
        note = f"each output unit has its own {lv.size} levels: drawn for unit 0"
    else:
        note = f"{lv.size} {name} for {n_weights:,} weights"
    fig.layout.title.text = (f"<b>{layer}: {method_label}, {bits} bit{'s' if bits > 1 else ''}</b>"
                             f"<br><span style='font-size:12px;color:#555'>{note}</span>")
    return legend_below(fig)


def levels_table(levels: Sequence[float], counts: Sequence[int], per_row: bool = False) -> tuple[go.Figure, pd.DataFrame]:
    """The codebook (or levels) as a table figure and as a data frame (index, value, weights)."""
    lv, n = np.asarray(levels, dtype=float).ravel(), np.asarray(counts).ravel()
    fig = codebook_table(lv, n)
    if per_row:
        fig.layout.title.text = f"<b>Levels of output unit 0: {lv.size} values</b>"
    return fig, pd.DataFrame({"index": np.arange(lv.size), "value": lv, "weights": n})


def codebook_progress(hist_counts: Sequence[int], hist_edges: Sequence[float], initial: Sequence[float],
                      now: Sequence[float], counts: Sequence[int], layer: str) -> tuple[go.Figure, go.Figure, pd.DataFrame]:
    """A layer's codebook while its shared values are fine-tuned (Han et al. 2016, eq. 3): the
    weight histogram with the initial (dashed) and current centroids, the codebook table with each
    centroid's shift, and the same as a data frame (index, initial, fine-tuned, shift, weights)."""
    start, now, counts = (np.asarray(a, dtype=float).ravel() for a in (initial, now, counts))
    if not start.size == now.size == counts.size:
        raise ValueError(f"{start.size} initial centroids, {now.size} centroids and {counts.size} counts "
                         f"for layer {layer!r}: they must match")
    hist = codebook_histogram(hist_counts, hist_edges, start, now, layer)
    frame = pd.DataFrame({"index": np.arange(now.size), "initial": start, "fine-tuned": now, "shift": now - start,
                          "weights": counts.astype(np.int64)})
    return legend_below(hist), codebook_table(now, counts.astype(np.int64), start), frame


def finetune_accuracy(records: Sequence[Mapping], float_accuracy: float | None = None, epoch: float | None = None,
                      label: str = "k-means, fine-tuned", colour: str = _C["sky blue"]) -> go.Figure:
    """Test accuracy while the centroids are fine-tuned (the first point is k-means before any
    step) in ``colour`` (the run's), the float model dotted, the shown snapshot's time as a dashed line."""
    evals = [r for r in records if r.get("kind") == "eval" and "test_acc" in r]
    title = "Waiting for the first evaluation"
    if evals:
        first, last = evals[0]["test_acc"], evals[-1]["test_acc"]
        title = f"Fine-tuning the shared values: {100 * first:.2f}% -> {100 * last:.2f}% test accuracy"
    fig = accuracy_comparison([{"label": label, "colour": colour, "records": list(records)}], title=title)
    fig.data[0].line.color = colour
    if float_accuracy is not None:
        fig.add_hline(y=100 * float_accuracy, line={"color": theme.ROLE_COLORS["baseline"], "dash": "dot"},
                      annotation_text=f"float32 {100 * float_accuracy:.2f}%", annotation_position="bottom right")
    if epoch is not None:
        fig.add_vline(x=epoch, line={"color": theme.OKABE_ITO["black"], "width": 1, "dash": "dash"})
    return fig


def style_methods(fig: go.Figure, below: bool = True) -> go.Figure:
    """Give each method's trace its fixed colour and marker (``METHOD_STYLES``; product
    quantization yellow stars), so a method looks the same on the accuracy-against-bits chart and
    the compression scatter; with ``below`` the legend goes under the plot, clear of the title."""
    for trace in fig.data:
        name = str(trace.name or "")
        colour, symbol = METHOD_STYLES.get(name, PRODUCT_STYLE if name.startswith("product") else (None, None))
        if colour is None:
            continue
        trace.marker.color, trace.marker.symbol = colour, symbol
        if colour == _C["yellow"]:  # a yellow star needs a dark outline on white
            trace.marker.line = {"color": "#333", "width": 1}
        if trace.mode and "lines" in trace.mode:
            trace.line.color = colour
    return legend_below(fig, rows=-(-len(fig.data) // 3)) if below else fig


__all__ = ["METHOD_STYLES", "codebook_progress", "finetune_accuracy", "legend_below", "levels_histogram", "levels_table",
           "style_methods"]
