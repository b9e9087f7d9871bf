"""Han, Mao, Dally 2016, "Deep Compression: Compressing Deep Neural Networks with Pruning, Trained
Quantization and Huffman Coding" (ICLR 2016), tables 1 and 2 for LeNet-300-100 on MNIST: pruned to
8 % of the weights, 6-bit weight sharing with 5-bit relative indices, then Huffman coding: 1070 KB
-> 27 KB (40x), top-1 test error 1.64 % -> 1.58 %.

Per seed, three engine runs, one after the other:

1. the dense LeNet-300-100 baseline of ``han-pruning`` (the same config: trained once per runs
   root and shared by both reproductions);
2. ``han-pruning``'s prune-and-retrain fine-tune from it (``init_from``): Han et al. 2015's
   per-layer sparsities (fc1 92 %, fc2 91 %, fc3 74 %) on the AGP ramp, the masks held while it retrains;
3. the Deep Compression method's k-means stage from the pruned weights (``init_from``): k-means
   weight sharing per layer with linear initialisation, the pruned zeros excluded (sec. 3.1,
   eq. 1), then the centroids fine-tuned with the indices fixed (sec. 3.3, eq. 3), with the
   MNIST preset of ``kdviz.methods.deep_compression`` (learning rate 1e-5).

Huffman coding (sec. 4) needs no training: ``value_of`` measures the finished k-means run with
``deep_compression_report.compression_report`` (lengths of real encoded bytes; the compressed error
is that of the model decoded from the Huffman-coded bytes alone). Rows: baseline and compressed
test error (%), the compression rate (weights only, as table 1), the weights kept (%, counted on the
pruned run's saved model), and the fixed-width bits per stored entry of the weight indices and of
the relative indices before Huffman coding (table 2: 6 and 5).

Quick mode: ``han-pruning``'s quick baseline and prune (2 + 3 epochs) and 40 centroid fine-tuning
steps; the rate and bits are the paper's setting, the errors higher than the paper's.
"""
from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from ..engine import TrainConfig
from ..engine.run_folder import checkpoint_file, read_config
from ..methods.deep_compression import preset
from ..methods.deep_compression_report import compression_report
from ..methods.quantize import KMEANS
from . import han_pruning
from .base import PaperNumber, PlannedRun, Reproduction, register

BASELINE_ROW, KEPT_ROW = han_pruning.BASELINE_ROW, han_pruning.KEPT_ROW
COMPRESSED_ROW, RATE_ROW = "compressed error", "compression rate"
WEIGHT_BITS_ROW, INDEX_BITS_ROW = "weight index bits", "relative index bits"
BITS, INDEX_BITS = 6, 5  # table 2: 6-bit codebooks for every layer of LeNet-300-100, 5-bit relative indices
PAPER = (
    PaperNumber(BASELINE_ROW, 1.64, "% test error", "LeNet-300-100 reference (table 1)"),
    PaperNumber(COMPRESSED_ROW, 1.58, "% test error", "pruned + quantized + Huffman-coded (table 1)"),
    PaperNumber(RATE_ROW, 40, "x smaller (weights)", "1070 KB -> 27 KB (table 1)"),
    PaperNumber(KEPT_ROW, 8, "% of weights", "fc1 8 %, fc2 9 %, fc3 26 % (table 2)"),
    PaperNumber(WEIGHT_BITS_ROW, BITS, "bits per entry", "fixed-width, before Huffman (table 2, P+Q)"),
    PaperNumber(INDEX_BITS_ROW, INDEX_BITS, "bits per entry", "fixed-width, before Huffman (table 2, P+Q)"),
)
LAYERS = ("fc1", "fc2", "fc3")  # LeNet-300-100's prunable layers, in forward order
MEASURED_ROWS = (COMPRESSED_ROW, RATE_ROW, WEIGHT_BITS_ROW, INDEX_BITS_ROW)  # read from the k-means run
QUICK_FINETUNE_STEPS = 40
EVALUATIONS = 10  # per full k-means run (quick: 2)


