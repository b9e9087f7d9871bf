"""Charts of attention-head pruning and ViT compression (Michel, Levy & Neubig, "Are Sixteen Heads Really
Better than One?", NeurIPS 2019).

* ``head_importance_heatmap``: the importance I_h = E_x |dL/dxi_h| (eq. 4) of every head, layers x heads,
  removed heads crossed out;
* ``accuracy_against_heads_removed``: test accuracy as heads go, one curve per order (importance,
  random: the paper's fig. 3/4 comparison) and the points of a fine-tuned run;
* ``compression_table``: dense vs heads removed vs N:M vs int8 vs k-means (accuracy, size, latency).

Data in, figure out: labels and colours arrive as arguments; this module knows no method and no engine.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from . import theme

REMOVED_MARK = "✕"


def _matrix(name: str, values: Any, dtype: Any = np.float64) -> np.ndarray:
    arr = np.asarray(values, dtype=dtype)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"{name} must be a (layers, heads) matrix, got shape {arr.shape}")
    return arr


def head_importance_heatmap(importance: Any, removed: Any, step: int | None = None, normalized: bool = False) -> go.Figure:
    """Layers (rows, layer 1 on top) x heads (columns): colour = head importance (eq. 4); a removed head is
    crossed out and shown at its importance if it came back (the gradient at its gate). ``normalized``:
    the rows were divided by their l2 norm (section 4.2), so colours compare heads within a layer."""
    imp = _matrix("importance", importance)
    gone = _matrix("removed", removed, bool)
    if gone.shape != imp.shape:
        raise ValueError(f"removed {gone.shape} and importance {imp.shape} must have the same shape")
    if not np.isfinite(imp).all():
        raise ValueError("the importance matrix holds values that are not finite")
    layers, heads = imp.shape
    text = np.where(gone, REMOVED_MARK, np.vectorize(lambda v: f"{v:.2f}")(imp))
    fig = go.Figure(go.Heatmap(
        z=imp, x=[f"head {h + 1}" for h in range(heads)], y=[f"layer {i + 1}" for i in range(layers)],
        text=text, texttemplate="%{text}", colorscale=theme.SEQUENTIAL, zmin=0.0, zmax=float(imp.max()) or 1.0,
        colorbar={"title": {"text": "I_h"}, "thickness": 12},
        hovertemplate="%{y}, %{x}<br>importance %{z:.4f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    when = f" at step {step}" if step is not None else ""
    kept = int(gone.size - gone.sum())
    theme.apply(fig, f"Head importance{when}: {kept} of {gone.size} heads kept, {int(gone.sum())} removed ({REMOVED_MARK})",
                x_title="head", y_title="layer", height=120 + 60 * layers,
                subtitle="I_h = E_x |∂L/∂ξ_h| (Michel et al. 2019, eq. 4)"
                         + (", each layer divided by its l2 norm" if normalized else "")
                         + "; the darkest heads go next")
    return fig


def accuracy_against_heads_removed(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]],
                                   colours: Mapping[str, str], total_heads: int,
                                   dense_accuracy: float | None = None) -> go.Figure:
    """Test accuracy (%) against heads removed, one line per curve (``{label: (removed, accuracy in [0, 1])}``)."""
    if not curves:
        raise ValueError("no curve to draw: give at least one {label: (heads removed, accuracy)}")
    fig = go.Figure()
    for i, (label, (removed, acc)) in enumerate(curves.items()):
        if len(removed) != len(acc):
            raise ValueError(f"curve {label!r}: {len(removed)} head counts but {len(acc)} accuracies")
        fig.add_trace(go.Scatter(x=list(removed), y=[100 * a for a in acc], name=label, mode="lines+markers",
                                 line={"color": colours.get(label, theme.SERIES[i % len(theme.SERIES)])},
                                 hovertemplate="%{x} heads removed<br>%{y:.1f}%<extra>" + label + "</extra>"))
    if dense_accuracy is not None:
        fig.add_hline(y=100 * dense_accuracy, line_dash="dot", line_color=theme.ROLE_COLORS["baseline"],
                      annotation_text=f"all heads {100 * dense_accuracy:.1f}%", annotation_position="bottom left")
    theme.apply(fig, "Accuracy as heads go: does removing the least important first beat chance?",
                x_title=f"heads removed (of {total_heads})", y_title="test accuracy (%)",
                subtitle="importance order: the least important heads first, importance recomputed after each step")
    fig.update_xaxes(range=[-0.5, total_heads - 0.5], dtick=1 if total_heads <= 20 else None)
    return theme.fit_legend(fig, list(curves))


TABLE_COLUMNS = ("form", "test accuracy", "size", "latency batch 1", "latency batch 256", "note")


def compression_table(rows: Sequence[Mapping[str, Any]]) -> go.Figure:
    """The accuracy / size / latency table: one row per form (keys ``form``, ``accuracy`` (0-1), ``bytes``,
    ``latency_ms`` ({batch: median ms}), ``note``); sizes and latencies also relative to the first row."""
    if not rows:
        raise ValueError("no forms to tabulate")
    dense = rows[0]

    def ratio(value: float, base: float) -> str:
        return f" ({value / base:.2f}x)" if base else ""

    cells: list[list[str]] = [[] for _ in TABLE_COLUMNS]
    for row in rows:
        lat = row["latency_ms"]
        values = [row["form"], f"{100 * row['accuracy']:.1f}%",
                  f"{row['bytes'] / 1024:.1f} KiB{ratio(row['bytes'], dense['bytes'])}",
                  f"{lat[1]:.3f} ms{ratio(lat[1], dense['latency_ms'][1])}" if 1 in lat else "-",
                  f"{lat[256]:.2f} ms{ratio(lat[256], dense['latency_ms'][256])}" if 256 in lat else "-", row["note"]]
        for col, value in zip(cells, values):
            col.append(value)
    fig = go.Figure(go.Table(columnwidth=[1.2, 1, 1.3, 1.4, 1.4, 3],
                             header={"values": [f"<b>{c}</b>" for c in TABLE_COLUMNS], "align": "left"},
                             cells={"values": cells, "align": "left", "height": 26}))
    theme.apply(fig, "Smaller is not always faster: measured here, median of many forwards",
                height=120 + 30 * len(rows), subtitle="ratios against the dense model; latency on this CPU, one thread")
    return fig
