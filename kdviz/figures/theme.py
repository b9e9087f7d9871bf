"""One look for every kdviz chart: a colour-blind-safe palette and a shared layout.

Colours are Okabe & Ito's palette ("Color Universal Design", 2008), safe for the common forms of
colour blindness. The same run role keeps the same colour on every page and in every notebook.
"""
from __future__ import annotations

import plotly.graph_objects as go

from ..palette import OKABE_ITO, ROLE_COLORS, SERIES  # noqa: F401  (re-exported: figures use theme.*)

SEQUENTIAL = "Viridis"  # perceptually uniform, colour-blind safe: masks, matrices, index maps
DIVERGING = "RdBu_r"  # differences centred on zero (blue negative, red positive)

FONT_FAMILY = "Inter, 'Source Sans Pro', 'Helvetica Neue', Arial, sans-serif"


def role_color(role: str, fallback_index: int = 0) -> str:
    """The colour of a run role (``"teacher"``, ``"kd student"``...), or a series colour."""
    return ROLE_COLORS.get(role, SERIES[fallback_index % len(SERIES)])


def apply(
    fig: go.Figure,
    title: str,
    x_title: str | None = None,
    y_title: str | None = None,
    height: int | None = 380,
    subtitle: str | None = None,
) -> go.Figure:
    """Style ``fig`` in place and return it: title (what to notice), axis titles (with units)."""
    text = f"<b>{title}</b>" + (f"<br><span style='font-size:12px;color:#555'>{subtitle}</span>" if subtitle else "")
    fig.update_layout(
        template="plotly_white",
        title={"text": text, "x": 0.0, "xanchor": "left", "font": {"size": 16}},
        font={"family": FONT_FAMILY, "size": 13, "color": "#222"},
        margin={"l": 60, "r": 20, "t": 80 if subtitle else 60, "b": 50},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0},
        hoverlabel={"font": {"family": FONT_FAMILY}},
    )
    if height is not None:
        fig.update_layout(height=height)
    if x_title is not None:
        fig.update_xaxes(title_text=x_title)
    if y_title is not None:
        fig.update_yaxes(title_text=y_title)
    return fig
