"""The quantization page's bits and rank sliders, evaluated at every stop for the browser-side player.

Bits: every layer of the trained baseline quantized the chosen way (k-means weight sharing, Han, Mao,
Dally 2016, sec. 3: a codebook of 2^bits shared values per layer and a bits-wide index per weight;
or uniform, binary, product quantization) at each bit width 1..8 (plus a typed 9..16), with the
test accuracy, the compression and the layer's histogram with the levels, index map and codebook.
A quantizer with a fixed width (binary: 1 bit) has a single stop; a width its options refuse
(symmetric uniform at 1 bit) is a stop that only says why.

Rank: one layer truncated to rank r by SVD, W ~ U_r S_r V_r^T, two factors with r (m + n) weights
instead of m n (Denton et al. 2014), at about twenty ranks spaced roughly evenly on a log scale
(every rank of a small layer), with the accuracy, the parameters, the energy kept
sum_{i<=r} s_i^2 / sum s_i^2 and the singular spectrum.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..figures.quantization import singular_spectrum
from ..present.compression_charts import quantized_charts
from ..present.stops_player import Metric, Slot, Stop, stops_spec
from ..quant.explore import QuantChoice
from .errors import plain_message
from .quantization_view import QBaseline

BITS_GRID = tuple(range(1, 9))  # the slider's bit widths; 9..16 only typed
BITS_LABEL = "Bits per weight"
INDEX_CAPTION = ("Each weight's index into the codebook (rows: output units, or a conv layer's filters; columns: input "
                 "units, or a filter's input channel × kernel position; large layers evenly sampled). The middle indices "
                 "are the most common, since the weights pile up near zero: a skew that Huffman coding turns into fewer "
                 "bits (see the Deep Compression page).")
CODEBOOK_CAPTION = "Every weight of the layer is stored as one of these values; the last column counts its weights."
COMPRESSION_HELP = ("32-bit floats over the quantized storage, biases excluded (as in Han et al. 2016, table 1); "
                    "k-means counts the bytes of a real fixed-width encoding.")
SPECTRUM_CAPTION = ("A trained layer's spectrum decays slowly, so a small rank throws away much of the squared norm, yet "
                    "accuracy can hold: lower the rank until it drops. The two factors save parameters only when "
                    "r < m n / (m + n).")
ENERGY_HELP = "sum of s_i² for i ≤ r over the sum of all s_i²"
ALL_RANKS_UP_TO = 24  # a layer of at most this rank gets every rank as a stop
RANK_STOPS = 20  # otherwise about this many, log-spaced
SPECS_KEPT = 8  # players kept per baseline (choice, layer, typed value)


def bits_stops(choice: QuantChoice, typed: int | None = None) -> tuple[int, ...]:
    """The bits slider's stops: 1..8 plus a typed width; the fixed width alone for a quantizer that has one."""
    fixed = choice.kind.fixed_bits
    if fixed is not None:
        return (fixed,)
    return tuple(sorted(set(BITS_GRID) | ({int(typed)} if typed is not None else set())))


def delta_tone(gain: float) -> str:
    return "bad" if gain < 0 else "good"


def accuracy_metric(accuracy: float, float_accuracy: float) -> Metric:
    return Metric("Test accuracy", f"{accuracy:.2%}", f"{100 * (accuracy - float_accuracy):+.2f} points vs float32",
                  delta_tone(accuracy - float_accuracy))


def bits_stop(b: QBaseline, choice: QuantChoice, layer: str) -> Stop:
    """One bit width: every layer quantized by ``choice`` and tested (cached per choice by the
    explorer), and ``layer``'s histogram with the levels, index map and codebook (None for product
    quantization, which has no scalar values). A width the quantizer refuses is a stop with its reason."""
    label = str(choice.bits)
    try:
        q, acc = b.explorer.quantize(choice), b.explorer.accuracy(choice)
    except ValueError as exc:
        return Stop(label, choice.bits, [None, None, None], note=plain_message(exc))
    charts = quantized_charts(b.explorer.evaluator, q, layer)
    metrics = [accuracy_metric(acc, b.float_accuracy),
               Metric("Compression (weights)", f"{q.ratio:.1f}x", help=COMPRESSION_HELP),
               Metric("Bits per weight, all included", f"{q.bits_per_weight:.2f}"),
               Metric(f"Weights in {len(q.n_weights)} layers", f"{sum(q.n_weights.values()):,}")]
    return Stop(label, choice.bits, [charts["histogram"], charts["index_map"], charts["table"]], metrics)


