"""The pruning page's sparsity slider, evaluated at every stop for the browser-side player.

One-shot magnitude pruning of the trained baseline (Han et al. 2015), per layer or with one global
cut, evaluated on the whole test set at each stop of ``SPARSITY_GRID`` (plus a typed value): the
accuracy, the weights and FLOPs kept, the storage table, and four charts (sparsity per layer,
accuracy against sparsity with this stop marked, the chosen layer's weight histogram and mask). The
grid is coarse where little happens and fine around the knee (0.88 to 0.99), where LeNet-300-100
keeps its accuracy up to about 92 % sparsity (Han et al.: 8 % of the weights kept).
"""
from __future__ import annotations

from ..figures.pruning import accuracy_vs_sparsity
from ..present.compression_charts import layer_charts, sparsity_chart
from ..present.stops_player import Metric, Slot, Stop, stops_spec
from .pruning_view import Baseline, SliderResult, emptied_warning, evaluate_slider, one_shot_curve

SPARSITY_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.88, 0.9, 0.91, 0.92, 0.93, 0.94, 0.95,
                 0.96, 0.97, 0.98, 0.99)
SLIDER_LABEL = "Sparsity: fraction of weights removed"
SPARSITY_CAPTIONS = {
    "layer": "Every layer loses the same share. Try one global cut: a layer whose trained weights are small then "
             "loses more than its share, one whose weights are large (often the small last layer) less.",
    "global": "One magnitude cut over all weights: layers whose weights are small lose more than their share.",
}
ACCURACY_CAPTION = ("Accuracy holds almost flat, then falls off a knee. Retraining (the live section below) moves "
                    "the knee to the right.")
HISTOGRAM_CAPTION = ("Trained weights pile up near zero. The cut removes that pile and leaves a gap between the "
                     "dashed lines (Han et al. 2015, figure 4).")
MASK_CAPTION = ("Rows are output units, columns inputs (conv filters flattened). In LeNet-300-100's fc1 the columns "
                "that go dark are pixels that never vary (the border).")
TABLE_CAPTION = ("Storage of the pruned weights: dense float32, CSR (int32 indices) and Han's relative index (5-bit "
                 "gaps for FC, 8-bit for conv, filler zeros for long gaps; Deep Compression, section 2). CSR spends "
                 "32 bits of index per kept weight, so it only pays off beyond 50% sparsity; the relative index "
                 "spends 5 bits and wins much earlier. Biases stay dense in every format.")
SPECS_KEPT = 8  # players kept per baseline (scope, layer, typed value)


def sparsity_stops(typed: float | None = None) -> tuple[float, ...]:
    """The slider's stops: ``SPARSITY_GRID`` plus a typed sparsity (any value in [0, 1)), ascending."""
    return tuple(sorted(set(SPARSITY_GRID) | ({round(float(typed), 6)} if typed is not None else set())))


def format_sparsity(sparsity: float) -> str:
    return f"{sparsity:.4g}"


def stop_metrics(b: Baseline, r: SliderResult) -> list[Metric]:
    """Accuracy, weights kept, compression and FLOPs of one slider position."""
    total = r.table.iloc[-1]
    kept, weights = int(total["kept"]), int(total["weights"])
    return [Metric("Test accuracy", f"{r.accuracy:.2%}", f"{100 * (r.accuracy - b.dense_accuracy):+.2f} points vs dense",
                   "bad" if r.accuracy < b.dense_accuracy else "good"),
            Metric("Weights kept", f"{kept:,}", f"{total['kept %']:.1f}% of {weights:,}"),
            Metric("Compression (weights)", f"{weights / max(kept, 1):.1f}x"),
            Metric("FLOPs per image", f"{r.flops['nonzero_flops']:,}", f"of {r.flops['flops']:,} dense")]


def sparsity_stop(b: Baseline, sparsity: float, scope: str, layer: str) -> Stop:
    """The player's stop at ``sparsity``: the baseline pruned, evaluated and drawn (``layer``'s
    histogram and mask)."""
    r = evaluate_slider(b, sparsity, scope)
    snap = r.snapshot
    xs, ys = one_shot_curve(b, scope)
    accuracy = accuracy_vs_sparsity({"pruned, no retraining": (xs, ys)}, baseline=b.dense_accuracy,
                                    current=(snap.overall_sparsity(), r.accuracy))
    figures = layer_charts(snap, layer)
    table = r.table.copy()
    table["kept %"] = table["kept %"].round(1)
    return Stop(format_sparsity(sparsity), sparsity, [sparsity_chart(snap), accuracy, figures["histogram"], figures["mask"]],
                stop_metrics(b, r), emptied_warning(b, sparsity, scope) or "", table,
                caption={"sparsity-per-layer": global_caption(snap)} if scope == "global" and sparsity > 0 else {})


def global_caption(snap) -> str:
    """What one global cut did at this stop, read from the bars: the layers that lost most and least."""
    shares = dict(zip(snap.layers, (float(s) for s in snap.sparsity)))
    most, least = max(shares, key=shares.get), min(shares, key=shares.get)
    return (f"One magnitude cut over all weights: {most} loses {shares[most]:.0%} of its weights, {least} only "
            f"{shares[least]:.0%}. A layer whose trained weights are small loses more than its share.")


def sparsity_player_spec(b: Baseline, scope: str, layer: str, typed: float | None = None) -> dict:
    """The player's spec for ``scope`` and ``layer`` over ``sparsity_stops(typed)`` (kept with the
    baseline: a second visit, another session or a scope switched back costs nothing)."""
    key = (scope, layer, None if typed is None else round(float(typed), 6))
    spec = b.players.get(key)
    if spec is None:
        slots = [Slot("sparsity-per-layer", SPARSITY_CAPTIONS[scope]), Slot("accuracy-vs-sparsity", ACCURACY_CAPTION),
                 Slot("weight-histogram", HISTOGRAM_CAPTION), Slot("mask", MASK_CAPTION)]
        stops = [sparsity_stop(b, s, scope, layer) for s in sparsity_stops(typed)]
        spec = stops_spec(SLIDER_LABEL, slots, stops, TABLE_CAPTION)
        b.players[key] = spec
        while len(b.players) > SPECS_KEPT:
            b.players.pop(next(iter(b.players)))
    return spec


__all__ = ["SPARSITY_GRID", "SLIDER_LABEL", "sparsity_stops", "sparsity_player_spec", "sparsity_stop", "format_sparsity"]
