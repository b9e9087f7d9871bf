"""A live chart that becomes its own replay once the run has finished (``kdviz.present.replay``).

While the run trains the page draws the latest snapshot, as before. Once it has ended with two or
more snapshots, the same chart comes back with a play button and a scrubber over the snapshots; the
animation runs in the browser, so playing and scrubbing never wait for the server. The replay figure
is built once per run and snapshot count and kept in the session.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from ..present.replay import replay_figure
from .charts import show_chart

REPLAY_HINT = "Finished: press ▶ under the chart to replay the run, or drag the scrubber."
_CACHE = "kdviz_replays"


def cached_replay(view: Any, key: str, draw: Callable[[Any], go.Figure | None]) -> go.Figure | None:
    """The replay figure of ``view``'s snapshots drawn by ``draw``, built once per run, chart key
    and snapshot count (None when there is nothing to replay)."""
    cache: dict = st.session_state.setdefault(_CACHE, {})
    ident = (str(view.path), key, len(view.snapshots))
    if ident not in cache:
        for old in [k for k in cache if k[:2] == ident[:2]]:
            del cache[old]
        cache[ident] = replay_figure(view.snapshots, draw)
    return cache[ident]


def show_live_or_replay(view: Any, key: str, draw: Callable[[Any], go.Figure | None],
                        caption: str | None = None, variant: Any = None) -> None:
    """Draw the latest snapshot while ``view``'s run trains; its replay once the run is done.
    ``variant`` names what ``draw`` depends on besides the snapshot (a layer, a probe image), so a
    replay is rebuilt when it changes while the chart keeps its key."""
    if not view.snapshots:
        st.caption("Waiting for the first snapshot…")
        return
    fig = cached_replay(view, key if variant is None else f"{key}:{variant}", draw) if view.done else None
    if fig is not None:
        show_chart(fig, key, caption=f"{caption} {REPLAY_HINT}" if caption else REPLAY_HINT)
        return
    latest = draw(view.snapshots[-1])
    if latest is None:
        st.caption("Waiting for the first snapshot…")
        return
    show_chart(latest, key, caption=caption)


__all__ = ["REPLAY_HINT", "cached_replay", "show_live_or_replay"]
