"""``DeepCompressionMonitor``: a Deep Compression pipeline seen live in a notebook.

The pipeline (``kdviz.quant.pipeline_job.DeepCompressionJob``: prune, k-means, Huffman; Han, Mao,
Dally 2016) runs in its own thread; this widget polls it from a ``_live.Poller`` thread and shows
a progress bar, the stage it is in, and the size waterfall (``kdviz.figures.quantization.
size_waterfall``, the same chart as the Streamlit page) growing as each stage ends. Stop asks the
pipeline to end between two chunks of training steps.
"""
from __future__ import annotations

import ipywidgets as W

from ..figures.quantization import size_waterfall
from ..quant.pipeline_job import DeepCompressionJob
from ._live import LiveFigure, Poller
from .monitor import format_duration, placeholder

CHART_WIDTH = 760


class DeepCompressionMonitor(W.VBox):
    """Progress and the size waterfall of a ``DeepCompressionJob``, redrawn every ``interval_ms``."""

    def __init__(self, job: DeepCompressionJob, interval_ms: float = 500, autostart: bool = True) -> None:
        if not isinstance(job, DeepCompressionJob):
            raise TypeError(f"job must be a DeepCompressionJob, got {type(job).__name__}")
        self.job = job
        self.progress = W.FloatProgress(value=0.0, min=0.0, max=1.0, description="progress",
                                        layout=W.Layout(width="420px"))
        self.status = W.HTML()
        self.stop_button = W.Button(description="Stop", icon="stop", button_style="danger",
                                    tooltip="stop between two chunks of training steps")
        self.stop_button.on_click(lambda _: self.job.stop())
        self.waterfall = LiveFigure(placeholder("Model size after each stage: waiting for the pruned model"),
                                    width=CHART_WIDTH)
        self.errors = W.Output()
        self._shown = 0
        header = W.HTML("<b>Deep Compression</b>: prune, then share 2<sup>bits</sup> values per layer with k-means, "
                        "then Huffman-code the indices (Han, Mao &amp; Dally 2016). Each bar appears as its stage ends.")
        super().__init__([header, W.HBox([self.progress, self.stop_button, self.status]), self.waterfall.widget, self.errors])
        self.poller = Poller(self._tick, interval_ms, name="kdviz-deep-compression", on_error=self._report)
        if autostart and not job.done:
            self.poller.start()
        else:
            self.refresh()

    def _tick(self) -> bool:
        s = self.job.status()  # read before the stages, so the last stage is in
        self.progress.value = s.fraction
        self.status.value = f"<b>{s.state}</b> · {s.message} · {format_duration(s.elapsed_s)}"
        self.stop_button.disabled = s.done
        stages = self.job.stages()
        if len(stages) >= 2 and len(stages) != self._shown:
            self.waterfall.show(size_waterfall([(st.name, st.nbytes) for st in stages]))
            self._shown = len(stages)
        return not s.done

    def refresh(self) -> None:
        """Read the job and redraw now (the poller does this on its own)."""
        self._shown = 0
        self._tick()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the pipeline ends and the final chart is drawn."""
        self.job.wait(timeout)
        self.poller.join(timeout)
        self.refresh()

    def close(self) -> None:
        if getattr(self, "poller", None) is not None:
            self.poller.stop()
        super().close()

    def _report(self, exc: BaseException) -> None:
        with self.errors:
            print(f"kdviz deep compression monitor: {type(exc).__name__}: {exc}")


__all__ = ["DeepCompressionMonitor"]
