"""Replay: one figure that plays a finished run's snapshots in the browser, with a play button and a
scrubber (plotly animation frames), so scrubbing never waits for the server.

Every frame is a complete figure drawn by the same live-chart function the page uses while training
runs; this module only stacks them. Plotly animates traces by position, so every frame must have the
same number of traces. Axes are fixed to the range that holds every frame's data (an animation does
not autorange), so curves grow inside a still frame rather than rescaling under the viewer.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

_DEFAULT_HEIGHT = 420  # plotly's own default is 450; kdviz's charts set theirs
_AXIS_KEYS = ("x", "y")
_CONTROLS_PX = 120  # the play buttons and the scrubber (its current value, rail and step labels)


def _numbers(values) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError):
        return np.empty(0)
    return arr[np.isfinite(arr)]


def _axis_name(trace, key: str) -> str:
    ref = getattr(trace, f"{key}axis", None) or key
    return f"{key}axis" if ref == key else f"{key}axis{ref[1:]}"


def _data_ranges(frames: Sequence[go.Figure]) -> dict[str, list[float]]:
    """``{"xaxis": [lo, hi], "yaxis2": [...]}`` over every numeric scatter/bar trace of every frame,
    padded by 4 % (bars start at zero). Heatmaps and categorical axes are left to plotly."""
    spans: dict[str, list[float]] = {}
    for fig in frames:
        for trace in fig.data:
            if trace.type not in ("scatter", "scattergl", "bar"):
                continue
            for key in _AXIS_KEYS:
                values = _numbers(getattr(trace, key, None) if getattr(trace, key, None) is not None else [])
                if values.size == 0:
                    continue
                name = _axis_name(trace, key)
                lo, hi = float(values.min()), float(values.max())
                if trace.type == "bar" and key == ("y" if trace.orientation != "h" else "x"):
                    lo, hi = min(lo, 0.0), max(hi, 0.0)
                old = spans.get(name)
                spans[name] = [min(lo, old[0]), max(hi, old[1])] if old else [lo, hi]
    padded = {}
    for name, (lo, hi) in spans.items():
        pad = 0.04 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.05
        padded[name] = [lo - pad, hi + pad]
    return padded


def _controls(labels: Sequence[str], frame_ms: int, prefix: str, top: float = -0.12, px: float = 0.003) -> dict:
    """Play/Pause on a row of their own from ``top`` (paper units; ``px`` paper units per pixel), the
    scrubber the full width under them, its current value on the right, so nothing overlaps."""
    play = {"label": "▶ Play", "method": "animate",
            "args": [None, {"frame": {"duration": frame_ms, "redraw": True}, "fromcurrent": True,
                            "transition": {"duration": 0}}]}
    pause = {"label": "❚❚ Pause", "method": "animate",
             "args": [[None], {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}]}
    steps = [{"label": label, "method": "animate",
              "args": [[f"f{i}"], {"frame": {"duration": 0, "redraw": True}, "mode": "immediate",
                                   "transition": {"duration": 0}}]}
             for i, label in enumerate(labels)]
    return {
        "updatemenus": [{"type": "buttons", "direction": "left", "showactive": False, "x": 0.0,
                         "y": top, "xanchor": "left", "yanchor": "top", "pad": {"t": 0, "r": 8},
                         "buttons": [play, pause]}],
        "sliders": [{"active": len(steps) - 1, "steps": steps, "x": 0.0, "len": 1.0, "y": top - 34 * px,
                     "yanchor": "top", "pad": {"t": 0, "l": 50, "r": 50},  # room for the end ticks' labels
                     "currentvalue": {"prefix": prefix, "visible": True, "xanchor": "right"}}],
    }


def replay(frames: Sequence[go.Figure], labels: Sequence[str], frame_ms: int = 250,
           prefix: str = "") -> go.Figure:
    """One figure showing ``frames[-1]`` with every frame as an animation step named by ``labels``
    (e.g. "epoch 3.0"), a play/pause button and a scrubber under the plot.

    Raises ``ValueError`` for no frames, a label count that differs from the frame count, or frames
    with different numbers of traces (plotly would silently mix them up).
    """
    if not frames:
        raise ValueError("replay needs at least one frame (the run has no snapshots yet)")
    if len(labels) != len(frames):
        raise ValueError(f"replay got {len(frames)} frames but {len(labels)} labels")
    counts = {len(f.data) for f in frames}
    if len(counts) != 1:
        raise ValueError(f"replay frames must have the same number of traces, got {sorted(counts)}")
    if frame_ms <= 0:
        raise ValueError(f"frame_ms must be positive, got {frame_ms}")
    last = frames[-1]
    fig = go.Figure(last)
    fig.frames = [go.Frame(data=f.data, name=f"f{i}", layout={"title": f.layout.title})
                  for i, f in enumerate(frames)]
    for name, span in _data_ranges(frames).items():
        fig.layout[name].update(range=span, autorange=False)
    # The controls go in a strip added under everything the chart already has there (axis title,
    # a legend placed below the plot), so they never overlap it: their top in paper units.
    below = fig.layout.margin.b if fig.layout.margin.b is not None else 60
    height = (fig.layout.height or _DEFAULT_HEIGHT) + _CONTROLS_PX
    plot_px = max(height - (fig.layout.margin.t if fig.layout.margin.t is not None else 100) - below - _CONTROLS_PX, 40)
    fig.update_layout(**_controls(list(labels), frame_ms, prefix, top=-(below + 4) / plot_px, px=1 / plot_px),
                      margin_b=below + _CONTROLS_PX, height=height)
    return fig


def frame_indices(count: int, max_frames: int) -> list[int]:
    """At most ``max_frames`` indices spread evenly over ``range(count)``, always keeping the first
    and the last (so a replay ends on what the live chart showed)."""
    if count < 0 or max_frames < 1:
        raise ValueError(f"need count >= 0 and max_frames >= 1, got {count}, {max_frames}")
    if count <= max_frames:
        return list(range(count))
    picks = np.linspace(0, count - 1, max_frames).round().astype(int)
    return sorted(set(int(i) for i in picks))


__all__ = ["frame_indices", "replay"]
