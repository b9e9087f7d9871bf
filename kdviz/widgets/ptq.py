"""``PTQExplorer``: post-training quantization of a trained model in a notebook.

Range setting (min-max, percentile, MSE-optimal), the per-layer noise view with the layer that breaks
accuracy named (AIMET-style), and mixed precision chosen from the sweep against uniform bits at the
same size (HAWQ-V3's integer program over measured drops). The numbers and charts are
``kdviz.present.ptq``'s, the same as the Streamlit page's; every control move recomputes the study
(results are cached, so moving back is free) and the four ``LiveFigure`` charts update in place.
"""
from __future__ import annotations

from typing import Any

import ipywidgets as W

from ..data import DatasetBundle
from ..present.ptq import PTQSettings, PTQStudy, RANGE_LABELS, RANGE_METHODS, ptq_evaluator, ptq_study
from ._live import LiveFigure, Throttle
from .monitor import placeholder
from .temperature import resolve_dataset, resolve_teacher

CHART_WIDTH = 560
ACT_BITS = (("float", None), ("8 bits", 8), ("6 bits", 6), ("4 bits", 4))


class PTQExplorer(W.VBox):
    """Post-training quantization of ``model`` (an ``nn.Module``, a finished run folder, a ``RunReader``
    or a ``Job``) on ``dataset``'s test set, activations calibrated on its first training images."""

    def __init__(self, model: Any, dataset: DatasetBundle | str, settings: PTQSettings = PTQSettings(),
                 throttle_ms: float = 100) -> None:
        settings.spec()
        data = resolve_dataset(dataset)
        self.evaluator = ptq_evaluator(resolve_teacher(model), data)
        self.method = W.Dropdown(options=[(RANGE_LABELS[m], m) for m in RANGE_METHODS], value=settings.method,
                                 description="range")
        self.bits = W.IntSlider(value=settings.bits, min=2, max=8, description="layer bits", continuous_update=True)
        self.uniform_bits = W.IntSlider(value=settings.uniform_bits, min=2, max=6, description="uniform bits",
                                        continuous_update=True)
        self.per_channel = W.Checkbox(value=settings.per_channel, description="scale per output channel")
        self.act_bits = W.Dropdown(options=list(ACT_BITS), value=settings.act_bits, description="activations")
        self.info, self.errors = W.HTML(), W.Output()
        self.noise_chart = LiveFigure(placeholder("Per-layer noise"), width=CHART_WIDTH)
        self.bits_chart = LiveFigure(placeholder("Chosen bits"), width=CHART_WIDTH)
        self.size_chart = LiveFigure(placeholder("Accuracy against size"), width=CHART_WIDTH)
        self.ranges_chart = LiveFigure(placeholder("Range methods"), width=CHART_WIDTH)
        self._throttle = Throttle(self._draw, throttle_ms, on_error=self._report)
        for control in (self.method, self.bits, self.uniform_bits, self.per_channel, self.act_bits):
            control.observe(lambda _: self._throttle(), names="value")
        row = lambda *items: W.Box(list(items), layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))  # noqa: E731
        header = W.HTML("<b>Post-training quantization</b>: ranges by min-max, percentile or least squared error "
                        "(Banner et al. 2019); each layer quantized alone to find the one that breaks accuracy "
                        "(AIMET); bits per layer under a size budget (HAWQ-V3) against uniform bits.")
        super().__init__([header, row(self.method, self.act_bits, self.per_channel), row(self.bits, self.uniform_bits),
                          self.info, row(self.noise_chart.widget, self.bits_chart.widget),
                          row(self.size_chart.widget, self.ranges_chart.widget), self.errors])
        self.study: PTQStudy | None = None
        self._draw()

    @property
    def settings(self) -> PTQSettings:
        """The controls' current ``PTQSettings``."""
        return PTQSettings(self.method.value, int(self.bits.value), int(self.uniform_bits.value),
                           bool(self.per_channel.value), self.act_bits.value)

    def flush(self) -> None:
        """Draw control changes still waiting for the rate limit (tests; rarely needed otherwise)."""
        self._throttle.flush()

    def _draw(self) -> None:
        study = ptq_study(self.evaluator, self.settings)
        charts = study.charts()
        self.noise_chart.show(charts["layer-noise"])
        self.bits_chart.show(charts["chosen-bits"])
        self.size_chart.show(charts["accuracy-vs-size"])
        self.ranges_chart.show(charts["ranges"])
        self.study = study
        bold = lambda text: text.replace("**", "<b>", 1).replace("**", "</b>", 1)  # noqa: E731
        self.info.value = (f"Float32 test accuracy <b>{study.float_accuracy:.2%}</b>. {bold(study.worst_sentence())}"
                           f"<br>{study.mixed_sentence()}<br>{study.ranges_sentence()}")

    def _report(self, exc: BaseException) -> None:
        with self.errors:
            print(f"kdviz: could not redraw: {type(exc).__name__}: {exc}")


__all__ = ["PTQExplorer"]
