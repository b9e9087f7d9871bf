"""Shared plumbing for every kdviz widget: live figures, rate limits and a polling thread.

Every widget follows one pattern, so a chart looks the same in Streamlit and in Jupyter:

1. **Build the figure with the figure function** (``kdviz.figures.*``, data in, ``go.Figure`` out)
   and wrap it once in a :class:`LiveFigure` (which holds a ``plotly.graph_objects.FigureWidget``).
2. **On new data, build a fresh figure with the same function** and call ``LiveFigure.show(fresh)``.
   Only what changed since the last fresh figure is sent, in one ``FigureWidget.batch_update()``
   (one message to the browser), so a user's zoom or legend clicks survive updates that do not
   touch those properties.
3. **Poll in the background**: a :class:`Poller` thread reads the engine's ``LiveStore`` (or any
   source) every ``interval_ms`` and calls ``show``. The kernel's main thread never waits on it,
   so cells keep running and buttons keep answering while a job trains.
4. **Rate-limit UI events**: a :class:`Throttle` runs a redraw at once when allowed and otherwise
   once more after the interval (trailing edge), so a dragged slider or a fast job cannot flood
   the browser, and the last value always shows.

Why a thread (not an asyncio task): with ipykernel 7 a cell that blocks (``job.wait()``, or
nbclient running the rest of a notebook) also blocks the kernel's event loop, so a task scheduled
there would freeze the charts until the cell ends. A daemon thread keeps drawing; widget updates
are comm messages on IOPub, which ipykernel sends from any thread (the pattern of the ipywidgets
guide "Asynchronous Widgets"). Button clicks are handled by the main thread whenever no
synchronous cell is running.

Later explorers (FSP, pruning, quantization) reuse these pieces: ``LiveFigure`` per chart,
``Throttle`` on controls, ``Poller`` when a job is live.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go

from ._plotly_widget import FigureWidget

log = logging.getLogger(__name__)

_TRACE_KEYS_KEPT = {"uid", "type"}
# A size that vanishes from the next figure is kept, not reset: plotly.js fails on a relayout
# that sets width or height to null on a chart first drawn at a fixed size.
_LAYOUT_SIZE_KEYS = {"width", "height"}


def same_value(a: Any, b: Any) -> bool:
    """Deep equality for plotly JSON: dicts, lists/tuples (alike) and numpy arrays by value."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        try:
            return np.array_equal(np.asarray(a), np.asarray(b))
        except (TypeError, ValueError):
            return False
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def changed_keys(previous: Mapping[str, Any], fresh: Mapping[str, Any], kept: set[str] = frozenset()) -> dict[str, Any]:
    """Top-level keys whose value differs between two plotly dicts; keys that vanished map to None."""
    updates = {k: v for k, v in fresh.items() if k not in previous or not same_value(previous[k], v)}
    updates.update({k: None for k in previous if k not in fresh and k not in kept})
    return updates


def _figure_json(fig: go.Figure) -> dict[str, Any]:
    """Traces and layout as plain dicts holding the raw values (numpy arrays stay arrays).

    ``to_plotly_json()`` would encode arrays as base64 dicts, which the widget would then store
    as its Python-side values; ``_props`` is the figure's own validated property dict.
    """
    return {"data": [dict(t._props) for t in fig.data], "layout": dict(fig.layout._props)}


def sync_figure(widget: go.FigureWidget, fresh: go.Figure, previous: Mapping[str, Any] | None = None) -> int:
    """Copy ``fresh``'s traces and layout into ``widget`` in place; return how many keys were sent.

    ``previous`` is the plotly JSON of the figure applied last (``None``: diff against the widget's
    own state). Traces are updated in place where the trace count and types match; extra traces
    are removed and missing ones added. Property updates go in one ``batch_update`` (one message).
    """
    if not isinstance(widget, go.FigureWidget):
        raise TypeError(f"widget must be a plotly FigureWidget, got {type(widget).__name__}")
    if not isinstance(fresh, go.Figure):
        raise TypeError(f"fresh must be a plotly Figure, got {type(fresh).__name__}")
    new = _figure_json(fresh)
    old = dict(previous) if previous is not None else _figure_json(widget)
    old_data, new_data = list(old["data"]), new["data"]
    keep = 0
    while keep < min(len(widget.data), len(new_data)) and widget.data[keep].type == new_data[keep].get("type", "scatter"):
        keep += 1
    sent = 0
    if keep < len(widget.data) or keep < len(new_data):  # structure changed: rebuild the tail
        widget.data = widget.data[:keep]
        if new_data[keep:]:
            widget.add_traces([dict(t) for t in new_data[keep:]])
        sent += len(new_data) - keep
        old_data = old_data[:keep]
    with widget.batch_update():
        for trace, before, after in zip(widget.data[:keep], old_data, new_data[:keep]):
            updates = changed_keys(before, after, kept=_TRACE_KEYS_KEPT)
            updates.pop("type", None)
            if updates:
                trace.update(updates, overwrite=True)
                sent += len(updates)
        layout_updates = changed_keys(old["layout"], new["layout"], kept=_LAYOUT_SIZE_KEYS)
        if layout_updates:
            widget.layout.update(layout_updates, overwrite=True)
            sent += len(layout_updates)
    return sent


