"""Deep Compression (Han, Mao, Dally, ICLR 2016): prune, then share weights by k-means, then Huffman-code.

The recipe is two engine runs from a trained baseline, one after the other (an ``Experiment``):

    "prune":    method "ce", init_from = the baseline run, the ``prune`` hook: magnitude pruning to
                per-layer targets (Han et al. 2015, table 4: LeNet-300-100 keeps 8% of fc1 and fc2,
                26% of the output layer) on Zhu & Gupta's AGP curve (2017, eq. 1), retraining all along
    "quantize": method "ce", init_from = the prune run, the ``kmeans`` hook: k-means weight
                sharing per layer (sec. 3.1, eq. 1), then the centroids fine-tuned with the indices
                fixed (sec. 3.3, eq. 3)

The prune hook's masks are not part of the model state, but the pruned weights are exactly 0 in the
prune run's checkpoint (the masks are re-applied after every step); ``kmeans_quantize`` counts an
exact zero as pruned, so the k-means stage clusters only the kept weights and keeps the others at
zero (its parametrization's mask). Huffman coding (sec. 4) is then measured from the final run
folder (``deep_compression_report``), with no training.

AGP schedule of the prune stage: ``prune_rounds`` pruning steps, every ``round_epochs`` (dt), the
first after one dt of fine-tuning the dense model (Zhu & Gupta start at s_i = 0 at t0), the last
reaching the targets at n * dt; then ``retrain_epochs`` of retraining with the masks held.
"""
from __future__ import annotations

import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from ..engine import JobManager, TrainConfig, load_trained_model
from ..engine.experiment import Experiment
from ..engine.run_folder import read_config
from ..engine.setup import steps_per_epoch
from ..palette import ROLE_COLORS
from ..prune import check_sparsity, layer_name, prunable_weights
from ..quant.kmeans import INITS, check_bits
from .base import MethodSpec, PageSpec, register_method
from .prune import PRUNE
from .quantize import KMEANS

# Han et al. 2015 (table 4): LeNet-300-100 keeps 8%, 9% and 26% of fc1, fc2 and fc3.
HAN_HIDDEN_SPARSITY, HAN_OUTPUT_SPARSITY = 0.92, 0.74
PRUNE_STAGE, QUANTIZE_STAGE = "prune", "quantize"
STAGES = (PRUNE_STAGE, QUANTIZE_STAGE)
STAGE_LABELS = {PRUNE_STAGE: "pruning + retraining", QUANTIZE_STAGE: "k-means + centroid fine-tuning"}
TITLE = "Deep Compression (Han, Mao, Dally 2016): prune, then k-means, then Huffman"


