"""The compression explorers' slider as a Streamlit component that redraws in the browser.

``kdviz.present.stops_player.stops_spec`` holds every stop's charts, metrics and table; this
component (``browser_component``: a static page beside plotly's ``plotly.min.js``) draws the stop
the page asks for and redraws any other by itself when the slider moves, then reports
``{"value", "index", "id"}`` so the page's state (the exact box, the URL, the downloads) follows.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from ..present.stops_player import STOPS_JS
from .browser_component import component_folder, declared, page_html
from .charts import IMAGE_FORMAT_KEY

COMPONENT_NAME = "kdviz_stops_player"
FOLDER_NAME = "stops-player"


def player_folder(root: Path | None = None) -> Path:
    """The component's static folder (written once per content)."""
    return component_folder(FOLDER_NAME, page_html(STOPS_JS, "kdvizStopsPlayer", "value"), root)


@functools.lru_cache(maxsize=1)
def _component() -> Callable[..., Any]:
    return declared(COMPONENT_NAME, str(player_folder()))


def stops_player(spec: dict, index: int, rev: int, key: str, on_change: Callable[[], None]) -> Any:
    """Draw ``spec`` at stop ``index``. ``rev``: bump it whenever the server sets the value itself
    (a typed value, a link), so the browser moves its slider; ``on_change`` runs after the user moved
    it (the value is in ``st.session_state[key]``: ``{"value", "index", "id"}``)."""
    return _component()(spec=spec, index=int(index), rev=int(rev), key=key, on_change=on_change, default=None,
                        image_format=st.session_state.get(IMAGE_FORMAT_KEY, "png"))


__all__ = ["stops_player", "player_folder", "COMPONENT_NAME"]