class LiveFigure:
    """One chart in a widget: a ``FigureWidget`` kept in step with fresh figures, thread-safely.

    ``width`` (pixels) and ``layout`` (layout properties, e.g. a legend position for a narrow
    chart) are this widget's presentation: they are applied to the first figure and to every fresh
    one (in place) before the diff, so a figure function never has to know where it is drawn.

    >>> import plotly.graph_objects as go
    >>> live = LiveFigure(go.Figure(go.Scatter(y=[1, 2])))
    >>> live.show(go.Figure(go.Scatter(y=[3, 4, 5])))
    1
    >>> list(live.widget.data[0].y)
    [3, 4, 5]
    """

    def __init__(self, figure: go.Figure, width: int | None = None, layout: Mapping[str, Any] | None = None) -> None:
        if not isinstance(figure, go.Figure):
            raise TypeError(f"figure must be a plotly Figure, got {type(figure).__name__}")
        # plotly's anywidget front end draws before the view is attached to the page, so an
        # unsized chart comes out 700 px wide whatever its box: a fixed width is what you get. It
        # goes into the initial state, since a relayout sent while the view draws its first frame
        # can leave the chart empty.
        self._overrides = {**(dict(layout) if layout else {}), **({"width": int(width)} if width is not None else {})}
        figure = self._dressed(go.Figure(figure))
        self.widget = FigureWidget(figure)
        self._applied = _figure_json(figure)
        self._lock = threading.RLock()
        self.updates = 0  # how many shows changed something (tests and debugging)

    def _dressed(self, figure: go.Figure) -> go.Figure:
        if self._overrides:
            figure.update_layout(self._overrides)
        return figure

    def show(self, fresh: go.Figure) -> int:
        """Make the widget show ``fresh``; returns the number of keys sent (0: nothing changed)."""
        if not isinstance(fresh, go.Figure):
            raise TypeError(f"fresh must be a plotly Figure, got {type(fresh).__name__}")
        with self._lock:
            fresh = self._dressed(fresh)
            sent = sync_figure(self.widget, fresh, previous=self._applied)
            self._applied = _figure_json(fresh)
            self.updates += bool(sent)
            return sent


# A legend inside the top-right corner of the plot, for narrow charts of falling curves (losses),
# where the theme's legend row above the plot would wrap over the title.
LEGEND_INSIDE_TOP_RIGHT = {"legend": {"orientation": "v", "yanchor": "top", "y": 0.98, "xanchor": "right", "x": 0.98,
                                      "bgcolor": "rgba(255,255,255,0.85)"}}


class RateLimiter:
    """Allows one event per ``min_interval_ms``; thread-safe. ``clock`` is injectable for tests."""

    def __init__(self, min_interval_ms: float = 200, clock: Callable[[], float] = time.monotonic) -> None:
        if not isinstance(min_interval_ms, (int, float)) or isinstance(min_interval_ms, bool) or min_interval_ms < 0:
            raise ValueError(f"min_interval_ms must be a number >= 0, got {min_interval_ms!r}")
        self.min_interval = float(min_interval_ms) / 1000.0
        self._clock = clock
        self._last = -float("inf")
        self._lock = threading.Lock()

    def wait_time(self) -> float:
        """Seconds until the next event is allowed (0 when allowed now)."""
        with self._lock:
            return max(0.0, self._last + self.min_interval - self._clock())

    def try_acquire(self) -> bool:
        """True (and the interval starts again) when an event may go now."""
        with self._lock:
            now = self._clock()
            if now - self._last >= self.min_interval:
                self._last = now
                return True
            return False


