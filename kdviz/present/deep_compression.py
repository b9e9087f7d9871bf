"""A Deep Compression experiment as both UIs show it: its stage runs, their state, the sizes so far.

The experiment is ``kdviz.methods.deep_compression.deep_compression_experiment``'s: a pruning run,
then a k-means run from its weights, each a real engine job (queued by the ``JobManager``, stoppable,
listed on Compare runs). ``DeepCompressionView`` reads it: a ``RunView`` per started stage (live
charts), a ``StatusText`` per stage (waiting, running, finished, cancelled...), the overall progress,
and ``report()``: the four stages (dense -> pruned -> quantized -> Huffman, Han, Mao, Dally 2016,
figure 1) measured from the finished run folders (``compression_report``), computed once per pair
of finished folders and shared by every viewer. ``stage_rows``, ``layer_rows`` and
``waterfall_stages`` turn a report into the table rows and the waterfall's data.

While a stage trains, ``stage_live`` says which stage runs and what to draw from its snapshots:
the pruning stage's sparsity per layer (Han et al. 2015; Zhu & Gupta 2017's AGP schedule) beside
its accuracy over training, the k-means stage's codebook on the kept weights beside accuracy while
the shared values are fine-tuned (Han, Mao, Dally 2016, sec. 3.3, eq. 3), with a caption.
``pipeline_snapshots`` lists both stages' snapshots in order, for a replay of the whole recipe.
``collapse_warning`` says when the compressed model's accuracy has collapsed, which stage lost it
and what to change.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from ..engine import Snapshot, open_run
from ..engine.experiment import Experiment
from ..engine.run_folder import checkpoint_file
from ..methods.deep_compression import PRUNE_STAGE, QUANTIZE_STAGE, STAGE_LABELS, STAGES
from ..methods.deep_compression_report import CompressionReport, compression_report
from ..methods.prune import PRUNE
from ..methods.quantize import KMEANS
from .compression_charts import centroid_accuracy, codebook_charts, pruning_accuracy, readings, sparsity_chart
from .runs import RunView, as_run_view, last_eval
from .status import ICONS, StatusText, describe

_REPORTS: "OrderedDict[tuple, CompressionReport]" = OrderedDict()
_REPORTS_LOCK = threading.Lock()
REPORTS_KEPT = 8


def cached_report(prune_run: str | os.PathLike, quantize_run: str | os.PathLike | None = None) -> CompressionReport:
    """``compression_report`` of finished run folders, computed once per process for each pair
    (and checkpoint version), so a page refreshing every second decodes the model once."""
    paths = [Path(p) for p in (prune_run, quantize_run) if p is not None]
    key = tuple((str(p.resolve()), checkpoint_file(p).stat().st_mtime_ns) for p in paths)
    with _REPORTS_LOCK:
        if key in _REPORTS:
            _REPORTS.move_to_end(key)
            return _REPORTS[key]
    report = compression_report(prune_run, quantize_run)
    with _REPORTS_LOCK:
        _REPORTS[key] = report
        while len(_REPORTS) > REPORTS_KEPT:
            _REPORTS.popitem(last=False)
    return report


class DeepCompressionView:
    """What both UIs show of one Deep Compression experiment; ``refresh()`` before reading."""

    def __init__(self, experiment: Experiment) -> None:
        if not isinstance(experiment, Experiment):
            raise TypeError("give the Experiment that deep_compression_experiment(...) returned, "
                            f"got {type(experiment).__name__}")
        if not set(STAGES) <= set(experiment.jobs) | set(experiment.pending) | set(experiment.blocked):
            raise ValueError(f"this experiment has no stages {list(STAGES)} (jobs: {list(experiment.jobs)}); "
                             "make it with deep_compression_experiment")
        self.experiment = experiment
        self.views: dict[str, RunView] = {}
        self.start_accuracies: dict[str, float | None] = {}  # per stage: its starting model's test accuracy

    def refresh(self) -> list[RunView]:
        """Start a stage whose turn has come, read what is new of every started stage; their views."""
        self.experiment.poll()
        for name, job in self.experiment.jobs.items():
            view = self.views.get(name)
            if view is None or view.job is not job:
                view = self.views[name] = as_run_view(job, label=self.label(name))
            view.refresh()
        return [self.views[name] for name in STAGES if name in self.views]

    @property
    def names(self) -> tuple[str, ...]:
        """The stages, in order (their jobs are ``experiment.job(name)`` once started)."""
        return STAGES

    @staticmethod
    def label(name: str) -> str:
        """A stage's label in words ("pruning + retraining")."""
        return STAGE_LABELS.get(name, name)

    def stage_status(self, name: str) -> StatusText:
        """A stage's state in words: a started stage's job status, or why it has not started."""
        label = self.label(name)
        job = self.experiment.job(name)
        if job is not None:
            limit = job.manager.max_concurrent if job.manager is not None else None
            return describe(job.status(), label, epochs=job.config.epochs, max_concurrent=limit)
        blocked = self.experiment.blocked.get(name)
        if blocked is not None:
            return StatusText("cancelled", ICONS["stopped"], f"{label} · cancelled", blocked, 0.0)
        return StatusText("waiting", ICONS["queued"], f"{label} · waiting", "starts when the stage before it has finished", 0.0)

    def statuses(self) -> list[StatusText]:
        return [self.stage_status(name) for name in STAGES]

    @property
    def progress(self) -> float:
        """Overall progress in [0, 1]: each stage counts for an equal share."""
        return sum(s.progress for s in self.statuses()) / len(STAGES)

    @property
    def state(self) -> str:
        """"finished" when both stages have; the trouble ("stopped", "failed", "diverged") of a stage
        that ended otherwise; else the running stage's state ("running" between the two stages)."""
        states = [s.state for s in self.statuses()]
        if all(s == "finished" for s in states):
            return "finished"
        for group in (("failed", "diverged", "stopped"), ("running", "paused", "queued")):
            found = [s for s in states if s in group]
            if found:
                return found[0]
        return "running"

    @property
    def done(self) -> bool:
        return self.experiment.done

    def stop(self) -> None:
        """Stop the running stage and cancel the next."""
        self.experiment.stop()

    def report(self) -> CompressionReport | None:
        """The stages measured so far: None until the pruning run has finished; dense and pruned
        after it; all four once the k-means run has finished too."""
        prune, quantize = (self.experiment.job(name) for name in STAGES)
        if prune is None or prune.status().state != "finished":
            return None
        done = quantize is not None and quantize.status().state == "finished"
        return cached_report(prune.path, quantize.path if done else None)


