"""Charts of ProjectionNet (Ravi, "ProjectionNet", arXiv:1708.00630, 2017).

* ``bit_patterns``: the T*d bits of P(x) of a few probe digits (section 3.3; fixed, P is not
  trained) beside what the projection net currently reads from them (its softmax per digit);
* ``accuracy_against_bits``: test accuracy of projection nets of several sizes T x d, with each
  trainer's beside them and the deployed size in bytes in the hover ("how many neural bits are
  required to solve a given task?", the paper's question);
* ``loss_parts_curve`` and ``loss_parts_series``: the three weighted terms of eq. 1 per step.

Data in, figure out: labels and colours arrive as arguments, metric keys are the caller's.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import theme

BIT_COLOURS = [[0.0, "#F2F2F2"], [0.5, "#F2F2F2"], [0.5, theme.OKABE_ITO["blue"]], [1.0, theme.OKABE_ITO["blue"]]]
PART_NAMES = {"trainer_ce": "λ1 L_θ: trainer on labels", "distill": "λ2 L_p: projection net on trainer",
              "label": "λ3 L̂_p: projection net on labels"}


def _checked_bits(bits: Any, num_hashes: int, bits_per_hash: int) -> np.ndarray:
    arr = np.asarray(bits)
    if arr.ndim != 2 or arr.shape[1] != int(num_hashes) * int(bits_per_hash) or arr.size == 0:
        raise ValueError(f"bits must be (digits, T*d) = (n, {int(num_hashes) * int(bits_per_hash)}), got {arr.shape}")
    if not np.isin(arr, (0, 1)).all():
        raise ValueError("bits must hold only 0 and 1")
    return arr.astype(np.float64)


def bit_patterns(bits: Any, num_hashes: int, bits_per_hash: int, labels: Sequence[int], probs: Any,
                 step: int | None = None, colour: str = theme.ROLE_COLORS["quantized"]) -> go.Figure:
    """Left: each probe digit's bits of P(x) (rows: digits, columns: bit k*d + j of hash k, hashes
    separated by lines); right: the projection net's softmax over the classes for the same digits.

    The bits never change while training (P is fixed); the right panel does, as h_p learns to read them."""
    b = _checked_bits(bits, num_hashes, bits_per_hash)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or len(p) != len(b) or len(labels) != len(b):
        raise ValueError(f"probs ({p.shape}) and labels ({len(labels)}) need one row per digit ({len(b)})")
    rows = [f"#{i}: a {int(y)}" for i, y in enumerate(labels)]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.7, 0.3], horizontal_spacing=0.08, subplot_titles=(
        f"P(x): {num_hashes} hash functions × {bits_per_hash} bits (fixed)",
        f"<span style='color:{colour}'><b>projection net's p(class)</b></span>"))
    fig.add_trace(go.Heatmap(z=b, y=rows, colorscale=BIT_COLOURS, zmin=0, zmax=1, showscale=False, xgap=1, ygap=1,
                             name="bits", hovertemplate="%{y}<br>bit %{x}: %{z}<extra></extra>"), 1, 1)
    fig.add_trace(go.Heatmap(z=p, y=rows, x=[str(k) for k in range(p.shape[1])], zmin=0, zmax=1, name="p(class)",
                             colorscale=theme.SEQUENTIAL, colorbar={"title": {"text": "p"}, "thickness": 10, "len": 0.8},
                             hovertemplate="%{y}<br>class %{x}: p = %{z:.2f}<extra></extra>"), 1, 2)
    fig.update_layout(shapes=[{"type": "line", "xref": "x", "yref": "y domain", "x0": k * int(bits_per_hash) - 0.5,
                               "x1": k * int(bits_per_hash) - 0.5, "y0": 0, "y1": 1, "line": {"color": "#555", "width": 1}}
                              for k in range(1, int(num_hashes))])  # one call: add_vline per hash is slow for T = 64
    fig.update_yaxes(autorange="reversed")
    fig.update_yaxes(showticklabels=False, row=1, col=2)
    right = float((p.argmax(axis=1) == np.asarray(labels)).mean())
    when = f"Step {step}: " if step is not None else ""
    theme.apply(fig, f"{when}the projection net reads {right:.0%} of these digits right from their bits",
                x_title=None, height=140 + 28 * len(b),
                subtitle="blue = bit 1 (⟨w, x⟩ > 0). P is drawn from a seed and never trained: the bits stay; "
                         "the right panel moves as the small net learns to read them")
    fig.update_xaxes(title_text="bit index (T·d)", row=1, col=1)
    fig.update_xaxes(title_text="class", row=1, col=2)
    fig.update_layout(margin={"t": 110, "l": 70})
    return fig


def accuracy_against_bits(points: Sequence[Mapping[str, Any]], colour: str = theme.ROLE_COLORS["quantized"],
                          trainer_colour: str = theme.ROLE_COLORS["teacher"]) -> go.Figure:
    """Test accuracy (percent) against the number of bits T*d (log2 axis): one point per run, with
    ``bits``, ``accuracy`` (fraction), ``bytes`` (the deployed projection net) and optionally
    ``trainer_accuracy`` and ``trainer_bytes``; a run without an accuracy yet is left out."""
    shown = sorted((p for p in points if p.get("accuracy") is not None), key=lambda p: p["bits"])
    fig = go.Figure()
    if shown:
        x = [int(p["bits"]) for p in shown]
        fig.add_scatter(x=x, y=[100 * float(p["accuracy"]) for p in shown], mode="lines+markers", name="projection net",
                        line={"color": colour, "width": 2}, marker={"size": 9},
                        customdata=[[int(p.get("bytes", 0))] for p in shown],
                        hovertemplate="%{x} bits: %{y:.1f}%<br>%{customdata[0]:,} bytes<extra>projection net</extra>")
        trained = [p for p in shown if p.get("trainer_accuracy") is not None]
        if trained:
            fig.add_scatter(x=[int(p["bits"]) for p in trained], y=[100 * float(p["trainer_accuracy"]) for p in trained],
                            mode="markers", name="its trainer", marker={"color": trainer_colour, "symbol": "diamond",
                                                                       "size": 9},
                            customdata=[[int(p.get("trainer_bytes", 0))] for p in trained],
                            hovertemplate="trainer of the %{x}-bit run: %{y:.1f}%<br>%{customdata[0]:,} bytes"
                                          "<extra>trainer</extra>")
        fig.update_xaxes(type="log", tickvals=x, ticktext=[str(v) for v in x])
    if len(shown) > 1:
        gain = 100 * (float(shown[-1]["accuracy"]) - float(shown[0]["accuracy"]))
        title = (f"{shown[0]['bits']} → {shown[-1]['bits']} bits: accuracy {'+' if gain >= 0 else ''}{gain:.1f} points "
                 f"(more bits, finer hash codes)")
    else:
        title = "Accuracy against the number of bits (runs fill in as they train)"
    return theme.compact(theme.apply(fig, title, x_title="bits of P(x) (T × d, log scale)", y_title="test accuracy (%)"))


def loss_parts_series(records: Sequence[Mapping[str, Any]], keys: Mapping[str, str]) -> tuple[list[float], dict[str, list[float]]]:
    """(steps, {part: values}) from step records that log each part under ``keys[part]``."""
    steps = [r for r in records if r.get("kind") == "step" and all(k in r for k in keys.values())]
    return [float(r["step"]) for r in steps], {part: [float(r[key]) for r in steps] for part, key in keys.items()}


def loss_parts_curve(steps: Sequence[float], parts: Mapping[str, Sequence[float]],
                     colours: Sequence[str] | None = None) -> go.Figure:
    """The weighted terms of eq. 1 against training steps (``parts``: {"trainer_ce" | "distill" | "label"
    or any name: values}), so a reader sees which term dominates the joint loss."""
    if not len(parts):
        raise ValueError("no loss parts to draw")
    x = np.asarray(steps, dtype=np.float64)
    palette = list(colours) if colours else theme.SERIES
    fig = go.Figure()
    for i, (name, ys) in enumerate(parts.items()):
        y = np.asarray(ys, dtype=np.float64)
        if y.shape != x.shape:
            raise ValueError(f"part {name!r}: {y.size} values for {x.size} steps")
        label = PART_NAMES.get(name, name)
        fig.add_scatter(x=x, y=y, mode="lines", name=label, line={"color": palette[i % len(palette)], "width": 2},
                        hovertemplate="step %{x}: %{y:.3f}<extra>" + label + "</extra>")
    last = {name: float(np.asarray(v, dtype=np.float64)[-1]) for name, v in parts.items() if len(v)}
    title = "The three terms of the joint loss (eq. 1)"
    if last:
        top = max(last, key=last.get)
        title = f"{PART_NAMES.get(top, top).split(':')[0]} is the largest term now ({last[top]:.2f}): eq. 1 per step"
    fig.update_yaxes(rangemode="tozero")
    return theme.compact(theme.apply(fig, title, x_title="training step (optimizer updates)",
                                     y_title="weighted loss (nats)"))


__all__ = ["accuracy_against_bits", "bit_patterns", "loss_parts_curve", "loss_parts_series"]
