"""``SweepMonitor``: run or reopen a Ray Tune sweep in a notebook and watch its heatmap fill in.

The widget twin of the Sweeps page (``kdviz/app/pages/sweeps.py``). Give it a ``SweepSpec`` and press
Start (``kdviz.sweep.start_sweep`` returns at once; trials run on Ray, this machine's cores or the
cluster at ``address`` / ``$RAY_ADDRESS``), or give it a running ``Sweeping`` or a sweep folder to
reopen. A ``_live.Poller`` redraws every ``interval_ms`` from the sweep's record: the heatmap of two
swept fields (mean ± spread over seeds), every trial on parallel coordinates, the best trials, and a
caption from ``kdviz.present.sweep``. Without Ray it shows the install command instead of failing.

    >>> from kdviz.sweep import SweepSpec                                            # doctest: +SKIP
    >>> SweepMonitor(SweepSpec(base={...}, grid={"T": [1, 4], "alpha": [0.5, 0.9]}, seeds=[0, 1]))
"""
from __future__ import annotations

import html
import os
from pathlib import Path

import ipywidgets as W

from ..present.sweep import (
    best_table_figure, default_axes, failed_lines, heatmap_figure, parallel_figure, sweep_caption, swept_fields,
)
from ..sweep import INSTALL_MESSAGE, SweepSpec, Sweeping, load_sweep, ray_available, start_sweep
from ._live import LiveFigure, LiveMonitor, Poller
from .monitor import placeholder

CHART_WIDTH = 760
NO_Y = "(none: pool the rest)"


class SweepMonitor(LiveMonitor, W.VBox):
    """Start (from a ``SweepSpec``), watch (a ``Sweeping``) or reopen (a sweep folder) a sweep."""

    def __init__(self, sweep: SweepSpec | Sweeping | str | os.PathLike, runs_root: str | None = None,
                 address: str | None = None, interval_ms: float = 1000) -> None:
        self.spec = sweep if isinstance(sweep, SweepSpec) else None
        self.sweeping = sweep if isinstance(sweep, Sweeping) else None
        self.record = self.sweeping.record if self.sweeping else None
        if not isinstance(sweep, (SweepSpec, Sweeping)):
            self.record = load_sweep(Path(sweep))
        self._runs_root, self._address, self._interval = runs_root, address, interval_ms
        self.caption = W.HTML()
        self.start_button = W.Button(description="Start", button_style="primary", icon="play",
                                     disabled=self.spec is None or not ray_available())
        self.stop_button = W.Button(description="Stop", icon="stop", disabled=self.sweeping is None)
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.sweeping and self.sweeping.stop())
        self.x_pick, self.y_pick = W.Dropdown(description="x"), W.Dropdown(description="y")
        for pick in (self.x_pick, self.y_pick):
            pick.observe(lambda _: self.redraw(), names="value")
        self.heatmap = LiveFigure(placeholder("The heatmap fills in as trials report"), width=CHART_WIDTH)
        self.parallel = LiveFigure(placeholder("Every trial on parallel coordinates"), width=CHART_WIDTH)
        self.best = LiveFigure(placeholder("The best trials"), width=CHART_WIDTH)
        self.problems = W.HTML()
        W.VBox.__init__(self, [W.HBox([self.start_button, self.stop_button, self.x_pick, self.y_pick]), self.caption,
                               self.heatmap.widget, self.parallel.widget, self.best.widget, self.problems])
        if self.spec is not None and not ray_available():
            self.caption.value = f"<b>{html.escape(INSTALL_MESSAGE)}</b>"
        if self.record is not None:
            self._set_axes()
            self.redraw()
        if self.sweeping is not None:
            self._watch()

    @property
    def done(self) -> bool:
        return self.sweeping is None or self.sweeping.done

    def start(self) -> Sweeping:
        """Start the spec's sweep (once) and watch it."""
        if self.sweeping is not None:
            return self.sweeping
        self.sweeping = start_sweep(self.spec, runs_root=self._runs_root, address=self._address)
        self.record = self.sweeping.record
        self.start_button.disabled, self.stop_button.disabled = True, False
        self._set_axes()
        self._watch()
        return self.sweeping

    def _watch(self) -> None:
        self.poller = Poller(self._tick, interval_ms=self._interval, name="kdviz-sweep-monitor").start()

    def _waitables(self) -> list:
        return [self.sweeping] if self.sweeping is not None else []

    def _tick(self) -> bool:
        done = self.done  # read first: the last results are drawn after the sweep ends
        self.refresh()
        if done:
            self.stop_button.disabled = True
        return not done

    def _set_axes(self) -> None:
        data = self.record.to_dict()
        names = swept_fields(data)
        x, y = default_axes(data)
        self.x_pick.options, self.y_pick.options = names, [NO_Y, *names]
        self.x_pick.value, self.y_pick.value = x, y or NO_Y

    def redraw(self) -> None:
        """Draw the record as it is now (called by the poller; safe to call any time)."""
        if self.record is None or not self.x_pick.value:
            return
        data = self.record.to_dict()
        y = None if self.y_pick.value in (NO_Y, self.x_pick.value) else self.y_pick.value
        self.caption.value = html.escape(sweep_caption(data))
        self.heatmap.show(heatmap_figure(data, self.x_pick.value, y))
        self.parallel.show(parallel_figure(data))
        self.best.show(best_table_figure(data))
        self.problems.value = "<br>".join(html.escape(line) for line in failed_lines(data))

    def refresh(self) -> None:
        self.redraw()
