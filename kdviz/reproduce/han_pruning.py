"""Han, Pool, Tran, Dally 2015, "Learning both Weights and Connections for Efficient Neural
Networks" (NeurIPS 2015), tables 1 and 2: LeNet-300-100 on MNIST goes from 1.64 % to 1.59 % test
error while keeping 8 % of its weights (fc1 8 %, fc2 9 %, fc3 26 %).

Per seed, through the engine: a dense LeNet-300-100 baseline (SGD with momentum, cosine learning
rate, weight decay; reused from the runs root when one with the same settings exists), then a
fine-tune that starts from it (``init_from``) with the ``prune`` hook: magnitude pruning per layer to
Han's sparsities (fc1 92 %, fc2 91 %, fc3 74 %) on Zhu & Gupta's cubic ramp (2017, eq. 1) over the
first 60 % of the fine-tune, a pruning step every two epochs (Han's iterative prune-retrain rounds,
section 3.3), then retraining with the masks held, at a tenth of the baseline's learning rate.
Rows: baseline and pruned test error (%), and the weights kept (%, counted on the saved model).

Quick mode: a 2-epoch baseline and a 3-epoch prune-and-retrain (pruning every half epoch); the error
is higher than the paper's, the weights kept are Han's.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..engine import TrainConfig, load_trained_model
from ..methods.prune import prune_hook
from ..prune.masks import prunable_weights
from .base import PaperNumber, PlannedRun, Reproduction, final_test_accuracy, register

BASELINE_ROW, PRUNED_ROW, KEPT_ROW = "baseline error", "pruned error", "weights kept"
PAPER = (
    PaperNumber(BASELINE_ROW, 1.64, "% test error", "LeNet-300-100, dense"),
    PaperNumber(PRUNED_ROW, 1.59, "% test error", "pruned and retrained"),
    PaperNumber(KEPT_ROW, 8, "% of weights", "fc1 8 %, fc2 9 %, fc3 26 % (12x fewer)"),
)
SPARSITY = {"fc1": 0.92, "fc2": 0.91, "fc3": 0.74}  # 1 - Han's kept fractions (table 2)
BASELINE = dict(model="lenet300", epochs=30, lr=0.05, momentum=0.9, weight_decay=1e-4, lr_schedule="cosine", batch_size=128)
PRUNE_EPOCHS, PRUNE_EVERY_EPOCHS, RAMP_SHARE = 20, 2.0, 0.6  # 6 pruning steps over 12 epochs, then 8 epochs of retraining
QUICK_BASELINE_EPOCHS, QUICK_PRUNE_EPOCHS, QUICK_PRUNE_EVERY_EPOCHS = 2, 3, 0.5
RETRAIN_LR_SHARE = 0.1  # Han et al. retrain at a lower learning rate; the bench uses a tenth
MNIST_TRAIN = 60_000


def baseline_config(seed: int, quick: bool) -> TrainConfig:
    epochs = QUICK_BASELINE_EPOCHS if quick else BASELINE["epochs"]
    return TrainConfig(dataset="mnist", seed=seed, name=f"han-baseline-s{seed}", snapshot_every=0,
                       **dict(BASELINE, epochs=epochs))


def pruned_config(seed: int, quick: bool) -> TrainConfig:
    """The prune-and-retrain fine-tune (``init_from`` is filled in once the baseline has finished)."""
    epochs = QUICK_PRUNE_EPOCHS if quick else PRUNE_EPOCHS
    every = QUICK_PRUNE_EVERY_EPOCHS if quick else PRUNE_EVERY_EPOCHS
    steps_per_epoch = -(-MNIST_TRAIN // BASELINE["batch_size"])
    end_step = int(RAMP_SHARE * epochs * steps_per_epoch)
    hook = prune_hook(dict(SPARSITY), "layer", "agp", start_step=0, end_step=end_step,
                      frequency=max(1, int(every * steps_per_epoch)))
    options = dict(BASELINE, epochs=epochs, lr=BASELINE["lr"] * RETRAIN_LR_SHARE)
    return TrainConfig(dataset="mnist", seed=seed, name=f"han-pruned-s{seed}", snapshot_every=0, hooks=[hook],
                       init_from="", **options)


def plan_runs(seeds: Sequence[int], quick: bool = False) -> list[PlannedRun]:
    """Per seed a dense baseline (reused) and a pruned fine-tune from it (two rows: error and kept)."""
    runs = []
    for seed in seeds:
        runs.append(PlannedRun(f"baseline/seed{seed}", BASELINE_ROW, seed, baseline_config(seed, quick), reuse=True))
        runs.append(PlannedRun(f"pruned/seed{seed}", PRUNED_ROW, seed, pruned_config(seed, quick),
                               after=f"baseline/seed{seed}", link="init_from", extra_rows=(KEPT_ROW,)))
    return runs


def weights_kept_percent(path: Path) -> float:
    """100 * non-zero / all prunable weights of the run's saved model (Linear and Conv2d weights)."""
    weights = prunable_weights(load_trained_model(path))
    total = sum(w.numel() for w in weights.values())
    return 100.0 * sum(int((w != 0).sum()) for w in weights.values()) / total


def value_of(path: Path, row: str) -> float:
    """Test error in % for the error rows; weights kept in % for ``KEPT_ROW``."""
    if row == KEPT_ROW:
        return weights_kept_percent(path)
    return 100.0 * (1.0 - final_test_accuracy(path))


def describe_settings(quick: bool) -> str:
    base = QUICK_BASELINE_EPOCHS if quick else BASELINE["epochs"]
    prune = QUICK_PRUNE_EPOCHS if quick else PRUNE_EPOCHS
    return (f"{'quick' if quick else 'full'}: LeNet-300-100 baseline {base} epochs (SGD, lr {BASELINE['lr']:g}, cosine); "
            f"prune to fc1 92 %, fc2 91 %, fc3 74 % on the AGP ramp and retrain, {prune} epochs at lr "
            f"{BASELINE['lr'] * RETRAIN_LR_SHARE:g}")


HAN_PRUNING = register(Reproduction(
    name="han-pruning",
    title="Pruning LeNet-300-100: error before and after, weights kept",
    citation='Han, Pool, Tran, Dally 2015, "Learning both Weights and Connections for Efficient Neural Networks", '
             "tables 1-2",
    dataset="mnist",
    paper=PAPER,
    plan_runs=lambda seeds, quick: plan_runs(seeds, quick),
    value_of=value_of,
    settings=describe_settings,
))