def _kept(b: QBaseline, key: tuple, build) -> dict:
    spec = b.players.get(key)
    if spec is None:
        spec = b.players[key] = build()
        while len(b.players) > SPECS_KEPT:
            b.players.pop(next(iter(b.players)))
    return spec


def bits_player_spec(b: QBaseline, choice: QuantChoice, layer: str, typed: int | None = None) -> dict:
    """The bits player's spec for ``choice`` (its bits ignored) and ``layer`` over ``bits_stops``
    (kept with the baseline: a method switched back, another session or a second visit costs nothing)."""
    fixed = choice.kind.fixed_bits is not None
    typed = None if fixed or typed is None or int(typed) in BITS_GRID else int(typed)
    key = ("bits", replace(choice, bits=0).key(), layer, typed)

    def build() -> dict:
        slots = [Slot("codebook-histogram", choice.kind.note), Slot("index-map", INDEX_CAPTION),
                 Slot("codebook-table", CODEBOOK_CAPTION)]
        stops = [bits_stop(b, replace(choice, bits=bits), layer) for bits in bits_stops(choice, typed)]
        return stops_spec(BITS_LABEL, slots, stops)

    return _kept(b, key, build)


def rank_stops(max_rank: int, typed: int | None = None) -> tuple[int, ...]:
    """The rank slider's stops: every rank up to ``ALL_RANKS_UP_TO``, else about ``RANK_STOPS`` ranks
    log-spaced from 1 to ``max_rank`` with the default ``max_rank // 4``; plus a typed rank."""
    if max_rank <= ALL_RANKS_UP_TO:
        ranks = set(range(1, max_rank + 1))
    else:
        count = RANK_STOPS
        while True:
            ranks = {int(round(r)) for r in np.geomspace(1, max_rank, count)} | {max(1, max_rank // 4), max_rank}
            if len(ranks) >= RANK_STOPS or count >= 3 * RANK_STOPS:
                break
            count += 1
    if typed is not None:
        ranks.add(int(typed))
    return tuple(sorted(ranks))


def rank_stop(b: QBaseline, layer: str, rank: int) -> Stop:
    """``layer`` truncated to ``rank`` (the other layers float) and tested; its spectrum with r marked."""
    p = b.explorer.low_rank(layer, rank)
    saved = p.params_after - p.params_before
    metrics = [accuracy_metric(p.accuracy, b.float_accuracy),
               Metric(f"{layer} parameters", f"{p.params_after:,}", f"{saved:+,} (r (m + n) vs m n)",
                      "good" if saved <= 0 else "bad"),
               Metric("Energy kept", f"{p.energy:.1%}", help=ENERGY_HELP)]
    return Stop(str(rank), rank, [singular_spectrum(p.singular_values, p.rank, layer)], metrics)


def rank_label(layer: str) -> str:
    return f"Rank r of {layer}"


def rank_player_spec(b: QBaseline, layer: str, max_rank: int, typed: int | None = None) -> dict:
    """The rank player's spec for ``layer`` over ``rank_stops(max_rank, typed)`` (kept with the baseline)."""
    key = ("rank", layer, None if typed is None else int(typed))

    def build() -> dict:
        stops = [rank_stop(b, layer, r) for r in rank_stops(max_rank, typed)]
        return stops_spec(rank_label(layer), [Slot("singular-spectrum", SPECTRUM_CAPTION)], stops)

    return _kept(b, key, build)


__all__ = ["BITS_GRID", "BITS_LABEL", "bits_stops", "bits_player_spec", "rank_stops", "rank_player_spec", "rank_label"]