def compressed_config(seed: int, quick: bool = False, bits: int = BITS) -> TrainConfig:
    """The k-means stage (``init_from`` is filled in once the prune run has finished): the fields of
    ``kdviz.methods.deep_compression.quantize_config`` for the MNIST preset, built without reading a
    run folder or the data (LeNet-300-100's layers and MNIST's 60,000 images are known)."""
    options = preset("mnist", bits=bits, seed=seed)
    per_epoch = -(-han_pruning.MNIST_TRAIN // options.batch_size)
    steps = QUICK_FINETUNE_STEPS if quick else int(math.ceil(options.finetune_epochs * per_epoch))
    every = max(1, steps // (2 if quick else EVALUATIONS))
    hook = {"name": KMEANS.name, "bits": options.bits_of(list(LAYERS)), "init": options.init, "seed": options.seed,
            "layers": list(LAYERS)}
    pruned = han_pruning.pruned_config(seed, quick)
    return TrainConfig(
        dataset=pruned.dataset, model=pruned.model, model_options=dict(pruned.model_options), method="ce",
        init_from="", optimizer="sgd", momentum=0.9, lr_schedule="cosine", lr=options.finetune_lr, weight_decay=0.0,
        batch_size=options.batch_size, epochs=-(-steps // per_epoch), max_steps=steps, seed=seed, eval_every=every,
        snapshot_every=0, hooks=[hook], name=f"dc-{bits}bit-s{seed}").validate()


def plan_runs(seeds: Sequence[int], quick: bool = False, bits: int = BITS) -> list[PlannedRun]:
    """Per seed: ``han-pruning``'s baseline (reused) and prune run, then the k-means run from it."""
    runs = []
    for seed in seeds:
        baseline, pruned = han_pruning.plan_runs([seed], quick)
        runs.append(baseline)
        runs.append(PlannedRun(f"pruned/seed{seed}", KEPT_ROW, seed, pruned.config, after=baseline.key, link="init_from"))
        runs.append(PlannedRun(f"compressed/seed{seed}", COMPRESSED_ROW, seed, compressed_config(seed, quick, bits),
                               after=f"pruned/seed{seed}", link="init_from", extra_rows=MEASURED_ROWS[1:]))
    return runs


_MEASURED: dict[tuple[str, int], dict[str, float]] = {}
_MEASURED_LOCK = threading.Lock()


def compression_rows(quantize_run: str | os.PathLike) -> dict[str, float]:
    """The k-means run's rows, measured once per checkpoint: compressed error (%, the model decoded
    from the Huffman-coded bytes), compression rate (dense bytes / Huffman bytes, weights only) and
    the fixed-width bits per stored entry (fillers included) of the weight and relative indices."""
    path = Path(quantize_run).resolve()
    key = (str(path), checkpoint_file(path).stat().st_mtime_ns)
    with _MEASURED_LOCK:
        if key in _MEASURED:
            return _MEASURED[key]
        prune_run = read_config(path).init_from
        if not prune_run:
            raise ValueError(f"the k-means run {path} was not started from a pruned run (no init_from)")
        report = compression_report(prune_run, path)
        dense, huffman = report.stages[0], report.stages[-1]
        fixed = report.fixed_layer_sizes  # encoded once by the report
        entries = sum(layer.n_entries for layer in fixed)
        _MEASURED[key] = {
            COMPRESSED_ROW: 100.0 * huffman.error,
            RATE_ROW: dense.nbytes / huffman.nbytes,
            WEIGHT_BITS_ROW: sum(layer.value_bits for layer in fixed) / entries,
            INDEX_BITS_ROW: sum(layer.sparse_index_bits for layer in fixed) / entries,
        }
        return _MEASURED[key]


def value_of(path: Path, row: str) -> float:
    """Test error in % (baseline), weights kept in % (pruned run), else the k-means run's rows."""
    if row in MEASURED_ROWS:
        return compression_rows(path)[row]
    return han_pruning.value_of(path, row)


def describe_settings(quick: bool) -> str:
    steps = f"{QUICK_FINETUNE_STEPS} steps" if quick else f"{preset('mnist').finetune_epochs:g} epochs"
    return (f"{han_pruning.describe_settings(quick)}; then {BITS}-bit k-means per layer (linear init, pruned zeros "
            f"excluded), centroids fine-tuned {steps} at lr {preset('mnist').finetune_lr:g}; Huffman-coded indices "
            f"and {INDEX_BITS}-bit relative indices, measured from the encoded bytes")


DEEP_COMPRESSION = register(Reproduction(
    name="deep-compression",
    title="Deep Compression of LeNet-300-100: error and size after pruning, k-means and Huffman coding",
    citation='Han, Mao, Dally 2016, "Deep Compression: Compressing Deep Neural Networks with Pruning, Trained '
             'Quantization and Huffman Coding", tables 1-2',
    dataset="mnist",
    paper=PAPER,
    plan_runs=lambda seeds, quick: plan_runs(seeds, quick),
    value_of=value_of,
    settings=describe_settings,
))
