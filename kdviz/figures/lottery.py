"""Charts of the lottery-ticket search (Frankle & Carbin 2019; Frankle et al. 2020).

* ``ticket_accuracy``: test accuracy against the share of weights remaining (log axis, falling to the
  right as in Frankle & Carbin's Figure 3) for the winning ticket (rewound) and for the same masks on
  a random re-initialisation, with the dense network's accuracy as a dashed line: the ticket should
  stay at the line while the control falls away.
* ``mask_overlap``: per round, the Jaccard overlap between the mask the next round would take from the
  weights as they are now and the one at the previous evaluation, against training epochs; a live
  chart that climbs to 1 as the ticket's mask settles.

Data in, figure out: labels, accuracies (fractions) and colours arrive as arguments.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from . import theme

TICKET_COLOUR, CONTROL_COLOUR, DENSE_COLOUR = theme.OKABE_ITO["orange"], theme.OKABE_ITO["grey"], theme.OKABE_ITO["blue"]


def _fractions(name: str, values: Sequence[float | None]) -> list[float | None]:
    out = []
    for v in values:
        if v is not None and (not np.isfinite(v) or not 0.0 <= float(v) <= 1.0):
            raise ValueError(f"{name} must be fractions between 0 and 1 (or None), got {list(values)!r}")
        out.append(None if v is None else float(v))
    return out


def ticket_accuracy(kept: Sequence[float], ticket: Sequence[float | None], control: Sequence[float | None],
                    dense: float | None, ticket_label: str = "winning ticket", control_label: str = "random re-init",
                    colours: Mapping[str, str] | None = None) -> go.Figure:
    """Accuracy against weights remaining (%) per round: ticket and control lines, dense as a dashed line.
    ``kept``, ``ticket`` and ``control`` have one entry per round (None: not measured yet)."""
    kept_f, ticket_f, control_f = _fractions("kept", kept), _fractions("ticket", ticket), _fractions("control", control)
    if not len(kept_f) == len(ticket_f) == len(control_f):
        raise ValueError(f"one kept share, ticket and control accuracy per round: got {len(kept_f)}, "
                         f"{len(ticket_f)}, {len(control_f)}")
    colours = dict(colours or {})
    fig = go.Figure()
    for label, values, colour, dash in ((ticket_label, ticket_f, colours.get("ticket", TICKET_COLOUR), "solid"),
                                        (control_label, control_f, colours.get("control", CONTROL_COLOUR), "dot")):
        pts = [(100 * k, 100 * a) for k, a in zip(kept_f, values) if k is not None and a is not None]
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers", name=label,
                                 line={"color": colour, "dash": dash, "width": 2.5}, marker={"size": 8},
                                 hovertemplate="%{x:.1f}% of weights: %{y:.2f}%<extra>" + label + "</extra>"))
    if dense is not None:
        fig.add_hline(y=100 * float(dense), line={"color": colours.get("dense", DENSE_COLOUR), "dash": "dash"},
                      annotation_text=f"dense {100 * dense:.2f}%", annotation_position="bottom left")
    fig.update_xaxes(type="log", autorange="reversed")
    theme.apply(fig, "Winning ticket vs the same mask re-initialised", "weights remaining (%, log scale)",
                "test accuracy (%)", subtitle="the ticket should stay at the dense line as the control falls away")
    return theme.fit_legend(fig, [ticket_label, control_label], width_px=560)


def mask_overlap(series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                 colours: Mapping[str, str] | None = None) -> go.Figure:
    """``{run label: (epochs, Jaccard overlaps)}``: how much the next round's mask still changes
    between evaluations, per run (1 = settled)."""
    fig = go.Figure()
    for i, (label, (x, y)) in enumerate(series.items()):
        if len(x) != len(y):
            raise ValueError(f"{label}: {len(x)} epochs but {len(y)} overlaps")
        colour = (colours or {}).get(label, theme.SERIES[i % len(theme.SERIES)])
        fig.add_trace(go.Scatter(x=list(x), y=list(y), mode="lines+markers", name=label, line={"color": colour},
                                 hovertemplate="epoch %{x:.2f}: Jaccard %{y:.3f}<extra>" + label + "</extra>"))
    fig.update_yaxes(range=[0, 1.02])
    theme.apply(fig, "Mask overlap: is the next round's mask settling?", "epoch",
                "Jaccard with the previous evaluation's mask",
                subtitle="the mask the next round would prune to, computed from the weights at each evaluation")
    return theme.fit_legend(fig, list(series), width_px=560)  # nine runs' legend above the plot covered the title
