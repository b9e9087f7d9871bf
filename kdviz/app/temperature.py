"""The soft-targets explorer as a Streamlit component: the temperature slider redraws in the browser.

A slider move used to be a server round trip (0.24 to 0.70 s from drag to redraw, issue 14) though
the server computed in 8 ms. Now ``kdviz.present.temperature.explorer_spec`` precomputes, per
slider stop, what changes with T (softmax(z / T), Hinton, Vinyals, Dean 2015, eq. 1) and the page
hands it to ``PLAYER_JS`` in a small component (a static ``index.html`` beside plotly's own
``plotly.min.js``, no new dependency). A move redraws the probability bars, their title and caption
and the entropy curve's marker in the browser; the component then reports the stop
(``{"T": ..., "index": ...}``), so the page's state follows without redrawing anything.

The component speaks Streamlit's iframe protocol directly (``streamlit:componentReady``,
``streamlit:render``, ``streamlit:setComponentValue``, ``streamlit:setFrameHeight``). It takes a new
stop from the server only when the server changed T or the content (``rev`` or the spec's ``id``
differ from what it drew), so a rerun that merely echoes a move never snaps the slider back.
Each render also carries Streamlit's theme (``theme.backgroundColor``, ``theme.textColor``): in a
dark theme the player draws its background, text, axes and gridlines in those colours.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..present.temperature import PLAYER_JS
from .browser_component import KEEP_NEWEST, component_folder as _folder, declared, folder_pattern, page_html
from .browser_component import remove_stale_folders as _remove_stale

COMPONENT_NAME = "kdviz_soft_targets_player"
# The component's folders, one per content: ``soft-targets-`` and 12 hex digits of its stamp. Only
# folders named so are ever removed, and only when stale (``remove_stale_folders``).
FOLDER_NAME = "soft-targets"
FOLDER_PATTERN = folder_pattern(FOLDER_NAME)


def component_folder(root: Path | None = None) -> Path:
    """The component's static folder (``index.html`` and a copy of plotly's ``plotly.min.js``),
    written once per content under ``cache_root()/streamlit-components``; earlier versions there
    are removed once stale (``browser_component.remove_stale_folders``)."""
    return _folder(FOLDER_NAME, page_html(PLAYER_JS, "kdvizTemperaturePlayer", "T"), root)


def remove_stale_folders(current: Path, **limits: Any) -> list[Path]:
    """Remove stale earlier versions of this player beside ``current`` (``keep``, ``stale_after_s``)."""
    return _remove_stale(current, FOLDER_PATTERN, **limits)


@functools.lru_cache(maxsize=1)
def _component() -> Callable[..., Any]:
    return declared(COMPONENT_NAME, str(component_folder()))


def soft_targets_player(spec: dict, index: int, rev: int, key: str, on_change: Callable[[], None],
                        image_format: str = "png") -> Any:
    """Draw the explorer for ``spec`` (``present.temperature.explorer_spec``) at stop ``index``.

    ``rev``: bump it whenever the server sets T itself (typed T, restored state), so the browser
    moves the slider; ``on_change`` runs when the user moves it (the value is in
    ``st.session_state[key]``: ``{"T", "index", "id"}``). Returns that value, or None before a move.
    """
    return _component()(spec=spec, index=int(index), rev=int(rev), image_format=image_format, key=key,
                        on_change=on_change, default=None)


__all__ = ["soft_targets_player", "component_folder", "remove_stale_folders", "COMPONENT_NAME", "KEEP_NEWEST"]
