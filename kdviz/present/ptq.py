"""Post-training quantization, presented: range methods, the layer that breaks accuracy, mixed precision.

One ``PTQSettings`` (what the controls choose) and a ``PTQEvaluator`` (``kdviz.quant.layer_noise``)
give a ``PTQStudy``: the range-method comparison at 8/4/3 bits, each layer's noise at the chosen
bits with the worst layer named, the sensitivity sweep, mixed precision against uniform bits at the
same size, and the accuracy-against-size curve; its charts and sentences are what the Streamlit page,
the ``PTQExplorer`` widget, lab 11 and ``bench/mixed_precision.py`` show. ``BackgroundStudies`` runs a
study in a worker thread so a page can draw at once and poll (computing on MNIST takes seconds).
"""
from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import plotly.graph_objects as go
import torch

from ..data import DatasetBundle
from ..figures.ptq import accuracy_vs_size_chart, chosen_bits_chart, layer_noise_chart, range_methods_chart
from ..quant.kmeans import check_bits
from ..quant.layer_noise import DEFAULT_BITS, LayerNoise, PTQEvaluator, compare_ranges, sensitivity_sweep, worst_layer
from ..quant.mixed_precision import EqualSize, MixedPrecision, layer_size_bits, mixed_vs_uniform, size_curve, uniform_config
from ..quant.ranges import RANGE_LABELS, RANGE_METHODS, RangeSpec

CALIBRATION_IMAGES = 256  # training images that set the activation ranges (the first ones: deterministic)
RANGE_BITS = (8, 4, 3)
AVERAGE_BITS = (2, 2.5, 3, 3.5, 4, 5, 6, 8)  # the budgets of the accuracy-against-size curve, in bits per weight


@dataclass(frozen=True)
class PTQSettings:
    """What the controls choose: the range ``method`` (weights and activations), the ``bits`` of the
    per-layer view, the uniform width mixed precision is compared with at equal size, per-channel
    weight scales, the activation bits (None: float) and the percentile."""

    method: str = "mse"
    bits: int = 3
    uniform_bits: int = 3
    per_channel: bool = False
    act_bits: int | None = 8
    percentile: float = 99.99

    def spec(self) -> RangeSpec:
        """The ``RangeSpec`` these settings describe (checked: a ``ValueError`` names a bad value)."""
        check_bits(self.bits)
        if self.bits < 2 or not 2 <= check_bits(self.uniform_bits) <= 8:
            raise ValueError("bits must be 2 to 16 and the uniform width 2 to 8 (symmetric weights need 2 bits)")
        return RangeSpec(self.method, None, float(self.percentile), 100, True, bool(self.per_channel),
                         self.act_bits).validate()


def ptq_evaluator(model: torch.nn.Module, data: DatasetBundle, calibration_images: int = CALIBRATION_IMAGES) -> PTQEvaluator:
    """An evaluator over ``data``'s test set, activations calibrated on its first training images."""
    return PTQEvaluator(model, data.test_images, data.test_labels, data.train_images[:calibration_images])


