"""The quantization pages' baseline and charts, kept apart from the pages' widgets.

The baseline is the pruning page's (``pruning_view.baseline_job``: LeNet-300-100 by default,
trained once in the background and reused from disk), so both pages compress the same model.
``QBaseline`` holds it with a ``MethodExplorer`` (``kdviz.quant.explore``) over the test set; the
object is shared by every browser session (``st.cache_resource``), and the explorer's lock lets one
slider move at a time write weights into its private copy of the model.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import plotly.graph_objects as go
import streamlit as st
import torch

from ..engine import Job, load_trained_model
from ..figures.quantization_explorer import levels_histogram
from ..quant import SliderEvaluator
from ..quant.explore import CURVE_METHODS, SCATTER_METHODS, SLOW_METHODS, MethodExplorer, Quantized, layer_histogram
from .sidebar import LabSettings, load_bundle


@dataclass
class QBaseline:
    """A trained model, its method explorer over the test set, and curves computed once."""

    path: str
    model: torch.nn.Module
    explorer: MethodExplorer
    float_accuracy: float
    curves: dict[bool, dict[str, dict[int, float]]] = field(default_factory=dict)
    points: dict[bool, list[dict]] = field(default_factory=dict)
    players: dict[tuple, dict] = field(default_factory=dict)  # the sliders' specs (``quantization_stops``)

    @property
    def layers(self) -> list[str]:
        return self.explorer.layers


@st.cache_resource(show_spinner="Loading the baseline model...", max_entries=4)
def _load(run_path: str, dataset: str, root: str | None, download: bool) -> QBaseline:
    bundle = load_bundle(LabSettings(dataset=dataset, data_root=root, download=download))
    model = load_trained_model(run_path).eval()
    explorer = MethodExplorer(SliderEvaluator(model, bundle.test_images, bundle.test_labels))
    return QBaseline(run_path, model, explorer, explorer.baseline())


def load_qbaseline(job: Job, settings: LabSettings) -> QBaseline:
    """The finished baseline of ``job`` with its explorer (one per run folder and process)."""
    return _load(str(job.path), settings.dataset, settings.data_root, settings.download)


def curves(b: QBaseline, product: bool) -> tuple[dict[str, dict[int, float]], list[dict]]:
    """Accuracy against bits per method and the compression scatter's points (computed once per
    baseline; ``product`` adds the slow methods, product quantization, which clusters every sub-space)."""
    if product not in b.curves:
        slow = SLOW_METHODS if product else {}
        b.curves[product] = b.explorer.accuracy_curves(methods={**CURVE_METHODS, **slow})
        b.points[product] = b.explorer.scatter_points(methods={**SCATTER_METHODS, **slow})
    return b.curves[product], b.points[product]


def histogram_figure(b: QBaseline, q: Quantized, layer: str) -> go.Figure:
    """The layer's float weights with the chosen method's values drawn on them."""
    counts, edges = layer_histogram(b.explorer.evaluator, layer)
    return levels_histogram(counts, edges, q.levels[layer], layer, q.choice.label(), q.choice.bits, q.n_weights[layer],
                            shared=q.choice.kind.shared, per_row=q.per_row)
