"""Replay in a notebook: a play button and a scrubber over a finished run's snapshots.

plotly's ``FigureWidget`` does not play animation frames, so a widget replays on the kernel side:
``ipywidgets.Play`` steps an ``IntSlider`` (linked in the browser with ``jslink``, so the play button
needs no kernel round trip to advance), and each new position redraws the live chart with the same
figure function it uses while the run trains, through a ``Throttle`` so a fast scrub never floods
the browser. The bar stays hidden until the run has ended with at least two snapshots.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as W

from ..present.replay import snapshot_label
from ._live import Throttle


class ReplayBar(W.HBox):
    """``draw(snapshot)`` on every scrubber move; ``set_snapshots(snaps)`` arms it (>= 2 snapshots)."""

    def __init__(self, draw: Callable[[Any], None], interval_ms: int = 400,
                 label: Callable[[Any], str] = snapshot_label,
                 on_error: Callable[[BaseException], None] | None = None) -> None:
        if not callable(draw):
            raise TypeError(f"draw must be callable, got {type(draw).__name__}")
        self._draw, self._label = draw, label
        self.snapshots: list[Any] = []
        self.play = W.Play(value=0, min=0, max=0, step=1, interval=int(interval_ms), description="replay",
                           tooltip="replay the run's snapshots")
        self.scrubber = W.IntSlider(value=0, min=0, max=0, readout=False, description="replay",
                                    continuous_update=True, layout=W.Layout(width="320px"))
        self.where = W.Label()
        W.jslink((self.play, "value"), (self.scrubber, "value"))
        self._throttle = Throttle(self._show, 100, on_error=on_error)  # a failed redraw must not kill the bar
        self.scrubber.observe(lambda _: self._throttle(), names="value")
        super().__init__([self.play, self.scrubber, self.where],
                         layout=W.Layout(display="none", align_items="center"))

    def set_snapshots(self, snapshots: Sequence[Any]) -> None:
        """Arm the bar on these snapshots (at the last one, which the live chart already shows)."""
        self.snapshots = list(snapshots)
        if len(self.snapshots) < 2:
            self.layout.display = "none"
            return
        last = len(self.snapshots) - 1
        for control in (self.play, self.scrubber):
            control.max = last
        self.scrubber.value = last
        self.where.value = self._label(self.snapshots[last])
        self.layout.display = "flex"

    def _show(self) -> None:
        if not self.snapshots:
            return
        snapshot = self.snapshots[min(self.scrubber.value, len(self.snapshots) - 1)]
        self._draw(snapshot)
        self.where.value = self._label(snapshot)  # after the chart: the label never runs ahead of it

    def flush(self) -> None:
        """Draw a pending scrubber position now (tests)."""
        self._throttle.flush()


__all__ = ["ReplayBar"]