@dataclass
class PTQStudy:
    """Everything the PTQ views show for one model and one ``PTQSettings``."""

    settings: PTQSettings
    layers: list[str]
    n_weights: dict[str, int]
    float_accuracy: float
    ranges: list[dict]
    noise: list[LayerNoise]
    worst: LayerNoise
    sweep: dict[str, dict[int, LayerNoise]]
    equal: EqualSize
    curve: list[MixedPrecision]
    uniform: list[MixedPrecision]

    def charts(self) -> dict[str, go.Figure]:
        """The four charts by key: ranges, layer-noise, chosen-bits, accuracy-vs-size."""
        s = self.settings
        return {
            "ranges": range_methods_chart(self.ranges, self.float_accuracy),
            "layer-noise": layer_noise_chart(self.layers, [n.sqnr_db for n in self.noise], [n.drop for n in self.noise],
                                             self.worst.layer, s.bits),
            "chosen-bits": chosen_bits_chart(self.layers, self.equal.mixed.bits, s.uniform_bits, self.n_weights,
                                             (self.equal.mixed.accuracy, self.equal.uniform.accuracy)),
            "accuracy-vs-size": accuracy_vs_size_chart([(m.size_bits, m.accuracy) for m in self.curve],
                                                       [(u.size_bits, u.accuracy, next(iter(u.bits.values())))
                                                        for u in self.uniform], self.float_accuracy),
        }

    def worst_sentence(self) -> str:
        w, s = self.worst, self.settings
        if w.drop <= 0:
            return (f"At {s.bits} bits no single layer costs accuracy: the quietest is "
                    f"{max(self.noise, key=lambda n: n.sqnr_db).layer}, the noisiest {min(self.noise, key=lambda n: n.sqnr_db).layer}.")
        return (f"**{w.layer}** breaks accuracy first: quantized alone at {s.bits} bits it costs "
                f"{100 * w.drop:.2f} points (output SQNR {w.sqnr_db:.1f} dB); give it more bits.")

    def mixed_sentence(self) -> str:
        e, s = self.equal, self.settings
        bits = ", ".join(f"{n} {b}" for n, b in e.mixed.bits.items())
        verdict = ("beats" if e.gain > 0 else "ties with" if e.gain == 0 else "loses to")
        return (f"At the size of uniform {s.uniform_bits} bits ({e.uniform.size_bytes / 1024:.1f} KB) mixed precision "
                f"({bits}; {e.mixed.size_bytes / 1024:.1f} KB) reaches {100 * e.mixed.accuracy:.2f} % and {verdict} "
                f"uniform's {100 * e.uniform.accuracy:.2f} % ({100 * e.gain:+.2f} points). The sweep predicted a "
                f"drop of {100 * e.mixed.predicted_drop:.2f} points; the number shown is measured.")

    def ranges_sentence(self) -> str:
        low = min(RANGE_BITS)
        at_low = {r["range"]: r["accuracy"] for r in self.ranges if r["bits"] == low}
        best = max(at_low, key=at_low.get)
        return (f"At {low} bits {RANGE_LABELS[best]} ranges do best ({100 * at_low[best]:.2f} %) against min-max's "
                f"{100 * at_low['minmax']:.2f} %; at 8 bits the three agree within "
                f"{100 * _spread(self.ranges, 8):.2f} points.")


def _spread(rows: list[dict], bits: int) -> float:
    values = [r["accuracy"] for r in rows if r["bits"] == bits]
    return max(values) - min(values) if values else 0.0


def curve_budgets(ev: PTQEvaluator, spec: RangeSpec, average_bits=AVERAGE_BITS) -> list[float]:
    """Weight-storage budgets (bits) at each average bit width, scales counted as at integer widths."""
    budgets = []
    for avg in average_bits:
        low, high = int(avg), min(int(avg) + 1, 16)
        frac = avg - low
        budgets.append(sum((1 - frac) * layer_size_bits(ev, n, low, spec) + frac * layer_size_bits(ev, n, high, spec)
                           for n in ev.names))
    return budgets


def ptq_study(ev: PTQEvaluator, settings: PTQSettings = PTQSettings()) -> PTQStudy:
    """Compute every PTQ view of ``ev``'s model for ``settings`` (cached results are reused)."""
    spec = settings.spec()
    options = sorted({*DEFAULT_BITS, settings.bits, settings.uniform_bits})
    ranges = compare_ranges(ev, RANGE_BITS, spec)
    sweep = sensitivity_sweep(ev, options, spec)
    noise = [sweep[n][settings.bits] for n in ev.names]
    equal = mixed_vs_uniform(ev, sweep, (settings.uniform_bits,), spec)[0]
    curve = size_curve(ev, sweep, curve_budgets(ev, spec), spec)
    uniform = [uniform_config(ev, b, spec) for b in (2, 3, 4, 5, 6, 8)]
    return PTQStudy(settings, ev.names, {n: ev.n_weights(n) for n in ev.names}, ev.float_accuracy, ranges, noise,
                    worst_layer(noise), sweep, equal, curve, uniform)


@dataclass
class BackgroundStudies:
    """Studies computed in one worker thread, one ``Future`` per key (kept: a repeated key is free)."""

    executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="kdviz-ptq"))
    futures: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def submit(self, key, compute: Callable[[], PTQStudy]) -> Future:
        with self.lock:
            if key not in self.futures:
                self.futures[key] = self.executor.submit(compute)
            return self.futures[key]


__all__ = ["AVERAGE_BITS", "BackgroundStudies", "CALIBRATION_IMAGES", "PTQSettings", "PTQStudy", "RANGE_BITS",
           "RANGE_LABELS", "RANGE_METHODS", "curve_budgets", "ptq_evaluator", "ptq_study"]