@dataclass(frozen=True)
class DeepCompressionOptions:
    """The recipe's options. ``hidden_sparsity`` applies to every prunable layer but the last
    (output) one, which gets ``output_sparsity``; ``bits`` is one width or a dict per layer;
    epochs may be fractional; ``points`` is the number of evaluations and snapshots per stage."""

    hidden_sparsity: float = HAN_HIDDEN_SPARSITY
    output_sparsity: float = HAN_OUTPUT_SPARSITY
    prune_rounds: int = 4
    round_epochs: float = 1.0
    retrain_epochs: float = 4.0
    prune_lr: float = 0.005
    bits: int | Mapping[str, int] = 6
    init: str = "linear"
    finetune_epochs: float = 3.0
    finetune_lr: float = 1e-4  # centroid gradients are sums over whole clusters (eq. 3): a small rate
    batch_size: int = 128
    seed: int = 0
    points: int = 20
    extra: dict = field(default_factory=dict)  # further TrainConfig fields for both stages (device...)

    def validate(self) -> "DeepCompressionOptions":
        for name in ("hidden_sparsity", "output_sparsity"):
            check_sparsity(getattr(self, name), name)
        for width in (self.bits.values() if isinstance(self.bits, Mapping) else [self.bits]):
            check_bits(width)
        INITS.get(self.init)
        for name in ("prune_rounds", "batch_size", "points"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive whole number, got {value!r}")
        for name in ("round_epochs", "retrain_epochs", "finetune_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise ValueError(f"{name} must be a number of epochs >= 0, got {value!r}")
        for name in ("prune_lr", "finetune_lr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ValueError(f"{name} must be a positive learning rate, got {value!r}")
        return self

    def targets(self, layers: list[str]) -> dict[str, float]:
        """Final sparsity per layer: the output layer (the last) gets its own."""
        last = len(layers) - 1
        return {n: float(self.output_sparsity if i == last else self.hidden_sparsity) for i, n in enumerate(layers)}

    def bits_of(self, layers: list[str]) -> int | dict[str, int]:
        """The k-means hook's ``bits``: one width, or a width for every layer."""
        if not isinstance(self.bits, Mapping):
            return int(self.bits)
        missing = [n for n in layers if n not in self.bits]
        unknown = [n for n in self.bits if n not in layers]
        if missing or unknown:
            raise ValueError(f"bits per layer must name exactly the layers {layers}: missing {missing}, unknown {unknown}")
        return {n: int(self.bits[n]) for n in layers}

    def bits_label(self) -> str:
        widths = sorted(set(self.bits.values())) if isinstance(self.bits, Mapping) else [self.bits]
        return "/".join(str(b) for b in widths) + "-bit"


# Per-dataset settings: the paper's (and bench's) on MNIST; on the 1,437 digits training images an
# epoch is 12 steps, so retraining needs more epochs (the whole run takes seconds). On MNIST fc1's clusters
# hold up to ~1000 weights whose summed gradients (eq. 3) make 1e-4 overfit: 1.66% -> 1.74% test error.
PRESETS: dict[str, dict] = {
    "digits": {"round_epochs": 8.0, "retrain_epochs": 16.0, "finetune_epochs": 8.0, "prune_lr": 0.01},
    "mnist": {"finetune_lr": 1e-5},  # 1e-4 overfit the centroids of LeNet-300-100 (bench/deep_compression.py)
    "fashion-mnist": {},
}


def preset(dataset: str, **overrides) -> DeepCompressionOptions:
    """The default options for a dataset (``PRESETS``), with ``overrides``."""
    return DeepCompressionOptions(**{**PRESETS.get(dataset, {}), **overrides}).validate()


def compressed_layers(baseline_run: str | os.PathLike) -> list[str]:
    """The prunable (Linear and Conv2d) layers of a finished run's model, in forward order."""
    return [layer_name(n) for n in prunable_weights(load_trained_model(baseline_run, require_finished=True))]


def _steps(base: TrainConfig, epochs: float, batch_size: int) -> int:
    return int(math.ceil(epochs * steps_per_epoch(base, batch_size)))


def _stage_config(base: TrainConfig, init_from: str | os.PathLike, steps: int, options: DeepCompressionOptions,
                  runs_root: str, **fields) -> TrainConfig:
    """A cross-entropy run of exactly ``steps`` steps from ``init_from``'s weights."""
    per_epoch = steps_per_epoch(base, options.batch_size)
    every = max(1, steps // options.points)
    config = TrainConfig(
        dataset=base.dataset, data_root=base.data_root, model=base.model, model_options=dict(base.model_options),
        method="ce", init_from=os.fspath(init_from), optimizer="sgd", momentum=0.9, lr_schedule="cosine",
        batch_size=options.batch_size, epochs=-(-steps // per_epoch), max_steps=steps, seed=options.seed,
        eval_every=every, snapshot_every=every, runs_root=runs_root, **fields)
    return replace(config, **options.extra).validate() if options.extra else config.validate()


def prune_config(baseline_run: str | os.PathLike, options: DeepCompressionOptions, layers: list[str],
                 runs_root: str) -> TrainConfig:
    """Stage 1: the baseline fine-tuned under the ``prune`` hook's AGP schedule to the targets."""
    base = read_config(baseline_run)
    round_steps = _steps(base, options.round_epochs, options.batch_size)
    retrain = _steps(base, options.retrain_epochs, options.batch_size)
    total = options.prune_rounds * round_steps + retrain
    if total < 1:
        raise ValueError("the pruning stage has no training step: give round_epochs or retrain_epochs above 0")
    hook = {"name": PRUNE.name, "sparsity": options.targets(layers), "scope": "layer"}
    if round_steps:
        hook.update(schedule="agp", start_step=0, end_step=options.prune_rounds * round_steps, frequency=round_steps)
    else:  # no retraining between rounds: one cut to the targets at the start
        hook.update(schedule="one-shot", start_step=0)
    return _stage_config(base, baseline_run, total, options, runs_root, lr=options.prune_lr, weight_decay=1e-4,
                         hooks=[hook], name=f"dc-pruned-{base.model}-{base.dataset}")


def quantize_config(prune_run: str | os.PathLike, options: DeepCompressionOptions, layers: list[str],
                    runs_root: str) -> TrainConfig:
    """Stage 2: k-means weight sharing of the pruned weights (zeros excluded), centroids fine-tuned."""
    base = read_config(prune_run)
    steps = _steps(base, options.finetune_epochs, options.batch_size)
    if steps < 1:
        raise ValueError("the k-means stage needs at least one fine-tuning step: give finetune_epochs above 0")
    hook = {"name": KMEANS.name, "bits": options.bits_of(layers), "init": options.init, "seed": options.seed,
            "layers": list(layers)}
    return _stage_config(base, prune_run, steps, options, runs_root, lr=options.finetune_lr, weight_decay=0.0,
                         hooks=[hook], name=f"dc-{options.bits_label()}-{base.model}-{base.dataset}")


def deep_compression_experiment(baseline_run: str | os.PathLike, options: DeepCompressionOptions | None = None,
                                manager: JobManager | None = None, runs_root: str | os.PathLike | None = None,
                                advance: bool = True) -> Experiment:
    """Start the prune stage from ``baseline_run`` (a finished run folder) now, in ``manager``;
    the quantize stage starts from its weights once it has finished. Every config is built and
    checked here, so bad options fail before any run folder is written.

    ``runs_root``: where the stages' folders go (default: beside the baseline's). ``advance``: a
    daemon thread waits on the stages so the second starts even when no UI calls ``poll()``;
    ``stop()`` stops the running stage and cancels the next."""
    options = (options or DeepCompressionOptions()).validate()
    if not (os.path.isdir(baseline_run) and os.path.isfile(os.path.join(baseline_run, "config.json"))):
        raise ValueError(f"baseline {os.fspath(baseline_run)!r} is not a run folder (no config.json)")
    root = os.fspath(runs_root) if runs_root is not None else os.path.dirname(os.path.abspath(baseline_run))
    layers = compressed_layers(baseline_run)
    options.bits_of(layers)
    first = prune_config(baseline_run, options, layers, root)
    quantize_config(baseline_run, options, layers, root)  # checked now; rebuilt from the prune run later
    exp = Experiment(manager, title=TITLE)
    exp.start(PRUNE_STAGE, first)
    exp.then(QUANTIZE_STAGE, PRUNE_STAGE, lambda jobs: quantize_config(jobs[PRUNE_STAGE].path, options, layers, root))
    if advance:
        threading.Thread(target=exp.wait, name="kdviz-deep-compression-stages", daemon=True).start()
    return exp


DEEP_COMPRESSION = register_method(MethodSpec(
    name="deep_compression", label="Deep Compression", colour=ROLE_COLORS["quantized"],
    summary="prune -> k-means weight sharing -> Huffman coding (Han et al. 2016, fig. 1)",
    pages=(PageSpec("deep_compression", "Deep Compression", ":material/compress:", order=50, section="Compression"),),
    widgets={"DeepCompressionMonitor": "deep_compression"},
))
