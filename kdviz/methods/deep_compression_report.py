"""Deep Compression's four stages measured from the recipe's finished run folders (no training).

Han, Mao, Dally 2016, figure 1 and table 1: dense -> pruned -> quantized -> Huffman. The sizes are
``kdviz.quant.pipeline``'s (lengths of real encoded bytes); the accuracies are the engine's own
evaluations (the baseline's, the prune run's and the k-means run's last ``test_acc``), except the
Huffman stage's: that model is decoded from the Huffman-coded bytes alone and evaluated here, so it
is the stored model's accuracy (it equals the k-means run's when the bytes hold the trained model).

The codebooks come from the k-means run's last checkpoint: the ``kmeans`` hook's state holds each
layer's fine-tuned centroids, initial centroids, indices and mask (False where pruned).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..engine import load_checkpoint, load_trained_model, open_run
from ..engine.evaluation import accuracy_and_loss, predict_logits
from ..engine.run_folder import read_config
from ..engine.run_reader import read_status
from ..engine.setup import dataset_for
from ..prune import layer_name, prunable_weights
from ..quant.histograms import weight_histogram
from ..quant.kmeans import SharedWeights
from ..quant.pipeline import Stage, decoded_model, dense_stage, encode_shared, huffman_stage, pruned_stage, quantized_stage
from ..quant.size import EncodedLayer, LayerSize
from .quantize import KMEANS


@dataclass
class CompressionReport:
    """The stages measured so far (dense and pruned once the prune run has finished; the k-means
    and Huffman stages once the k-means run has too) and what the charts of the last stage need."""

    stages: list[Stage]
    shared: dict[str, SharedWeights] = field(default_factory=dict)
    encoded: dict[str, EncodedLayer] = field(default_factory=dict)  # Huffman-coded
    layer_sizes: list[LayerSize] = field(default_factory=list)  # Huffman, per layer
    fixed_layer_sizes: list[LayerSize] = field(default_factory=list)  # fixed-width (the quantized stage), per layer
    histograms: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # kept weights
    centroids_initial: dict[str, np.ndarray] = field(default_factory=dict)
    accuracy_before_finetune: float | None = None
    sparsity: dict[str, float] = field(default_factory=dict)  # pruned fraction per layer (exact zeros)

    def sizes(self) -> list[tuple[str, float]]:
        """``[(stage, bytes), ...]`` for ``kdviz.figures.quantization.size_waterfall``."""
        return [(s.name, s.nbytes) for s in self.stages]

    @property
    def complete(self) -> bool:
        return len(self.stages) == 4


def _evals(path: str | os.PathLike) -> list[float]:
    return [float(r["test_acc"]) for r in open_run(path).metrics("eval") if "test_acc" in r]


def _last_accuracy(path: str | os.PathLike, what: str) -> float:
    values = _evals(path)
    if not values:
        raise ValueError(f"the {what} run {os.fspath(path)} has no evaluation yet")
    return values[-1]


def _finished(path: str | os.PathLike, what: str) -> None:
    state = read_status(path).get("state")
    if state != "finished":
        raise ValueError(f"the {what} run {os.fspath(path)} has not finished (state {state!r})")


def read_codebooks(quantize_run: str | os.PathLike) -> tuple[dict[str, SharedWeights], dict[str, np.ndarray], dict]:
    """(codebook per layer, initial centroids per layer, model state) of a k-means run's last checkpoint."""
    config = read_config(quantize_run)
    labels = KMEANS.hook_labels(config)
    if not labels:
        raise ValueError(f"run {os.fspath(quantize_run)} has no k-means hook in its config")
    spec = next(h for h in config.hooks if h.get("name") == KMEANS.name)
    state = load_checkpoint(quantize_run)
    hook = state.get("hooks", {}).get(labels[0], {})
    layers = [key[: -len(".indices")] for key in hook if key.endswith(".indices")]
    if not layers:
        raise ValueError(f"the checkpoint of {os.fspath(quantize_run)} holds no k-means codebook")
    bits = spec.get("bits", 5)
    shared = {n: SharedWeights(hook[f"{n}.centroids"].float(), hook[f"{n}.indices"].long(), hook[f"{n}.mask"].bool(),
                               int(bits[n] if isinstance(bits, dict) else bits)) for n in layers}
    initial = {n: hook[f"{n}.centroids_initial"].numpy().astype(np.float32) for n in layers}
    return shared, initial, state["model"]


def _test_accuracy(model: torch.nn.Module, config) -> float:
    data = dataset_for(config)
    return accuracy_and_loss(predict_logits(model, data.test_images, torch.device("cpu")), data.test_labels)[0]


def compression_report(prune_run: str | os.PathLike, quantize_run: str | os.PathLike | None = None) -> CompressionReport:
    """The stages of a finished prune run (and of the finished k-means run made from it)."""
    _finished(prune_run, "pruning")
    baseline = read_config(prune_run).init_from
    if not baseline:
        raise ValueError(f"the pruning run {os.fspath(prune_run)} was not started from a baseline (no init_from)")
    pruned = load_trained_model(prune_run)
    report = CompressionReport([
        dense_stage(load_trained_model(baseline), _last_accuracy(baseline, "baseline")),
        pruned_stage(pruned, _last_accuracy(prune_run, "pruning"), float(read_status(prune_run).get("elapsed_s", 0.0))),
    ])
    weights = {layer_name(n): w.detach().numpy() for n, w in prunable_weights(pruned).items()}
    report.histograms = {n: weight_histogram(w) for n, w in weights.items()}
    report.sparsity = {n: float((w == 0).mean()) for n, w in weights.items()}
    if quantize_run is not None:
        _add_quantized(report, pruned, prune_run, quantize_run)
    return report


def _add_quantized(report: CompressionReport, pruned: torch.nn.Module, prune_run: str | os.PathLike,
                   quantize_run: str | os.PathLike) -> None:
    _finished(quantize_run, "k-means")
    init = read_config(quantize_run).init_from
    if not init or Path(init).resolve() != Path(prune_run).resolve():
        raise ValueError(f"the k-means run {os.fspath(quantize_run)} was started from {init!r}, "
                         f"not from the pruning run {os.fspath(prune_run)}")
    report.shared, report.centroids_initial, state = read_codebooks(quantize_run)
    start = time.perf_counter()
    encodings = encode_shared(report.shared)
    report.encoded, report.layer_sizes = encodings.huffman, encodings.huffman_size.layers
    report.fixed_layer_sizes = encodings.fixed_size.layers
    accuracies = _evals(quantize_run)
    report.accuracy_before_finetune = accuracies[0] if accuracies else None
    widths = sorted({sw.bits for sw in report.shared.values()})
    seconds = float(read_status(quantize_run).get("elapsed_s", 0.0))
    report.stages.append(quantized_stage(encodings, "/".join(map(str, widths)) + "-bit",
                                         _last_accuracy(quantize_run, "k-means"), seconds, report.accuracy_before_finetune))
    decoded = decoded_model(pruned, state, encodings.huffman)
    accuracy = _test_accuracy(decoded, read_config(prune_run))
    report.stages.append(huffman_stage(encodings, accuracy, time.perf_counter() - start))
