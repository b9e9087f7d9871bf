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


# A horizontal legend under the plot, left-aligned: clear of a two-line title on a narrow chart.
BOTTOM_LEGEND = {"orientation": "h", "yanchor": "top", "y": -0.28, "xanchor": "left", "x": 0.0}


def wrap_title(text: str, width: int = 46) -> str:
    """Break ``text`` at spaces into lines of at most ``width`` characters joined by ``<br>``
    (plotly titles do not wrap); a single word longer than ``width`` keeps its own line."""
    if width < 1:
        raise ValueError(f"wrap_title width must be at least 1 character, got {width}")
    lines: list[str] = []
    for word in text.split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "<br>".join(lines)


def legend_below(fig: go.Figure, y: float = -0.28, rows: int = 1) -> go.Figure:
    """Move ``fig``'s legend under the plot (at paper height ``y``, left-aligned, horizontal) and
    make the bottom margin room for ``rows`` legend lines; returns ``fig`` (changed in place)."""
    if rows < 1:
        raise ValueError(f"legend_below needs at least 1 legend row, got {rows}")
    fig.update_layout(legend={**BOTTOM_LEGEND, "y": y}, margin={"b": 88 + 22 * rows})
    return fig


def compact(fig: go.Figure) -> go.Figure:
    """Fit a chart to half a page (or a 560 px widget): the title's headline in bold, the rest of
    its sentence (after the first ": " or " (") on a grey second line, and the legend under the
    plot instead of over the title. A title already holding markup beyond ``<b>`` is kept as is."""
    text = str(fig.layout.title.text or "")
    plain = text.removeprefix("<b>").removesuffix("</b>")
    if "<" not in plain:
        for sep, keep in ((": ", ""), (" (", "(")):
            if sep in plain:
                head, tail = plain.split(sep, 1)
                fig.layout.title.text = (f"<b>{wrap_title(head)}</b>"
                                         f"<br><span style='font-size:12px;color:#555'>{keep}{tail}</span>")
                break
    lines = str(fig.layout.title.text).count("<br>") + 1
    fig.update_layout(legend={**BOTTOM_LEGEND, "y": -0.25},
                      margin={"t": 40 + 22 * lines, "b": 110}, height=420 + 22 * lines)
    return fig
