"""Render a kdviz figure the same way everywhere: plotly's toolbar (PNG or SVG) and a CSV button.

The camera button of plotly's toolbar saves the chart as an image; its format (PNG or SVG) is the
sidebar's "Chart images" choice. Below each chart a short caption says what to notice, and a
"Download CSV" button gives the chart's data in long form (one row per point: series, x, y).

Light and dark: charts are drawn with ``theme="streamlit"``, so the browser restyles each figure for
the look it shows, live (a switch in the settings menu needs no rerun): background, grid, fonts and
the text colour follow the app, while every trace keeps the colour the figure gives it (each run its
method's). Measured in Chromium (Streamlit 1.67, ``--theme.base dark``): with ``theme=None`` a kdviz
figure stays a white box with dark text on the dark page; with ``"streamlit"`` its background is the
page's and its title and ticks light. Two things the browser cannot know were meant as "ink": a black
trace (the total loss) and a grey subtitle span. ``ink_for_theme`` swaps them for the placeholder
colours Streamlit's chart theme replaces in the browser (its gray 90 and gray 70: dark on a light page,
light on a dark one). ``st.context.theme.type`` is no help here: it still said "light" on a dark page.

``training_chart_options`` is the row of controls an accuracy or loss chart offers: zoom to the data,
a log loss axis and TensorBoard's smoothing slider (``figures.training.ema_smooth``).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

IMAGE_FORMATS = ("png", "svg")
IMAGE_FORMAT_KEY = "kdviz_image_format"


def toolbar_config(file_stem: str, image_format: str | None = None) -> dict:
    """Plotly config: the camera button downloads ``<file_stem>.<png|svg>`` at 2x scale."""
    fmt = (image_format or st.session_state.get(IMAGE_FORMAT_KEY, "png")).lower()
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"image format must be one of {', '.join(IMAGE_FORMATS)}, got {fmt!r}")
    return {
        "displaylogo": False,
        "toImageButtonOptions": {"format": fmt, "filename": file_stem, "scale": 2},
        "modeBarButtonsToRemove": ["lasso2d", "select2d"],
    }


def _values(values) -> list:
    if values is None:
        return []
    return list(np.asarray(values).tolist()) if not isinstance(values, (list, tuple)) else list(values)


def figure_frame(fig: go.Figure) -> pd.DataFrame:
    """The data of every trace in long form: ``series, x, y`` (heatmaps: ``series, row, column, value``)."""
    frames = []
    for i, trace in enumerate(fig.data):
        name = trace.name if getattr(trace, "name", None) else f"{trace.type} {i + 1}"
        if trace.type == "heatmap":
            z = np.asarray(trace.z, dtype=float)
            rows, cols = np.indices(z.shape)
            frames.append(pd.DataFrame({"series": name, "row": rows.ravel(), "column": cols.ravel(), "value": z.ravel()}))
            continue
        x, y = _values(getattr(trace, "x", None)), _values(getattr(trace, "y", None))
        if not y:
            continue
        if not x:
            x = list(range(len(y)))
        frames.append(pd.DataFrame({"series": name, "x": x[: len(y)], "y": y[: len(x)]}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["series", "x", "y"])


def file_stem(text: str) -> str:
    """A safe file name stem: ``"Test accuracy (%)"`` -> ``"test-accuracy"``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "chart"


def show_chart(
    fig: go.Figure, key: str, caption: str | None = None, data: pd.DataFrame | None = None, csv: bool = True
) -> None:
    """Draw ``fig`` with the export toolbar, a caption under it, and a "Download CSV" button.

    ``data`` overrides the CSV contents (default: ``figure_frame(fig)``). ``key`` names the chart
    (unique on the page) and its downloaded files.
    """
    stem = file_stem(key)
    st.plotly_chart(ink_for_theme(fig), theme="streamlit", config=toolbar_config(stem), key=f"chart-{key}")
    if caption:
        st.caption(caption)
    if csv:
        csv_button((lambda: figure_frame(fig)) if data is None else data, stem)


