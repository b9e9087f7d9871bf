"""Render a kdviz figure the same way everywhere: plotly's toolbar (PNG or SVG) and a CSV button.

The camera button of plotly's toolbar saves the chart as an image; its format (PNG or SVG) is the
sidebar's "Chart images" choice. Below each chart a short caption says what to notice, and a
"Download CSV" button gives the chart's data in long form (one row per point: series, x, y).
"""
from __future__ import annotations

import re

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
    st.plotly_chart(fig, theme=None, config=toolbar_config(stem), key=f"chart-{key}")
    if caption:
        st.caption(caption)
    if csv:
        frame = figure_frame(fig) if data is None else data
        csv_button(frame, stem)


def csv_button(frame: pd.DataFrame, stem: str) -> None:
    """A quiet "Download CSV" link-style button for ``frame`` (no rerun when clicked)."""
    st.download_button(
        "Download CSV", frame.to_csv(index=False), file_name=f"{stem}.csv", mime="text/csv", key=f"csv-{stem}",
        on_click="ignore", icon=":material/download:", type="tertiary", help="This chart's data as a CSV file",
    )
