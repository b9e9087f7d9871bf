"""Replays of finished runs for both UIs: the live chart's own drawing function applied to a spread of
the run's snapshots, stacked into one browser-side animation (``kdviz.figures.replay``).

A live chart draws the latest snapshot while a run trains; once the run has finished, the same chart
gets a play button and a scrubber over its snapshots, so a class can watch the masks, codebooks, FSP
matrices, attention maps or soft targets form again at any speed, without retraining.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import plotly.graph_objects as go

from ..figures.replay import frame_indices, replay

MAX_FRAMES = 40  # a replay's frames travel to the browser in one figure: keep it small


def snapshot_label(snapshot: Any) -> str:
    """"epoch 2.5 · step 120" for a snapshot (anything with ``epoch`` and ``step``)."""
    return f"epoch {float(snapshot.epoch):.1f} · step {int(snapshot.step)}"


def replay_figure(snapshots: Sequence[Any], draw: Callable[[Any], go.Figure | None],
                  max_frames: int = MAX_FRAMES, label: Callable[[Any], str] = snapshot_label,
                  frame_ms: int = 250) -> go.Figure | None:
    """The chart ``draw(snapshot)`` for up to ``max_frames`` snapshots spread over the run (the
    first and the last always among them), as one figure with a play button and a scrubber.

    None when there are fewer than two drawable snapshots (nothing to replay). Snapshots ``draw``
    cannot use (it returns None) are skipped; frames whose trace count differs from the last frame's
    (a chart that gains a trace mid-run) are skipped too, so the animation stays coherent.
    """
    picked = [snapshots[i] for i in frame_indices(len(snapshots), max_frames)]
    drawn = [(s, draw(s)) for s in picked]
    drawn = [(s, fig) for s, fig in drawn if fig is not None]
    if len(drawn) < 2:
        return None
    traces = len(drawn[-1][1].data)
    drawn = [(s, fig) for s, fig in drawn if len(fig.data) == traces]
    if len(drawn) < 2:
        return None
    return replay([fig for _, fig in drawn], [label(s) for s, _ in drawn], frame_ms=frame_ms)


__all__ = ["MAX_FRAMES", "replay_figure", "snapshot_label"]
