"""The page's "Export" menu: a session report (HTML with the charts and settings) and the Python
that reproduces its runs with kdviz (``kdviz.present.export``). Both are built only when the user
clicks (deferred download data), so a page with live charts pays nothing for them on each rerun."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from ..present.export import reproduce_code, session_report
from .charts import file_stem


def export_menu(title: str, settings: Mapping[str, Any], runs: Sequence[tuple[str, Any]],
                charts: Callable[[], Sequence[tuple[str, go.Figure]]] | None = None, key: str = "") -> None:
    """A popover with "Session report (HTML)" and "Code for these settings" for ``runs``
    (``(label, TrainConfig)`` pairs); ``charts()`` gives the report's ``(caption, figure)`` pairs."""
    stem = file_stem(key or title)
    with st.popover("Export", icon=":material/ios_share:", help="A report of this page, or the Python that reproduces its runs"):
        if not runs:
            st.caption("Start a run first: then this page's settings can be exported as code and as a report.")
            return
        code = reproduce_code(list(runs), title=title)
        st.download_button("Session report (HTML)", lambda: session_report(title, settings, list(charts() if charts else []), code),
                           file_name=f"{stem}-report.html", mime="text/html", on_click="ignore",
                           icon=":material/description:", key=f"export-report-{stem}")
        st.download_button("Code for these settings (.py)", code, file_name=f"{stem}.py", mime="text/x-python",
                           on_click="ignore", icon=":material/code:", key=f"export-code-{stem}")
        st.code(code, language="python")


__all__ = ["export_menu"]
