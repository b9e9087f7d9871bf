"""The soft-targets page's computations, kept apart from its widgets so they can be timed.

A temperature slider move redraws two figures from one row of teacher logits (Hinton, Vinyals,
Dean 2015, eq. 1: q_i = exp(z_i / T) / sum_j exp(z_j / T)): ``kdviz.figures.soft_targets``'
probability bars and entropy curve. Building them from scratch costs far more than the 50 ms a
slider move may take (plotly validates every property and deep-copies the "plotly_white" template
per figure: about 60 to 200 ms per figure here). ``TemperatureView`` therefore builds them once per
sample and, for a new T, replaces only the numbers and titles that depend on T in the figures'
plain dicts. ``tests/app/test_app.py`` checks at a spread of temperatures that the result is
identical to what the figure functions draw, so the two cannot drift apart silently. The
temperature range and the slider's grid are ``kdviz.present.temperature``'s (the Jupyter explorer
uses the same).
"""
from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from ..distill.soft_targets import entropy, soften
from ..figures.soft_targets import entropy_curve, probability_bars
from ..present.temperature import T_MAX, T_MIN, TEMPERATURES, format_temperature, nearest_temperature  # noqa: F401


def temperature_figures(logits: Sequence[float], T: float, class_names: Sequence[str]) -> tuple[go.Figure, go.Figure]:
    """(probability bars at T with T = 1 outlines, entropy-vs-T curve over [T_MIN, T_MAX] with a marker at T)."""
    return probability_bars(logits, T, class_names, reference_T=1.0), entropy_curve(logits, T, T_MIN, T_MAX)


class TemperatureView:
    """Probability bars and entropy curve of one sample's logits, redrawn fast at any T."""

    _BUILD_T = 2.0  # any T != 1: the bars figure then carries its T = 1 outline trace

    def __init__(self, logits: Sequence[float], class_names: Sequence[str]) -> None:
        self.logits = np.asarray(logits, dtype=np.float64)
        self.class_names = tuple(class_names)
        bars, curve = temperature_figures(self.logits, self._BUILD_T, self.class_names)
        self._bars, self._curve = bars.to_dict(), curve.to_dict()

    def figures(self, T: float) -> tuple[go.Figure, go.Figure]:
        """The same two figures ``temperature_figures(logits, T, class_names)`` draws."""
        probs = np.asarray(soften(self.logits, T))
        runner_up = int(np.argsort(probs)[-2])
        bars = _shallow(self._bars)
        bars["data"][0].update(y=probs, name=f"T = {T:g}")
        if T == 1.0:
            del bars["data"][1]  # the figure draws the T = 1 outline only when T differs from 1
        title = f"Soft targets at T = {T:g}: entropy {entropy(probs.tolist()):.2f} nats"
        subtitle = f"runner-up class {self.class_names[runner_up]} gets {probs[runner_up]:.1%}"
        bars["layout"]["title"]["text"] = f"<b>{title}</b><br><span style='font-size:12px;color:#555'>{subtitle}</span>"
        curve = _shallow(self._curve)
        curve["data"][-1].update(x=[T], y=[float(entropy(soften(self.logits, T)))], name=f"T = {T:g}")
        return go.Figure(bars, _validate=False), go.Figure(curve, _validate=False)


def _shallow(fig: dict) -> dict:
    """A copy whose traces and title can be replaced without touching the original."""
    layout = dict(fig["layout"])
    layout["title"] = copy.copy(layout.get("title", {}))
    return {**fig, "data": [dict(trace) for trace in fig["data"]], "layout": layout}
