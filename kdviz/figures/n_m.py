"""Charts of N:M semi-structured sparsity (Mishra et al. 2021; Zhou et al. 2021).

* ``n_m_pattern``: a corner block of one layer's weights, inputs along the columns, |w| as colour and
  the pruned weights blank, with a line every M inputs, so the reader sees N survivors per group.
* ``sparsity_comparison``: test accuracy of the N:M network beside unstructured magnitude pruning at
  the same sparsity (and the dense network), the price of the hardware-friendly pattern.

Data in, figure out: labels, values and colours arrive as arguments.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from . import theme


def n_m_pattern(weights: np.ndarray, mask: np.ndarray, n: int, m: int, layer: str = "") -> go.Figure:
    """Heatmap of |w| of a 2-D block with pruned cells blank and a separator every ``m`` columns."""
    w, keep = np.asarray(weights, dtype=np.float64), np.asarray(mask, dtype=bool)
    if w.ndim != 2 or w.shape != keep.shape:
        raise ValueError(f"weights and mask must be 2-D blocks of one shape, got {w.shape} and {keep.shape}")
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise ValueError(f"m must be a positive integer, got {m!r}")
    shown = np.where(keep, np.abs(w), np.nan)
    fig = go.Figure(go.Heatmap(z=shown, colorscale="Viridis", colorbar={"title": "|w|"}, xgap=1, ygap=1,
                               hovertemplate="output %{y}, input %{x}: |w| %{z:.3f}<extra></extra>"))
    for x in range(m, w.shape[1], m):
        fig.add_vline(x=x - 0.5, line={"color": "#222", "width": 2})
    fig.update_yaxes(autorange="reversed")
    kept = int(keep.sum())
    theme.apply(fig, f"{n}:{m} pattern{' of ' + layer if layer else ''}: {n} of every {m} inputs kept",
                "input (groups of M between the lines)", "output row",
                subtitle=f"{kept} of {keep.size} weights shown kept ({kept / keep.size:.0%}); blank = pruned")
    return fig


def sparsity_comparison(labels: Sequence[str], accuracies: Sequence[float | None], sparsities: Sequence[float | None],
                        colours: Sequence[str] | None = None, dense: float | None = None) -> go.Figure:
    """Bars of test accuracy (%) per run, each labelled with its sparsity; dense as a dashed line."""
    if not len(labels) == len(accuracies) == len(sparsities):
        raise ValueError("one label, accuracy and sparsity per bar")
    for a in list(accuracies) + list(sparsities) + [dense]:
        if a is not None and not 0.0 <= float(a) <= 1.0:
            raise ValueError(f"accuracies and sparsities are fractions between 0 and 1, got {a!r}")
    colours = list(colours or [theme.SERIES[i % len(theme.SERIES)] for i in range(len(labels))])
    ys = [None if a is None else 100 * a for a in accuracies]
    text = ["waiting" if a is None else f"{100 * a:.2f}%<br>{'' if s is None else f'{100 * s:.0f}% pruned'}"
            for a, s in zip(accuracies, sparsities)]
    fig = go.Figure(go.Bar(x=list(labels), y=ys, marker_color=colours, text=text, textposition="outside",
                           hovertemplate="%{x}: %{y:.2f}%<extra></extra>"))
    if dense is not None:
        fig.add_hline(y=100 * dense, line={"dash": "dash", "color": theme.OKABE_ITO["blue"]},
                      annotation_text=f"dense {100 * dense:.2f}%", annotation_position="bottom left")
    known = [y for y in ys if y is not None] + ([100 * dense] if dense is not None else [])
    if known:
        fig.update_yaxes(range=[max(0.0, min(known) - 10), 101])
    theme.apply(fig, "N:M against unstructured pruning at the same sparsity", None, "test accuracy (%)",
                subtitle="the pattern costs accuracy only if its bar sits below the unstructured one")
    return fig