def waterfall_stages(report: CompressionReport) -> list[tuple[str, float]]:
    """``[(stage, bytes), ...]``, the input of ``kdviz.figures.quantization.size_waterfall``."""
    return report.sizes()


def stage_rows(report: CompressionReport) -> list[dict[str, Any]]:
    """One row per stage: size, ratio to dense, test error and its change, seconds, what is stored."""
    dense = report.stages[0]
    return [{"stage": s.name, "size (KB)": s.nbytes / 1e3, "ratio (x)": dense.nbytes / s.nbytes,
             "test error (%)": 100 * s.error, "error change (points)": 100 * (s.error - dense.error),
             "seconds": s.seconds, "what is stored": s.note} for s in report.stages]


def layer_rows(report: CompressionReport) -> list[dict[str, Any]]:
    """One row per layer of the Huffman-coded model: weights, kept share, bits of each stream, ratio."""
    return [{"layer": s.name, "weights": s.n_weights, "kept %": 100 * s.n_kept / s.n_weights,
             "index bits": s.value_bits, "gap bits": s.sparse_index_bits,
             "codebook + table bits": s.codebook_bits + s.table_bits, "ratio (x)": s.rate}
            for s in report.layer_sizes]


def codebook_data(report: CompressionReport, layer: str) -> dict[str, Any]:
    """The arguments of ``kdviz.figures.quantization.codebook_histogram`` for ``layer``: the
    pruned layer's kept weights, its initial and its fine-tuned centroids."""
    if layer not in report.shared:
        raise ValueError(f"layer {layer!r} has no codebook (layers: {list(report.shared)})")
    counts, edges = report.histograms[layer]
    return {"hist_counts": counts, "hist_edges": edges, "centroids_initial": report.centroids_initial[layer],
            "centroids": report.shared[layer].centroids.numpy(), "layer": layer}


# ---- the running stage, live ----------------------------------------------------------------------
STAGE_METHODS = {PRUNE_STAGE: PRUNE, QUANTIZE_STAGE: KMEANS}  # the hook each stage's snapshots hold
STAGE_NOTES = {
    PRUNE_STAGE: "Bars: weights pruned per layer now; ticks: the schedule's target at this step. Accuracy dips "
                 "each time the AGP schedule prunes and recovers while the kept weights retrain.",
    QUANTIZE_STAGE: "Dashed: the shared values k-means chose for the kept weights; solid: where fine-tuning has "
                    "moved them. The first accuracy point is k-means before any step.",
}


@dataclass(frozen=True)
class StageSnapshot:
    """One snapshot of one stage's run with its typed reading (``PruneSnapshot`` or ``QuantSnapshot``)."""

    stage: str
    snapshot: Snapshot
    reading: Any

    @property
    def epoch(self) -> float:
        return float(self.snapshot.epoch)

    @property
    def step(self) -> int:
        return int(self.snapshot.step)


