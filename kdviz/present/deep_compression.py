"""A Deep Compression experiment as both UIs show it: its stage runs, their state, the sizes so far.

The experiment is ``kdviz.methods.deep_compression.deep_compression_experiment``'s: a pruning run,
then a k-means run from its weights, each a real engine job (queued by the ``JobManager``, stoppable,
listed on Compare runs). ``DeepCompressionView`` reads it: a ``RunView`` per started stage (live
charts), a ``StatusText`` per stage (waiting, running, finished, cancelled...), the overall progress,
and ``report()``: the four stages (dense -> pruned -> quantized -> Huffman, Han, Mao, Dally 2016,
figure 1) measured from the finished run folders (``compression_report``), computed once per pair
of finished folders and shared by every viewer. ``stage_rows``, ``layer_rows`` and
``waterfall_stages`` turn a report into the table rows and the waterfall's data.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from ..engine.experiment import Experiment
from ..methods.deep_compression import STAGE_LABELS, STAGES
from ..methods.deep_compression_report import CompressionReport, compression_report
from .runs import RunView, as_run_view
from .status import ICONS, StatusText, describe

_REPORTS: "OrderedDict[tuple, CompressionReport]" = OrderedDict()
_REPORTS_LOCK = threading.Lock()
REPORTS_KEPT = 8


def cached_report(prune_run: str | os.PathLike, quantize_run: str | os.PathLike | None = None) -> CompressionReport:
    """``compression_report`` of finished run folders, computed once per process for each pair
    (and checkpoint version), so a page refreshing every second decodes the model once."""
    paths = [Path(p) for p in (prune_run, quantize_run) if p is not None]
    key = tuple((str(p.resolve()), (p / "checkpoints" / "last.pt").stat().st_mtime_ns) for p in paths)
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
