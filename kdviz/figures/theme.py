"""One look for every kdviz chart: a colour-blind-safe palette and a shared layout.

Colours are Okabe & Ito's palette ("Color Universal Design", 2008), safe for the common forms of
colour blindness. The same run role keeps the same colour on every page and in every notebook.
"""
from __future__ import annotations

import math
import numbers
import re

import numpy as np
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


def fitted_range(values, bounds: tuple[float, float] | None = None, min_span: float = 2.0,
                 pad: float = 0.08) -> list[float] | None:
    """An axis range that fits ``values`` (non-finite ones ignored): their span plus ``pad`` of it
    on each side, at least ``min_span`` wide, kept inside ``bounds`` (e.g. 0-100 for a percentage).

    A fixed 0-100 accuracy axis hides a 2-point gap between two students; this zooms to it. None
    when there is no finite value (let plotly choose)."""
    finite = [float(v) for v in values if isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)]
    if not finite:
        return None
    low, high = min(finite), max(finite)
    span = max(high - low, min_span)
    centre = (low + high) / 2
    low, high = centre - span / 2 - pad * span, centre + span / 2 + pad * span
    if bounds is not None:
        if high > bounds[1]:
            low, high = low - (high - bounds[1]), bounds[1]
        if low < bounds[0]:
            low, high = bounds[0], min(bounds[1], high + (bounds[0] - low))
    return [low, high]


LEGEND_ROW_PX = 22  # one row of a horizontal legend
LEGEND_MAX_ROWS = 4  # rows shown before the legend scrolls (plotly's legend.maxheight)


def log_ticks(values) -> dict:
    """Tick values and labels 1-2-5 per decade over ``values`` (positive numbers), for a log axis:
    plotly labels a log axis's minor ticks by their first digit alone ("2" for 0.2 and for 20), which
    reads as clutter. Empty when no value is positive."""
    v = np.asarray([x for x in np.ravel(values) if np.isfinite(x) and x > 0], dtype=float)
    if v.size == 0:
        return {}
    low, high = v.min(), v.max()
    ticks = [m * 10.0 ** e for e in range(int(np.floor(np.log10(low))) - 1, int(np.ceil(np.log10(high))) + 1)
             for m in (1, 2, 5)]
    ticks = [t for t in ticks if low / 1.5 <= t <= high * 1.5] or [float(f"{low:.1g}")]
    return {"tickvals": ticks, "ticktext": [f"{t:g}" for t in ticks]}


def legend_rows(labels, width_px: int = 760) -> int:
    """How many rows a horizontal legend of ``labels`` takes in a ``width_px``-wide chart
    (about 7 px per character of 13 px text plus 40 px for the line sample and gap)."""
    rows, used = 1, 0
    for label in labels:
        entry = 40 + 7 * len(str(label))
        if used and used + entry > width_px:
            rows, used = rows + 1, 0
        used += entry
    return rows


def fit_legend(fig: go.Figure, labels, width_px: int = 760, x_title_px: int = 50) -> go.Figure:
    """Put ``fig``'s legend under the plot, below the x-axis title, and grow the figure by the
    legend's height so the plot keeps its size: the legend never covers the title, and with many
    runs it scrolls after ``LEGEND_MAX_ROWS`` rows instead of swallowing the chart. ``labels``:
    the legend's entries (their lengths set the row count). Call it after ``apply`` (it reads the
    height and top margin); the legend is placed in paper coordinates, so a caller may still move it
    (``widgets._live.LEGEND_INSIDE_TOP_RIGHT``)."""
    needed = legend_rows(labels, width_px)
    rows = min(needed, LEGEND_MAX_ROWS)
    legend_px = LEGEND_ROW_PX * rows + 8
    height = int(fig.layout.height or 380)
    top = int(fig.layout.margin.t if fig.layout.margin.t is not None else 60)
    plot_px = max(height - top - x_title_px - 6, 60)  # unchanged: the figure grows by the legend
    legend = {"orientation": "h", "xanchor": "left", "x": 0.0, "yanchor": "top", "y": -(x_title_px + 2) / plot_px}
    if needed > rows:
        legend["maxheight"] = legend_px
    fig.update_layout(legend=legend, margin={"b": x_title_px + legend_px + 6}, height=height + legend_px)
    return fig


def wrap_figure_title(fig: go.Figure, width: int = 90) -> go.Figure:
    """Wrap a plain bold title (``<b>text</b>``) at ``width`` characters and make the top margin
    room for its lines; a title holding other markup is left as it is."""
    text = str(fig.layout.title.text or "")
    plain = text.removeprefix("<b>").removesuffix("</b>")
    if "<" in plain or len(plain) <= width:
        return fig
    fig.layout.title.text = f"<b>{wrap_title(plain, width)}</b>"
    lines = fig.layout.title.text.count("<br>") + 1
    fig.update_layout(margin={"t": 40 + 22 * lines}, height=(fig.layout.height or 380) + 22 * (lines - 1))
    return fig


# The app's light and dark looks (Streamlit's default theme colours): text, muted text, background,
# grid. ``follow_theme`` restyles a finished figure for one of them.
THEME_COLOURS = {
    "light": {"text": "#222222", "muted": "#555555", "background": "#ffffff", "grid": "#e6e6e6", "template": "plotly_white"},
    "dark": {"text": "#fafafa", "muted": "#a3a8b8", "background": "#0e1117", "grid": "#31333f", "template": "plotly_dark"},
}
_MUTED = re.compile(r"color:\s*(#555555|#555|#a3a8b8)\b")  # a grey subtitle in either look
_INK = {"#000000", "black"}  # trace colours drawn as the text colour (Okabe & Ito's black is invisible on dark)


def follow_theme(fig: go.Figure, base: str | None) -> go.Figure:
    """Restyle ``fig`` in place for the app's ``"light"`` or ``"dark"`` theme (None: light):
    template, background, text and grid colours, grey subtitles, and black traces drawn in the
    text colour. Data colours (each run's method colour) are kept."""
    look = THEME_COLOURS.get(base or "light")
    if look is None:
        raise ValueError(f"theme must be 'light' or 'dark', got {base!r}")
    fig.update_layout(template=look["template"], paper_bgcolor=look["background"], plot_bgcolor=look["background"],
                      font={"color": look["text"]}, legend={"font": {"color": look["text"]}})
    fig.update_xaxes(gridcolor=look["grid"], zerolinecolor=look["grid"])
    fig.update_yaxes(gridcolor=look["grid"], zerolinecolor=look["grid"])
    if fig.layout.title.text:
        fig.layout.title.text = _MUTED.sub(f"color:{look['muted']}", fig.layout.title.text)
    for trace in fig.data:
        line = getattr(trace, "line", None)
        if line is not None and str(line.color or "").lower() in _INK | {THEME_COLOURS["dark"]["text"]}:
            line.color = "#000000" if base != "dark" else look["text"]
        marker = getattr(trace, "marker", None)
        if marker is not None and isinstance(marker.color, str) and marker.color.lower() in _INK | {THEME_COLOURS["dark"]["text"]}:
            marker.color = "#000000" if base != "dark" else look["text"]
    return fig
