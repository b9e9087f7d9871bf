"""The pruning page's baseline model and its computations, kept apart from the page's widgets.

The baseline (LeNet-300-100 by default, Han et al. 2015's MLP) is trained once in the background
like the lab's teacher (``teacher.shared_run_job``, i.e. ``kdviz.present.shared_run``: a finished
run with the same config is reused from disk). ``Baseline`` holds it with a ``MaskedEvaluator`` and a lock: the object is
shared by every browser session (``st.cache_resource``) and an evaluation writes masked weights into
the model, so one slider move at a time holds the lock and leaves the dense weights in place.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
import torch

from ..engine import Job, load_trained_model
from ..methods.prune import PruneSnapshot, read_prune_arrays
from ..models import count_parameters
from ..prune import (
    MaskedEvaluator, count_flops, prune_structured, sensitivity_analysis, unit_norms,
)
from ..prune.evaluate import accuracy
from ..prune.explore import accuracy_curve, slider_arrays, slider_reports
from ..prune.magnitude import layers_emptied
from .session import runs_root
from .sidebar import LabSettings, ModelChoice, load_bundle
from .teacher import TEACHER_LR, shared_run_job, teacher_epochs

BASELINES: dict[str, ModelChoice] = {
    "LeNet-300-100 (Han et al. 2015)": ModelChoice("lenet300", {}, "fully connected: 300 and 100 hidden units"),
    "LeNet-5 (conv)": ModelChoice("lenet5", {}, "two conv layers: rank their filters"),
}


def baseline_options(settings: LabSettings, choice: str) -> dict:
    """The TrainConfig fields of the baseline run (plain cross-entropy training, as the teacher)."""
    model = BASELINES[choice]
    return {"dataset": settings.dataset, "model": model.model, "model_options": dict(model.options),
            "epochs": teacher_epochs(settings.dataset), "lr": TEACHER_LR, "data_root": settings.data_root,
            "runs_root": runs_root(), "name": f"baseline-{model.model}-{settings.dataset}"}


def baseline_job(settings: LabSettings, choice: str, retry: bool = False) -> Job:
    """The baseline job: reused from disk, joined while it trains, else started (``retry`` restarts
    a failed or stopped one)."""
    return shared_run_job(baseline_options(settings, choice), retry)


def baseline_name(job: Job, choice: str) -> str:
    return f"baseline {choice.split(' (')[0]} on {job.config.dataset}"


def ready_baseline(settings: LabSettings, model_key: str, status_key: str,
                   load: Callable[[Job, LabSettings], Any] = lambda job, settings: job) -> tuple[Any, Job | None, Any]:
    """The baseline picker, the dataset and the baseline run with its status drawn: (bundle, the baseline
    job, ``load(job, settings)`` once the baseline is ready, else None). Pruning, quantization and Deep
    Compression share it."""
    from .components import dataset_and_run, show_run_status  # late: components imports the sidebar
    from .errors import user_errors

    st.selectbox("Baseline model", list(BASELINES), key=model_key, format_func=lambda c: f"{c} · {BASELINES[c].note}")
    choice = st.session_state[model_key]
    bundle, job = dataset_and_run(settings, lambda: baseline_job(settings, choice), "Baseline")
    if job is None or not show_run_status(job, baseline_name(job, choice), lambda: baseline_job(settings, choice, retry=True),
                                          status_key, "baseline"):
        return bundle, job, None
    with user_errors("Baseline"):
        return bundle, job, load(job, settings)
    return bundle, job, None  # the load failed; the message is shown


@dataclass
class Baseline:
    """A trained model, its evaluator over the test set, and results computed once per model."""

    path: str
    model: torch.nn.Module
    evaluator: MaskedEvaluator
    dense_accuracy: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    curves: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    sensitivity: dict[str, list[tuple[float, float]]] | None = None
    players: dict[tuple, dict] = field(default_factory=dict)  # the sparsity player's specs (``pruning_stops``)

    @property
    def layers(self) -> list[str]:
        return [n[: -len(".weight")] for n in self.evaluator.dense]


@st.cache_resource(show_spinner="Loading the baseline model...", max_entries=4)
def _load_baseline(run_path: str, dataset: str, root: str | None, download: bool) -> Baseline:
    bundle = load_bundle(LabSettings(dataset=dataset, data_root=root, download=download))
    model = load_trained_model(run_path, device="auto").eval()  # the slider re-evaluates on the GPU when there is one
    evaluator = MaskedEvaluator(model, bundle.test_images, bundle.test_labels)
    return Baseline(run_path, model, evaluator, evaluator.current_accuracy())


def load_baseline(job: Job, settings: LabSettings) -> Baseline:
    """The finished baseline of ``job`` with its evaluator (one per run folder and process)."""
    return _load_baseline(str(job.path), settings.dataset, settings.data_root, settings.download)


@dataclass
class SliderResult:
    """One slider position: accuracy, the masks read like a training snapshot, storage table, FLOPs."""

    sparsity: float
    scope: str
    accuracy: float
    snapshot: PruneSnapshot
    table: pd.DataFrame
    flops: dict[str, int]


def evaluate_slider(b: Baseline, sparsity: float, scope: str) -> SliderResult:
    """Prune the dense weights to ``sparsity`` (per layer or global), evaluate, measure storage and
    FLOPs of the pruned model, and put the dense weights back."""
    with b.lock:
        try:
            masks = b.evaluator.masks_at(sparsity, scope)
            acc = b.evaluator.accuracy(masks)
            arrays = slider_arrays(b.evaluator, masks)
            rows, costs = slider_reports(b.evaluator, masks)  # kept per slider position: a revisit is instant
        finally:
            b.evaluator.restore()
    flops = {"flops": sum(c.flops for c in costs), "nonzero_flops": sum(c.nonzero_flops for c in costs)}
    by_layer = {c.layer: c for c in costs}
    for row in rows:
        cost = by_layer.get(row["layer"])
        row["FLOPs dense"] = cost.flops if cost else flops["flops"]
        row["FLOPs kept"] = cost.nonzero_flops if cost else flops["nonzero_flops"]
    table = pd.DataFrame(rows)
    table["index bits"] = [f"{int(v)}" if v is not None and v == v else "" for v in table["index bits"]]
    return SliderResult(sparsity, scope, acc, read_prune_arrays(arrays), table, flops)


def emptied_warning(b: Baseline, sparsity: float, scope: str) -> str | None:
    """A sentence naming the layers that pruning to ``sparsity`` would remove whole (nothing flows
    through an emptied layer, so the network can only guess), or None when every layer keeps weights."""
    with b.lock:
        emptied = layers_emptied(b.evaluator.dense, sparsity, scope)
    if not emptied:
        return None
    names = ", ".join(f"{n.removesuffix('.weight')} ({b.evaluator.dense[n].numel():,} weights)" for n in emptied)
    advice = "Lower the sparsity" + (", or try one global cut, which takes more from the big layers." if scope == "layer"
                                     else ", or prune each layer alike.")
    return f"Sparsity {sparsity:g} prunes every weight of {names}: no signal passes that layer. {advice}"


def one_shot_curve(b: Baseline, scope: str) -> tuple[list[float], list[float]]:
    """Accuracy against sparsity without retraining (computed once per model and scope)."""
    with b.lock:
        if scope not in b.curves:
            b.curves[scope] = accuracy_curve(b.evaluator, scope=scope)
        return b.curves[scope]


def run_sensitivity(b: Baseline) -> dict[str, list[tuple[float, float]]]:
    """Distiller-style sensitivity curves (one layer pruned at a time), computed once per model."""
    with b.lock:
        if b.sensitivity is None:
            b.sensitivity = sensitivity_analysis(b.evaluator)
        return b.sensitivity


@dataclass
class StructuredResult:
    kept: np.ndarray
    parameters: tuple[int, int]  # before, after
    flops: tuple[int, int]
    accuracy: float


def dense_unit_norms(b: Baseline, norm: str) -> dict[str, np.ndarray]:
    """Norm of every neuron or filter of the dense model, per structurally prunable layer."""
    with b.lock:
        b.evaluator.restore()
        return unit_norms(b.model, norm)


def remove_units(b: Baseline, layer: str, amount: float, norm: str) -> StructuredResult:
    """Physically remove the ``amount`` of lowest-norm units of ``layer`` (Li et al. 2017) and test
    the smaller dense model it gives."""
    with b.lock:
        b.evaluator.restore()
        result = prune_structured(b.model, {layer: amount}, norm=norm)
        small = result.model.eval()
        acc = accuracy(small, b.evaluator.images, b.evaluator.labels)
        flops = (count_flops(b.model)["flops"], count_flops(small)["flops"])
    return StructuredResult(result.kept[layer].numpy(), (count_parameters(b.model), count_parameters(small)), flops, acc)


# ---- speed on this CPU (shared with the Deep Compression page) -------------------------------------
SPEED_REFRESH_S = 1.0


def speed_section(candidates: dict[str, Job], key: str) -> None:
    """"Speed on this CPU": pick one of the finished ``candidates`` (label -> job), measure its dense,
    shrunk, sparse and int8 forms in the background (``kdviz.present.speed``) and show the latency
    and size chart, the caption written from the numbers and the table. Never blocks the page: the
    measurement runs in a thread and a fragment polls it."""
    from ..present.speed import measure_in_background, measured, unmeasurable_reason
    from .charts import show_chart
    from .components import guarded

    finished = {label: job for label, job in candidates.items() if job is not None and job.status().state == "finished"
                and unmeasurable_reason(job) is None}
    if not finished:
        st.caption("The speed of a model is measured once it has finished training.")
        return
    pick_key = f"{key}-run"
    if st.session_state.get(pick_key) not in finished:
        st.session_state[pick_key] = next(iter(finished))
    c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
    c1.selectbox("Model to measure", list(finished), key=pick_key)
    chosen = finished[st.session_state[pick_key]]
    if c2.button("Measure speed on this CPU", key=f"{key}-measure", icon=":material/speed:"):
        measure_in_background(chosen)
    task = measured(chosen)
    running = task is not None and not task.done

    def panel(was_running: bool) -> None:
        task = measured(chosen)
        if task is None:
            st.caption("Press **Measure speed on this CPU**: a few seconds, in the background.")
            return
        if not task.done:
            st.caption("Measuring the dense, shrunk, sparse and int8 forms (batch 1 and 256, interleaved)…")
            return
        if was_running:
            st.rerun(scope="app")
        if task.error:
            st.error(task.error, icon=":material/warning:")
            return
        report = task.result
        show_chart(report.figure(), f"{key}-chart", caption=report.caption())
        st.dataframe(pd.DataFrame(report.rows()), hide_index=True, width="stretch")

    st.fragment(run_every=SPEED_REFRESH_S if running else None)(guarded("Speed", panel))(running)


# ---- movement pruning beside magnitude pruning ---------------------------------------------------
MOVEMENT_TITLE = "Movement vs magnitude pruning"


def movement_panel(experiment, dense_accuracy: float | None, layer_key: str) -> None:
    """Both runs' status, sparsity and accuracy live, and |W| against the movement score of a layer."""
    from ..present.movement import movement_story
    from .charts import show_chart
    from .components import pick_layer, status_row
    from .live import job_view

    views = [job_view(job, label) for label, job in experiment.jobs.items()]
    for view in views:
        status_row(view.job, view.label)
    story = movement_story(views, st.session_state.get(layer_key), dense_accuracy)
    show_chart(story.progress, "movement-progress", caption=story.caption)
    if story.scatter is not None:
        pick_layer(layer_key, story.layers, "Layer shown in the scatter")  # a new pick redraws the fragment
        show_chart(story.scatter, "movement-scatter",
                   caption="Right: weights fine-tuning pushed away from zero (high score); top: large weights. "
                   "Magnitude pruning keeps the top, movement the right: the purple and orange points are where "
                   "they disagree (a fixed sample of the layer's weights).")
    else:
        st.caption("The scatter of |W| against the movement score appears with the first snapshot…")