class Throttle:
    """Calls ``fn()`` at most every ``min_interval_ms``: at once if allowed, else once at the end.

    Calls in between are merged into that one trailing call (run on a timer thread), so the final
    state is always drawn. ``fn`` takes no arguments: it reads the current control values itself.
    """

    def __init__(self, fn: Callable[[], Any], min_interval_ms: float = 100, on_error: Callable[[BaseException], None] | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        self._fn = fn
        self._limiter = RateLimiter(min_interval_ms)
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._on_error = on_error

    def __call__(self) -> None:
        if self._limiter.try_acquire():
            self._run()
            return
        with self._lock:
            if self._timer is None:
                self._timer = threading.Timer(self._limiter.wait_time(), self._trailing)
                self._timer.daemon = True
                self._timer.start()

    def _trailing(self) -> None:
        with self._lock:
            self._timer = None
        self._limiter.try_acquire()
        self._run()

    def _run(self) -> None:
        try:
            self._fn()
        except Exception as exc:  # a failed redraw must not kill the control
            if self._on_error is None:
                raise
            self._on_error(exc)

    def flush(self) -> None:
        """Run a pending trailing call now (tests, and before a final redraw)."""
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            self._run()


class Poller:
    """Calls ``tick()`` every ``interval_ms`` on a daemon thread until it returns False or ``stop()``.

    ``tick`` reads a source (a job's ``LiveStore``) and redraws; an exception is passed to
    ``on_error`` (default: logged) and polling goes on, so one bad frame does not end live updates.
    After a tick that took ``d`` seconds the thread idles at least ``idle_ratio * d``: drawing
    holds Python's GIL, and this keeps it from taking more than ``1 / (1 + idle_ratio)`` of the
    time from training threads in the same process when the machine is slow.
    """

    def __init__(
        self, tick: Callable[[], bool], interval_ms: float = 500, name: str = "kdviz-poller",
        on_error: Callable[[BaseException], None] | None = None, idle_ratio: float = 2.0,
    ) -> None:
        if not callable(tick):
            raise TypeError(f"tick must be callable, got {type(tick).__name__}")
        if not isinstance(interval_ms, (int, float)) or isinstance(interval_ms, bool) or interval_ms <= 0:
            raise ValueError(f"interval_ms must be a positive number, got {interval_ms!r}")
        if not isinstance(idle_ratio, (int, float)) or idle_ratio < 0:
            raise ValueError(f"idle_ratio must be a number >= 0, got {idle_ratio!r}")
        self.interval = float(interval_ms) / 1000.0
        self.idle_ratio = float(idle_ratio)
        self.ticks = 0
        self._tick = tick
        self._name = name
        self._on_error = on_error or (lambda exc: log.exception("kdviz live update failed", exc_info=exc))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "Poller":
        if self.running:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.ticks += 1
                if self._tick() is False:
                    return
            except Exception as exc:
                self._on_error(exc)
            self._stop.wait(max(self.interval, self.idle_ratio * (time.monotonic() - started)))

    def stop(self, timeout: float | None = 2.0) -> None:
        """Ask the thread to end and wait up to ``timeout`` seconds (never from the thread itself)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


__all__ = ["same_value", "changed_keys", "sync_figure", "LiveFigure", "LEGEND_INSIDE_TOP_RIGHT", "RateLimiter", "Throttle", "Poller"]


class LiveMonitor:
    """What every live widget shares (mix in before ``ipywidgets.VBox``): ``wait()`` blocks until its
    runs have ended and draws the final state; ``close()`` stops its ``Poller`` (``self.poller``)."""

    poller: Poller | None = None

    def _waitables(self) -> list[Any]:
        """The jobs (or experiments) whose end ``wait`` waits for; a reopened run has none."""
        return []

    def _after_runs_ended(self) -> None:
        """Called by ``wait`` once every waitable has ended (e.g. to adopt a job a stage started)."""

    def refresh(self) -> None:
        raise NotImplementedError

    def wait(self, timeout: float | None = None) -> None:
        """Block until every live run has ended (``timeout`` applies to each), then draw the final state."""
        for waitable in self._waitables():
            waitable.wait(timeout)
        self._after_runs_ended()
        if self.poller is not None:
            self.poller.join(timeout)
        if self.poller is None or not self.poller.running:
            self.refresh()

    def close(self) -> None:
        if getattr(self, "poller", None) is not None:  # close() also runs from __del__ after a failed __init__
            self.poller.stop()
        super().close()  # type: ignore[misc]  (the ipywidgets base class)
