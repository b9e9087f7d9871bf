"""The pruning and quantization charts of one snapshot, drawn the same way by both UIs.

A snapshot is read through its method's typed reader (``MethodSpec.read_snapshot``: a
``PruneSnapshot`` or a ``QuantSnapshot``), never by its array keys, and the figures get plain
arrays: a layer's mask grid, histogram and sparsity (Han et al. 2015; Zhu & Gupta 2017), or its
codebook before and after centroid fine-tuning (Han, Mao, Dally 2016, eq. 3). Live metrics are read
under the key the method's hook logs them with (``MethodSpec.metric_key``), so a hook used twice
in one run is read correctly. Colours are the method's own (``MethodSpec.colour``).

A slider dragged back and forth, or a scrubber, shows the same snapshot again: the sparsity slider's
arrays are kept per position (``kdviz.prune.explore.slider_arrays``) and a run's snapshots are kept
by the store, so the figures of a snapshot are kept too, keyed by its arrays object and the chart's
arguments (``_figures_of``: the last ``FIGURE_CACHE`` of them, each holding its arrays so the key
stays theirs). Callers never change a figure (``app.charts.ink_for_theme`` copies before it does).
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..engine import Snapshot
from ..figures.pruning import mask_heatmap, sparsity_bars, weight_histogram
from ..figures.pruning_live import accuracy_over_training, wrap_title
from ..figures.quantization import index_map_heatmap
from ..figures.quantization_explorer import codebook_progress, finetune_accuracy, levels_histogram, levels_table
from ..methods import MethodSpec
from ..methods.prune import PRUNE, PruneSnapshot
from ..methods.quantize import KMEANS, QuantSnapshot
from ..quant import SliderEvaluator
from ..quant.explore import MAX_SIDE, Quantized, layer_histogram
from ..quant.histograms import map_positions
from .runs import last_eval


def readings(spec: MethodSpec, snapshots: Iterable[Snapshot], config: Any, which: int = 0) -> list[tuple[Snapshot, Any]]:
    """(snapshot, typed reading) for each snapshot holding the ``which``-th use of ``spec``'s hook.

    A run whose config has no such hook is a ``ValueError`` naming it; snapshots without the hook's
    arrays (none are skipped in a run of the hook) are left out."""
    spec.hook_label(config, which)
    found = []
    for snap in snapshots:
        try:
            found.append((snap, spec.read_snapshot(snap.arrays, config, which)))
        except ValueError:
            continue
    return found


FIGURE_CACHE = 0 if os.environ.get("KDVIZ_SLIDER_CACHE", "").strip() == "0" else 64  # 0: no cache (bench baseline)
_figures: OrderedDict[tuple, tuple[Any, Any]] = OrderedDict()
_figures_lock = threading.Lock()


def _figures_of(owner: Any, chart: tuple, build: Callable[[], Any]) -> Any:
    """``build()``, kept for ``owner`` (a snapshot's arrays, a ``Quantized``: objects the explorers
    keep per position) and ``chart`` (the chart's name and arguments)."""
    if FIGURE_CACHE <= 0:
        return build()
    key = (id(owner), *chart)
    with _figures_lock:
        hit = _figures.get(key)
        if hit is not None and hit[0] is owner:
            _figures.move_to_end(key)
            return hit[1]
    built = build()
    with _figures_lock:
        _figures[key] = (owner, built)
        while len(_figures) > FIGURE_CACHE:
            _figures.popitem(last=False)
    return built


def sparsity_chart(snap: PruneSnapshot, live: bool = False, colour: str = PRUNE.colour) -> go.Figure:
    """Sparsity per layer of one pruning snapshot (``live``: with the schedule's targets)."""
    return _figures_of(snap.arrays, ("bars", live, colour), lambda: sparsity_bars(
        snap.layers, snap.sparsity, targets=snap.target if live else None, sizes=snap.weights, colour=colour))


def layer_charts(snap: PruneSnapshot, layer: str, step: int | None = None, live: bool = False) -> dict[str, go.Figure]:
    """The ``mask`` and ``histogram`` charts of one layer of a pruning snapshot (``live``: a training
    run's; otherwise a slider's one-shot pruning, whose histogram counts the weights it removed)."""
    grid, block = snap.mask(layer)  # a ValueError names the pruned layers if ``layer`` is not one
    counts, edges = snap.histogram(layer)
    i = snap.layers.index(layer)
    threshold = float(snap.threshold[i]) or None  # 0: nothing pruned yet, no band to draw
    pruned = None if live else int(round(float(snap.sparsity[i]) * int(snap.weights[i])))
    return dict(_figures_of(snap.arrays, ("layer", layer, step, live), lambda: {
        "mask": mask_heatmap(grid, layer, block=block, step=step),
        "histogram": wrap_title(weight_histogram(counts, edges, layer, thresholds=threshold, pruned=pruned))}))


def pruning_charts(snap: PruneSnapshot, layer: str, step: int | None = None, live: bool = False,
                   colour: str = PRUNE.colour) -> dict[str, go.Figure]:
    """``layer_charts`` and the sparsity ``bars`` of one pruning snapshot."""
    return {**layer_charts(snap, layer, step, live), "bars": sparsity_chart(snap, live, colour)}


def pruning_accuracy(records: Sequence[Mapping[str, Any]], config: Any, dense_accuracy: float | None = None,
                     epoch: float | None = None, label: str = "pruned + fine-tuned", which: int = 0) -> go.Figure:
    """Accuracy over a pruning run, its title naming the sparsity logged at the last evaluation."""
    sparsity = last_eval(records, PRUNE.metric_key(config, "sparsity", which))
    return accuracy_over_training(records, dense_accuracy, epoch, label, sparsity=sparsity, colour=PRUNE.colour)


def quantized_charts(evaluator: SliderEvaluator, q: Quantized, layer: str) -> dict[str, Any]:
    """The bits slider's charts of one layer (Han, Mao, Dally 2016, sec. 3; and the other quantizers):
    ``histogram`` (the float weights with the method's values), ``index_map`` (each weight's index),
    ``table`` and ``frame`` (the codebook as a table figure and a data frame; None for product
    quantization, which has no scalar values). Kept per ``Quantized`` (``MethodExplorer`` keeps one
    per choice), so moving the slider back redraws at once."""
    def build() -> dict[str, Any]:
        counts, edges = layer_histogram(evaluator, layer)
        choice = q.choice
        charts = {"histogram": levels_histogram(counts, edges, q.levels[layer], layer, choice.label(), choice.bits,
                                                q.n_weights[layer], shared=choice.kind.shared, per_row=q.per_row),
                  "index_map": index_map_heatmap(q.codes[layer], layer=layer, **code_positions(q, layer),
                                                 subvectors=not q.levels[layer].size),  # no scalar levels: PQ
                  "table": None, "frame": None}
        if q.levels[layer].size:
            charts["table"], charts["frame"] = levels_table(q.levels[layer], q.counts[layer], q.per_row)
        return charts

    return dict(_figures_of(q, ("quantized", layer), build))


def code_positions(q: Quantized, layer: str) -> dict[str, np.ndarray]:
    """The real row and column numbers of ``layer``'s subsampled code map (empty when unknown)."""
    shape = q.map_shapes.get(layer)
    if shape is None:
        return {}
    rows, cols = map_positions(shape, MAX_SIDE)
    return {"rows": rows, "cols": cols}


def codebook_charts(snap: QuantSnapshot, layer: str) -> tuple[go.Figure, go.Figure, pd.DataFrame]:
    """A k-means snapshot's layer: the histogram with the initial and current shared values, the
    codebook table with each value's shift, and the same as a data frame."""
    counts, edges = snap.histogram(layer)
    return codebook_progress(counts, edges, snap.get("centroids_initial", layer), snap.get("centroids", layer),
                             snap.get("cluster_counts", layer), layer)


def centroid_accuracy(records: Sequence[Mapping[str, Any]], float_accuracy: float | None = None,
                      epoch: float | None = None, label: str = "k-means, fine-tuned") -> go.Figure:
    """Accuracy while the shared values are fine-tuned, in the k-means method's colour."""
    return finetune_accuracy(records, float_accuracy, epoch, label=label, colour=KMEANS.colour)


__all__ = ["centroid_accuracy", "codebook_charts", "layer_charts", "pruning_accuracy", "pruning_charts", "quantized_charts",
           "readings", "sparsity_chart"]
