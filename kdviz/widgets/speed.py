"""``SpeedMeter``: the measured CPU speed and memory of a finished run's deployable forms, in a notebook.

The same report as the app's "Speed on this CPU" section (``kdviz.present.speed``): the model as
trained (dense), with units removed (shrunk), as torch sparse CSR (sparse), with int8 weights
(torch.ao dynamic and static quantization) and, for a k-means run, as its codebook (b-bit indices,
decoded to dense float32 when loaded), each timed at batch 1 and 256, beside the bytes stored and the
peak working memory, with a caption written from the numbers. Pressing **Measure** starts the
measurement in a background thread; a ``_live.Poller`` draws the result when it is in, so the cell
returns at once.
"""
from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

from ..present.speed import SpeedTask, measure_in_background, measured
from ._live import LiveFigure
from ._monitor import PolledMonitor, waiting


class SpeedMeter(PolledMonitor, W.VBox):
    """Measure ``run`` (a finished ``Job``, ``RunReader`` or run folder) on this CPU.

    ``options`` go to ``kdviz.present.speed.speed_report`` (``runs``, ``threads``, ``shrink``,
    ``default_sparsity``...). ``autostart=True`` measures at once; otherwise press the button."""

    def __init__(self, run: Any, interval_ms: float = 300, autostart: bool = False, **options: Any) -> None:
        self.run, self.options = run, dict(options)
        self.task: SpeedTask | None = measured(run, **self.options)
        self.button = W.Button(description="Measure speed on this CPU", icon="tachometer", button_style="primary",
                               layout=W.Layout(width="260px"))
        self.button.on_click(lambda _: self.measure())
        self.status = W.HTML()
        self.chart = LiveFigure(waiting("Latency and size: press Measure"), width=980)
        self.caption = W.HTML()
        self.table = W.HTML()
        self.errors = W.Output()
        self._drawn = False
        super().__init__([W.HTML("<b>Speed on this CPU</b>: bytes are not time. Each form is timed here, now."),
                          W.HBox([self.button, self.status]), self.chart.widget, self.caption, self.table, self.errors])
        self.interval_ms = interval_ms
        if autostart:
            self.measure()
        else:
            self._start_polling(interval_ms, self.task is not None, "kdviz-speed-meter")

    @property
    def done(self) -> bool:
        return self.task is None or self.task.done

    def measure(self) -> None:
        """Start (or join) the measurement in the background and poll until it is in."""
        self.task = measure_in_background(self.run, **self.options)
        self._drawn = False
        self.status.value = "measuring the dense, shrunk, sparse and int8 forms…"
        if self.poller is not None and self.poller.running:
            return  # the running poller picks the task up
        self._start_polling(self.interval_ms, True, "kdviz-speed-meter")

    def refresh(self) -> None:
        self._tick()

    def _tick(self) -> bool:
        if self.task is None or not self.task.done:
            return True
        if not self._drawn:
            self._draw()
        return False

    def _draw(self) -> None:
        self._drawn = True
        if self.task.error:
            self.status.value = f"<span style='color:#D55E00'>{html.escape(self.task.error)}</span>"
            return
        report = self.task.result
        self.status.value = f"measured: {html.escape(report.source)}"
        self.chart.show(report.figure())
        self.caption.value = f"<p style='max-width:980px'>{html.escape(report.caption())}</p>"
        rows = report.rows()
        head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r.values()) + "</tr>" for r in rows)
        self.table.value = f"<table><tr>{head}</tr>{body}</table>"

    def _report(self, exc: BaseException) -> None:
        self.errors.append_stdout(f"kdviz speed meter: {type(exc).__name__}: {exc}\n")


__all__ = ["SpeedMeter"]