@dataclass(frozen=True)
class StageLive:
    """What to draw of one stage at one of its snapshots: ``figures["progress"]`` (sparsity per
    layer, or the layer's codebook), ``figures["accuracy"]`` and the caption under them."""

    stage: str
    label: str
    running: bool
    shown: StageSnapshot
    count: int  # snapshots of this stage read so far
    layers: list[str]
    layer: str | None
    figures: dict[str, go.Figure]
    caption: str


def live_stage(view: DeepCompressionView) -> str | None:
    """The stage whose charts to draw: the last one started (the running one while the experiment
    trains, the k-means stage once it has finished); None before any has started."""
    started = [name for name in STAGES if view.experiment.job(name) is not None]
    return started[-1] if started else None


def stage_snapshots(view: DeepCompressionView, stage: str) -> list[StageSnapshot]:
    """The snapshots of ``stage``'s run read so far (``refresh()`` first) that hold its hook's arrays."""
    run = view.views.get(stage)
    if run is None:
        return []
    return [StageSnapshot(stage, snap, reading) for snap, reading in readings(STAGE_METHODS[stage], run.snapshots, run.config)]


def pipeline_snapshots(view: DeepCompressionView) -> list[StageSnapshot]:
    """Both stages' snapshots in order (pruning, then k-means): what a replay of the recipe steps through."""
    return [s for stage in STAGES for s in stage_snapshots(view, stage)]


def replay_label(shown: StageSnapshot) -> str:
    """"pruning + retraining · epoch 2.0 · step 24": a replay position in words."""
    return f"{STAGE_LABELS[shown.stage]} · epoch {shown.epoch:.1f} · step {shown.step}"


def start_accuracy(view: DeepCompressionView, stage: str) -> float | None:
    """Last test accuracy of the model ``stage`` started from (the dense baseline for pruning, the
    pruned model for k-means); read once per stage."""
    if stage not in view.start_accuracies:
        run = view.views.get(stage)
        source = getattr(run.config, "init_from", None) if run is not None else None
        try:
            value = last_eval(open_run(source).metrics("eval"), "test_acc") if source else None
        except (OSError, ValueError):
            value = None
        view.start_accuracies[stage] = value
    return view.start_accuracies[stage]


def stage_figures(view: DeepCompressionView, shown: StageSnapshot, layer: str | None = None,
                  marked: bool = True) -> dict[str, go.Figure]:
    """The ``progress`` and ``accuracy`` charts of ``shown`` (``layer``: the codebook's, default the
    first); ``marked``: a dashed line on the accuracy chart at the snapshot's epoch."""
    run = view.views[shown.stage]
    epoch = shown.epoch if marked else None
    reference = start_accuracy(view, shown.stage)
    if shown.stage == PRUNE_STAGE:
        return {"progress": sparsity_chart(shown.reading, live=True, colour=run.colour),
                "accuracy": pruning_accuracy(run.evals, run.config, reference, epoch, label=run.label)}
    layer = layer if layer in shown.reading.layers else shown.reading.layers[0]
    return {"progress": codebook_charts(shown.reading, layer)[0],
            "accuracy": centroid_accuracy(run.evals, reference, epoch, label=run.label)}


def stage_caption(shown: StageSnapshot, index: int, count: int, running: bool) -> str:
    """Which stage, which snapshot, what it holds, what to notice."""
    order = STAGES.index(shown.stage) + 1
    head = (f"{'Now' if running else 'Shown'}: stage {order} of {len(STAGES)}, {STAGE_LABELS[shown.stage]} · "
            f"snapshot {index + 1} of {count}, step {shown.step} (epoch {shown.epoch:.2f})")
    if shown.stage == PRUNE_STAGE:
        reading = shown.reading
        layers = ", ".join(f"{n} {100 * s:.0f}%" for n, s in zip(reading.layers, reading.sparsity))
        what = f"{100 * reading.overall_sparsity():.1f}% of weights pruned ({layers})"
    else:
        what = f"{len(shown.reading.layers)} layers share their weights"
    return f"{head}: {what}. {STAGE_NOTES[shown.stage]}"


