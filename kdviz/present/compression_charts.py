"""The pruning and quantization charts of one snapshot, drawn the same way by both UIs.

A snapshot is read through its method's typed reader (``MethodSpec.read_snapshot``: a
``PruneSnapshot`` or a ``QuantSnapshot``), never by its array keys, and the figures get plain
arrays: a layer's mask grid, histogram and sparsity (Han et al. 2015; Zhu & Gupta 2017), or its
codebook before and after centroid fine-tuning (Han, Mao, Dally 2016, eq. 3). Live metrics are read
under the key the method's hook logs them with (``MethodSpec.metric_key``), so a hook used twice
in one run is read correctly. Colours are the method's own (``MethodSpec.colour``).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from ..engine import Snapshot
from ..figures.pruning import mask_heatmap, sparsity_bars, weight_histogram
from ..figures.pruning_live import accuracy_over_training, wrap_title
from ..figures.quantization_explorer import codebook_progress, finetune_accuracy
from ..methods import MethodSpec
from ..methods.prune import PRUNE, PruneSnapshot
from ..methods.quantize import KMEANS, QuantSnapshot
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


def sparsity_chart(snap: PruneSnapshot, live: bool = False, colour: str = PRUNE.colour) -> go.Figure:
    """Sparsity per layer of one pruning snapshot (``live``: with the schedule's targets)."""
    return sparsity_bars(snap.layers, snap.sparsity, targets=snap.target if live else None, sizes=snap.weights,
                         colour=colour)


def layer_charts(snap: PruneSnapshot, layer: str, step: int | None = None, live: bool = False) -> dict[str, go.Figure]:
    """The ``mask`` and ``histogram`` charts of one layer of a pruning snapshot (``live``: a training
    run's; otherwise a slider's one-shot pruning, whose histogram counts the weights it removed)."""
    grid, block = snap.mask(layer)  # a ValueError names the pruned layers if ``layer`` is not one
    counts, edges = snap.histogram(layer)
    i = snap.layers.index(layer)
    threshold = float(snap.threshold[i]) or None  # 0: nothing pruned yet, no band to draw
    pruned = None if live else int(round(float(snap.sparsity[i]) * int(snap.weights[i])))
    return {"mask": mask_heatmap(grid, layer, block=block, step=step),
            "histogram": wrap_title(weight_histogram(counts, edges, layer, thresholds=threshold, pruned=pruned))}


def pruning_charts(snap: PruneSnapshot, layer: str, step: int | None = None, live: bool = False,
                   colour: str = PRUNE.colour) -> dict[str, go.Figure]:
    """``layer_charts`` and the sparsity ``bars`` of one pruning snapshot."""
    return {**layer_charts(snap, layer, step, live), "bars": sparsity_chart(snap, live, colour)}


def pruning_accuracy(records: Sequence[Mapping[str, Any]], config: Any, dense_accuracy: float | None = None,
                     epoch: float | None = None, label: str = "pruned + fine-tuned", which: int = 0) -> go.Figure:
    """Accuracy over a pruning run, its title naming the sparsity logged at the last evaluation."""
    sparsity = last_eval(records, PRUNE.metric_key(config, "sparsity", which))
    return accuracy_over_training(records, dense_accuracy, epoch, label, sparsity=sparsity, colour=PRUNE.colour)


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


__all__ = ["centroid_accuracy", "codebook_charts", "layer_charts", "pruning_accuracy", "pruning_charts", "readings",
           "sparsity_chart"]
