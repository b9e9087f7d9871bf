"""Measured speed beside size: latency at batch 1 and batch 256 and bytes stored, per deployable form.

Data in (numbers measured by ``kdviz.deploy.latency``), a plotly Figure out. ``bytes_but_not_time``
turns the same numbers into the plain sentences the caption shows: which form stores fewer bytes
than the dense model yet is not faster at some batch size on this CPU (issue 17: "say plainly where
a format saves bytes but not time").
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .theme import apply, wrap_figure_title


@dataclass(frozen=True)
class FormSpeed:
    """One form's numbers: latency median and quartiles (ms) per batch size, bytes stored, peak memory."""

    name: str
    latency_ms: Mapping[int, tuple[float, float, float]]  # batch -> (q1, median, q3)
    model_bytes: int
    peak_bytes: int


def _ratio(form: FormSpeed, dense: FormSpeed, batch: int) -> float:
    return form.latency_ms[batch][1] / dense.latency_ms[batch][1]


def bytes_but_not_time(forms: Sequence[FormSpeed], dense: str = "dense", slack: float = 0.05) -> list[str]:
    """One sentence per form that stores fewer bytes than ``dense`` but whose median latency at some
    batch size is not lower by more than ``slack`` (5 %: the measurement's usual scatter); and one per
    form that is faster, saying by how much. Computed from the numbers only."""
    by_name = {f.name: f for f in forms}
    if dense not in by_name:
        raise ValueError(f"no {dense!r} form among {list(by_name)}: the ratios need it")
    base = by_name[dense]
    out = []
    for form in forms:
        if form.name == dense:
            continue
        smaller = form.model_bytes < base.model_bytes
        batches = sorted(form.latency_ms)
        ratios = {b: _ratio(form, base, b) for b in batches}
        slow = [b for b in batches if ratios[b] > 1.0 - slack]
        size = f"{form.model_bytes / base.model_bytes:.0%} of the dense bytes"
        if smaller and slow:
            where = " and ".join(f"batch {b} ({ratios[b]:.2f}x the dense time)" for b in slow)
            out.append(f"{form.name} stores {size} but is not faster at {where} on this CPU.")
        elif smaller:
            out.append(f"{form.name} stores {size} and is faster at every batch measured "
                       f"({', '.join(f'{ratios[b]:.2f}x at batch {b}' for b in batches)}).")
        else:
            out.append(f"{form.name} stores no fewer bytes than dense ({size}).")
    return out


def speed_bars(forms: Sequence[FormSpeed], colours: Mapping[str, str], batches: Sequence[int] = (1, 256),
               title: str | None = None) -> go.Figure:
    """Latency per form at each batch size (median, IQR as error bars) beside bytes stored and peak
    working memory. ``colours``: one colour per form name."""
    if not forms:
        raise ValueError("no forms to draw")
    panels = [f"latency, batch {b} (ms)" for b in batches] + ["bytes stored (KiB)", "peak working memory (KiB)"]
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=panels, horizontal_spacing=0.07)
    names = [f.name for f in forms]
    for col, batch in enumerate(batches, start=1):
        q1 = [f.latency_ms[batch][0] for f in forms]
        med = [f.latency_ms[batch][1] for f in forms]
        q3 = [f.latency_ms[batch][2] for f in forms]
        fig.add_trace(go.Bar(x=names, y=med, marker_color=[colours.get(n) for n in names], showlegend=False,
                             error_y=dict(type="data", symmetric=False, array=[b - m for b, m in zip(q3, med)],
                                          arrayminus=[m - a for a, m in zip(q1, med)]),
                             hovertemplate="%{x}: %{y:.3f} ms (median)<extra></extra>"), row=1, col=col)
    for offset, values in ((1, [f.model_bytes for f in forms]), (2, [f.peak_bytes for f in forms])):
        fig.add_trace(go.Bar(x=names, y=[v / 1024 for v in values], marker_color=[colours.get(n) for n in names],
                             showlegend=False, hovertemplate="%{x}: %{y:.0f} KiB<extra></extra>"),
                      row=1, col=len(batches) + offset)
    for col in range(1, len(panels) + 1):
        fig.update_yaxes(rangemode="tozero", row=1, col=col)
    fig.update_yaxes(title_text="ms per forward", row=1, col=1)
    fastest = {b: min(forms, key=lambda f: f.latency_ms[b][1]).name for b in batches}
    default_title = "Fewer bytes is not less time: " + ", ".join(f"fastest at batch {b}: {n}" for b, n in fastest.items())
    return wrap_figure_title(apply(fig, title or default_title, height=360))
