"""Charts for post-training quantization: range methods, per-layer noise, chosen bits, accuracy against size.

Data in (lists and dicts from ``kdviz.quant.layer_noise`` / ``mixed_precision``), plotly Figure out.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import theme

_WORST = theme.OKABE_ITO["vermillion"]
_LAYER = theme.OKABE_ITO["sky blue"]
_MIXED = theme.OKABE_ITO["vermillion"]
_UNIFORM = theme.OKABE_ITO["blue"]
_FLOAT = theme.ROLE_COLORS["baseline"]
RANGE_COLOURS = {"minmax": theme.OKABE_ITO["blue"], "percentile": theme.OKABE_ITO["orange"],
                 "mse": theme.OKABE_ITO["bluish green"]}


def _float_line(fig: go.Figure, accuracy: float | None, **where) -> None:
    if accuracy is not None:
        fig.add_hline(y=100 * accuracy, line={"color": _FLOAT, "dash": "dot"}, annotation_text="float32",
                      annotation_position="bottom right", **where)


def range_methods_chart(rows: Sequence[Mapping], float_accuracy: float | None = None) -> go.Figure:
    """Grouped bars: test accuracy (%) per bit width, one bar per range method (rows of
    ``layer_noise.compare_ranges``). What to notice: the methods agree at 8 bits and part at 3-4."""
    fig = go.Figure()
    bits = sorted({int(r["bits"]) for r in rows}, reverse=True)
    for method in dict.fromkeys(r["range"] for r in rows):
        mine = {int(r["bits"]): r for r in rows if r["range"] == method}
        label = next(iter(mine.values()))["method"]
        fig.add_bar(x=[f"{b} bits" for b in bits], y=[100 * mine[b]["accuracy"] if b in mine else None for b in bits],
                    name=label, marker_color=RANGE_COLOURS.get(method, _LAYER),
                    hovertemplate=f"{label}<br>%{{x}}: %{{y:.2f}} %<extra></extra>")
    _float_line(fig, float_accuracy)
    fig.update_layout(barmode="group")
    values = [100 * r["accuracy"] for r in rows] + ([100 * float_accuracy] if float_accuracy is not None else [])
    fig.update_yaxes(range=theme.fitted_range(values, bounds=(0.0, 100.0)))  # 0-100 hid a half-point gap
    return theme.apply(fig, "Where the range is clipped matters at few bits", "weight bit width", "test accuracy (%)",
                       subtitle="every layer quantized; ranges by min-max, percentile or least squared error")


def layer_noise_chart(layers: Sequence[str], sqnr_db: Sequence[float], drops: Sequence[float], worst: str,
                      bits: int) -> go.Figure:
    """Two rows of bars per layer: output SQNR (dB) and accuracy drop (points) with only that layer
    quantized at ``bits``; the ``worst`` layer in vermillion and named in the title (AIMET-style)."""
    if not (len(layers) == len(sqnr_db) == len(drops)):
        raise ValueError(f"{len(layers)} layers, {len(sqnr_db)} SQNR values and {len(drops)} drops")
    if worst not in layers:
        raise ValueError(f"the worst layer {worst!r} is not among {list(layers)}")
    colours = [_WORST if name == worst else _LAYER for name in layers]
    shown = [None if not np.isfinite(v) else float(v) for v in sqnr_db]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    fig.add_bar(x=list(layers), y=shown, marker_color=colours, name="output SQNR", showlegend=False,
                hovertemplate="%{x}: %{y:.1f} dB<extra></extra>", row=1, col=1)
    fig.add_bar(x=list(layers), y=[100 * d for d in drops], marker_color=colours, name="accuracy drop",
                showlegend=False, hovertemplate="%{x}: %{y:.2f} points<extra></extra>", row=2, col=1)
    fig.update_yaxes(title_text="output SQNR (dB)", row=1, col=1)
    fig.update_yaxes(title_text="accuracy drop (points)", row=2, col=1)
    return theme.apply(fig, f"{worst} breaks accuracy first at {bits} bits", "layer (quantized alone)", None,
                       height=460, subtitle="each layer quantized alone, the others float; higher SQNR is quieter")


def chosen_bits_chart(layers: Sequence[str], mixed_bits: Mapping[str, int], uniform_bits: int,
                      n_weights: Mapping[str, int], accuracy: tuple[float, float] | None = None) -> go.Figure:
    """Bars: the bit width mixed precision chose per layer (hover: its weights), a dashed line at the
    uniform width of the same size. ``accuracy``: (mixed, uniform) for the subtitle."""
    fig = go.Figure()
    fig.add_bar(x=list(layers), y=[mixed_bits[n] for n in layers], marker_color=_MIXED, name="mixed precision",
                customdata=[n_weights[n] for n in layers],
                hovertemplate="%{x}: %{y} bits, %{customdata:,} weights<extra></extra>")
    fig.add_hline(y=uniform_bits, line={"color": _UNIFORM, "dash": "dash"}, annotation_text=f"uniform {uniform_bits} bits",
                  annotation_position="top left")
    fig.update_yaxes(range=[0, 8.5], dtick=1)
    subtitle = None if accuracy is None else (f"mixed {100 * accuracy[0]:.2f} % against uniform "
                                              f"{100 * accuracy[1]:.2f} % at the same size")
    return theme.apply(fig, "Sensitive layers get more bits, large tolerant ones fewer", "layer", "weight bits",
                       subtitle=subtitle)


def accuracy_vs_size_chart(mixed: Sequence[tuple[float, float]], uniform: Sequence[tuple[float, float, int]],
                           float_accuracy: float | None = None) -> go.Figure:
    """Test accuracy (%) against weight size (KB): the mixed-precision curve (one point per budget)
    and the uniform widths (labelled with their bits). Up and to the left wins."""
    fig = go.Figure()
    m = sorted(mixed)
    fig.add_scatter(x=[s / 8192 for s, _ in m], y=[100 * a for _, a in m], mode="lines+markers", name="mixed precision",
                    line={"color": _MIXED}, hovertemplate="%{x:.2f} KB: %{y:.2f} %<extra>mixed</extra>")
    u = sorted(uniform)
    fig.add_scatter(x=[s / 8192 for s, _, _ in u], y=[100 * a for _, a, _ in u], mode="markers+text",
                    name="uniform bits", text=[f"{b} b" for _, _, b in u], textposition="top center",
                    marker={"color": _UNIFORM, "size": 10, "symbol": "square"},
                    hovertemplate="%{x:.2f} KB: %{y:.2f} %<extra>uniform %{text}</extra>")
    _float_line(fig, float_accuracy)
    return theme.apply(fig, "Mixed precision against uniform bits at the same size", "weight storage (KB)",
                       "test accuracy (%)", subtitle="no retraining; scales counted; biases float")


__all__ = ["RANGE_COLOURS", "accuracy_vs_size_chart", "chosen_bits_chart", "layer_noise_chart", "range_methods_chart"]