def stage_live(view: DeepCompressionView, shown: StageSnapshot | None = None, layer: str | None = None) -> StageLive | None:
    """The running stage's charts at its latest snapshot, or at ``shown`` (a replay position); None
    before the first snapshot. Call ``view.refresh()`` first."""
    stage = shown.stage if shown is not None else live_stage(view)
    found = stage_snapshots(view, stage) if stage is not None else []
    if not found:
        return None
    shown = shown if shown is not None else found[-1]
    index = next((i for i, s in enumerate(found) if s.snapshot is shown.snapshot), len(found) - 1)
    job = view.experiment.job(stage)
    running = job is not None and not job.done
    layers = list(shown.reading.layers)
    chosen = None if stage == PRUNE_STAGE else (layer if layer in layers else layers[0])  # codebooks are per layer
    return StageLive(stage, STAGE_LABELS[stage], running, shown, len(found), layers, chosen,
                     stage_figures(view, shown, chosen), stage_caption(shown, index, len(found), running))


def stage_drawer(view: DeepCompressionView, stage: str, chart: str = "progress", layer: str | None = None):
    """``draw(snapshot) -> Figure | None`` for a replay of ``stage``'s run (``kdviz.present.replay``):
    its ``chart`` at a raw snapshot, None for a snapshot without the stage's hook."""
    run = view.views[stage]

    def draw(snapshot: Snapshot) -> go.Figure | None:
        found = readings(STAGE_METHODS[stage], [snapshot], run.config)
        if not found:
            return None
        return stage_figures(view, StageSnapshot(stage, *found[0]), layer, marked=False)[chart]

    return draw


# ---- when accuracy collapses ----------------------------------------------------------------------
COLLAPSE_ERROR_FACTOR = 2.0  # the compressed model's test error more than doubles the dense model's...
COLLAPSE_MIN_POINTS = 5.0  # ...and lies at least this many percentage points above it


@dataclass(frozen=True)
class CollapseWarning:
    """The compressed model's accuracy has collapsed: ``stage`` ("pruning" or "quantization") lost
    the most of it; ``message`` says so in one sentence, ``advice`` what to change."""

    ratio: float
    error: float
    dense_error: float
    stage: str
    lost_points: float
    message: str
    advice: str

    @property
    def text(self) -> str:
        return f"{self.message} {self.advice}"


def _ratio_text(ratio: float) -> str:
    return f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


def _finetune_lost_it(report: CompressionReport) -> bool:
    """Whether the k-means stage lost more while fine-tuning the centroids than by clustering."""
    before = report.accuracy_before_finetune
    if before is None or len(report.stages) < 3:
        return False
    pruned, last = report.stages[1], report.stages[-1]
    return (last.error - (1.0 - before)) > ((1.0 - before) - pruned.error)


def _advice(report: CompressionReport, stage: str) -> str:
    if stage == "pruning":
        now = ", ".join(f"{n} {100 * s:.0f}%" for n, s in report.sparsity.items())
        return (f"Try less sparsity (pruned now: {now}), above all in the small output layer, or more retraining "
                "epochs per pruning round.")
    if _finetune_lost_it(report):
        return (f"k-means alone kept {100 * report.accuracy_before_finetune:.1f}% accuracy; fine-tuning the shared "
                "values lost it: try a lower centroid learning rate or fewer fine-tuning epochs.")
    widths = sorted({sw.bits for sw in report.shared.values()})
    now = f"now {'/'.join(map(str, widths))}; " if widths else ""
    return (f"Try more bits per shared value ({now}Han et al. use 6 for LeNet-300-100) "
            "or more centroid fine-tuning epochs.")


def collapse_warning(report: CompressionReport | None) -> CollapseWarning | None:
    """A warning when the last measured stage's test error is more than ``COLLAPSE_ERROR_FACTOR``
    times the dense model's and at least ``COLLAPSE_MIN_POINTS`` points above it; None otherwise
    (and for no report). The stage blamed is the one whose error rose most: pruning (dense ->
    pruned) or quantization (pruned -> the last stage; Huffman coding itself is lossless)."""
    if report is None or len(report.stages) < 2:
        return None
    dense, pruned, last = report.stages[0], report.stages[1], report.stages[-1]
    rise = 100 * (last.error - dense.error)
    if not (last.error > COLLAPSE_ERROR_FACTOR * dense.error and rise >= COLLAPSE_MIN_POINTS):
        return None
    pruning_loss, quant_loss = pruned.error - dense.error, last.error - pruned.error
    stage = "quantization" if len(report.stages) > 2 and quant_loss > pruning_loss else "pruning"
    lost = 100 * (quant_loss if stage == "quantization" else pruning_loss)
    ratio = dense.nbytes / last.nbytes
    message = (f"{_ratio_text(ratio)} smaller, but {100 * last.error:.0f} % error (dense: {100 * dense.error:.1f} %): "
               f"accuracy collapsed in the {stage} stage, which cost {lost:.1f} points.")
    return CollapseWarning(ratio, last.error, dense.error, stage, lost, message, _advice(report, stage))