def csv_button(frame: pd.DataFrame | Callable[[], pd.DataFrame], stem: str) -> None:
    """A quiet "Download CSV" link-style button for ``frame`` (no rerun when clicked). A callable
    ``frame`` is built only when the user clicks (a slider move no longer pays for every chart's CSV)."""
    data = (lambda: frame().to_csv(index=False)) if callable(frame) else frame.to_csv(index=False)
    st.download_button(
        "Download CSV", data, file_name=f"{stem}.csv", mime="text/csv", key=f"csv-{stem}",
        on_click="ignore", icon=":material/download:", type="tertiary", help="This chart's data as a CSV file",
    )


# Streamlit's chart-theme placeholders (streamlit/elements/lib/streamlit_plotly_theme.py), replaced in the
# browser by the active theme's colours: text-like grey 90 for black "ink" traces, grey 70 for subtitles.
STREAMLIT_GRAY_90, STREAMLIT_GRAY_70 = "#000037", "#000036"
_INK = {"#000000", "black", "#000"}
_MUTED = re.compile(r"color:\s*#555(555)?\b")


def ink_for_theme(fig: go.Figure) -> go.Figure | dict:
    """``fig``, or a plain-dict copy of it (``st.plotly_chart`` takes either) whose black traces and
    grey subtitle spans use Streamlit's theme placeholders (the caller's figure, often cached, is
    never changed)."""
    ink = [t for t in fig.data if str(getattr(getattr(t, "line", None), "color", "") or "").lower() in _INK
           or (isinstance(getattr(getattr(t, "marker", None), "color", None), str) and t.marker.color.lower() in _INK)]
    title = str(fig.layout.title.text or "")
    if not ink and not _MUTED.search(title):
        return fig
    spec = fig.to_dict()  # a plain deep copy: far cheaper than go.Figure(fig), which re-validates everything
    for trace in spec["data"]:
        line, marker = trace.get("line") or {}, trace.get("marker") or {}
        if str(line.get("color", "") or "").lower() in _INK:
            line["color"] = STREAMLIT_GRAY_90
        if isinstance(marker.get("color"), str) and marker["color"].lower() in _INK:
            marker["color"] = STREAMLIT_GRAY_90
    if title:
        spec["layout"]["title"]["text"] = _MUTED.sub(f"color:{STREAMLIT_GRAY_70}", title)
    return spec


@dataclass(frozen=True)
class ChartOptions:
    """How accuracy and loss charts are drawn: ``zoom`` (fit the accuracy axis to the data),
    ``log_loss`` (log loss axis), ``smoothing`` (EMA weight in [0, 1), 0: raw)."""

    zoom: bool = True
    log_loss: bool = False
    smoothing: float = 0.0


def training_chart_options(prefix: str, default: ChartOptions = ChartOptions()) -> ChartOptions:
    """A row of controls (keys ``<prefix>_zoom``, ``<prefix>_log``, ``<prefix>_smooth``) and their values."""
    zoom_col, log_col, smooth_col = st.columns([1, 1, 2], vertical_alignment="center")
    zoom = zoom_col.toggle("Zoom to the data", value=default.zoom, key=f"{prefix}_zoom",
                           help="Fit the accuracy axis to the curves instead of 0-100 %, so a small gap shows.")
    log_loss = log_col.toggle("Log loss axis", value=default.log_loss, key=f"{prefix}_log",
                              help="A loss falls over decades: a log axis shows the late, slow part.")
    smoothing = smooth_col.slider("Smoothing", 0.0, 0.99, value=default.smoothing, step=0.01, key=f"{prefix}_smooth",
                                  help="TensorBoard's smoothing: an exponential moving average of each curve "
                                       "(0: raw values). The raw curve stays faint beneath.")
    return ChartOptions(bool(zoom), bool(log_loss), float(smoothing))
