"""The Deep Compression page's running stage, live, and its collapse warning.

Han, Mao, Dally 2016: a pruning run, then a k-means run from its weights. While a stage trains,
``show_stage_live`` draws it from its snapshots (``kdviz.present.deep_compression.stage_live``):
sparsity per layer beside accuracy while pruning (Zhu & Gupta's AGP schedule), a layer's codebook
beside accuracy while the shared values are fine-tuned. Once the experiment has ended, the stage
picked (the last by default) comes back as a replay: a play button and a scrubber over its
snapshots, played in the browser (``kdviz.app.replay``). ``show_collapse_warning`` shows
``collapse_warning``'s sentence and advice when the compressed model's accuracy has collapsed.

The page calls both inside its refreshing fragment, after ``view.refresh()``; every sentence and
every choice of figure comes from ``kdviz.present.deep_compression``.
"""
from __future__ import annotations

import streamlit as st

from ..present.deep_compression import (
    CollapseWarning, DeepCompressionView, StageLive, collapse_warning, stage_drawer, stage_figures, stage_live,
    stage_snapshots,
)
from .charts import show_chart
from .components import pick_layer
from .replay import REPLAY_HINT, cached_replay

LAYER_KEY, STAGE_KEY = "dc_live_layer", "dc_live_stage"


def _stage_picked(view: DeepCompressionView, default: str) -> str:
    """Once the experiment has ended: which stage to replay (both have snapshots to show)."""
    stages = [name for name in view.names if stage_snapshots(view, name)]
    if len(stages) < 2:
        return default
    if st.session_state.get(STAGE_KEY) not in stages:
        st.session_state[STAGE_KEY] = default
    st.segmented_control("Replay the stage", stages, key=STAGE_KEY, format_func=view.label)
    return st.session_state.get(STAGE_KEY) or default


def _with_layer(view: DeepCompressionView, live: StageLive) -> StageLive:
    """The layer picker for a stage drawn per layer (the codebook), and the stage drawn at that layer."""
    if live.layer is None:
        return live
    layer = pick_layer(LAYER_KEY, live.layers, label="Codebook of layer")
    return live if layer == live.layer else stage_live(view, live.shown, layer)


def show_stage_live(view: DeepCompressionView, key: str = "dc-live") -> StageLive | None:
    """The running stage's two charts and caption; once the experiment has ended, a picked stage's
    replay beside its whole accuracy curve. Returns what was drawn (None before the first snapshot)."""
    live = stage_live(view, layer=st.session_state.get(LAYER_KEY))
    if live is None:
        st.caption("The running stage's charts appear with its first snapshot…")
        return None
    if view.done:
        stage = _stage_picked(view, live.stage)
        if stage != live.stage:
            live = stage_live(view, stage_snapshots(view, stage)[-1], st.session_state.get(LAYER_KEY))
    live = _with_layer(view, live)
    left, right = st.columns(2)
    replay = cached_replay(view.views[live.stage], f"{key}-{live.stage}-{live.layer}",
                           stage_drawer(view, live.stage, "progress", live.layer)) if view.done else None
    with left:
        show_chart(replay if replay is not None else live.figures["progress"], f"{key}-progress",
                   caption=REPLAY_HINT if replay is not None else None)
    with right:
        accuracy = stage_figures(view, live.shown, live.layer, marked=False)["accuracy"] if view.done \
            else live.figures["accuracy"]
        show_chart(accuracy, f"{key}-accuracy")
    st.caption(live.caption)
    return live


def show_collapse_warning(view: DeepCompressionView) -> CollapseWarning | None:
    """A warning box when the compressed model's accuracy has collapsed (the stage that lost it and
    what to change); nothing otherwise. Returns the warning shown."""
    warning = collapse_warning(view.report())
    if warning is not None:
        st.warning(f"**{warning.message}** {warning.advice}", icon=":material/warning:")
    return warning


__all__ = ["LAYER_KEY", "STAGE_KEY", "show_collapse_warning", "show_stage_live"]
