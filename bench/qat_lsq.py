"""Float vs post-training quantization vs QAT vs LSQ on LeNet-5, at 8/4/3/2 bits, over seeds (issue 17).

Per seed: a float LeNet-5 is trained through the engine; PTQ quantizes it at each bit width (weights per
channel from min/max, activations from 256 training images, nothing trained); QAT (Jacob et al. 2018)
and LSQ (Esser et al. 2020) fine-tune it at each bit width from its checkpoint (``init_from``), with
weights and activations fake-quantized, first and last layers at 8 bits (both papers' practice; ``--all-bits``
quantizes them too). Prints test accuracy per approach and bits (mean, min-max over seeds) and the
issue's targets: QAT at 4 bits within 0.5 points of float; LSQ at 2-3 bits above PTQ at the same bits.

    python bench/qat_lsq.py --data-root ../shared/data/mnist            # MNIST, 3 seeds
    python bench/qat_lsq.py --quick                                     # digits, 1 seed, seconds
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import DEFAULT_MNIST, machine_note, set_threads  # noqa: E402  (sets OMP before torch)

import copy  # noqa: E402
import math  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from kdviz.data import load_dataset  # noqa: E402
from kdviz.models import build_model  # noqa: E402
from kdviz.quant.qat_model import attach_quantizers, post_training_quantize  # noqa: E402
from kdviz.engine import TrainConfig, load_trained_model, start  # noqa: E402
from kdviz.present.qat_story import (  # noqa: E402
    CALIBRATION_IMAGES, float_accuracy, ptq_accuracies, qat_fine_tune_config,
)


def _finished(config: TrainConfig):
    job = start(config)
    status = job.wait(None)
    if status.state != "finished":
        raise SystemExit(f"run {config.name} ended {status.state}: {status.message}")
    return job


def one_seed(args, seed: int, root: str, bundle) -> dict[str, dict[int, float]]:
    base = TrainConfig(dataset=args.dataset, data_root=args.data_root, model="lenet5", epochs=args.float_epochs,
                       lr=0.05, lr_schedule="cosine", seed=seed, runs_root=root, name=f"float-s{seed}",
                       eval_every=0, snapshot_every=0, train_subset=args.train_subset, eval_train_samples=1000)
    job = _finished(base.validate())
    model = load_trained_model(job.path).eval()
    first_last = None if args.all_bits else 8
    out = {"float": {32: float_accuracy(model, bundle)},
           "PTQ": ptq_accuracies(model, bundle, args.bits, first_last_bits=first_last)}
    for kind, label in (("qat", "QAT"), ("lsq", "LSQ")):
        out[label] = {}
        for b in args.bits:
            config = qat_fine_tune_config(job.path, kind, b, epochs=args.qat_epochs, lr=args.lr, first_last_bits=first_last,
                                          seed=seed, name=f"{kind}{b}-s{seed}", evals=2, snapshots=2,
                                          train_subset=args.train_subset, eval_train_samples=1000,
                                          max_steps=args.qat_steps)
            out[label][b] = float(_finished(config).status().test_acc)
        print(f"  seed {seed}: {label} done ({time.strftime('%H:%M:%S')})", flush=True)
    return out


def _plain_train(model, params, x, y, steps: int, lr: float, seed: int, batch: int = 64) -> None:
    """SGD (momentum 0.9) with a cosine learning rate over ``steps`` random batches: no engine, no evaluations."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9)
    model.train()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        idx = torch.randint(0, len(y), (batch,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    model.eval()


def _test_accuracy(model, x, y) -> float:
    with torch.no_grad():
        return sum(int((model(x[i:i + 500]).argmax(1) == y[i:i + 500]).sum()) for i in range(0, len(y), 500)) / len(y)


def plain_seed(args, seed: int, bundle) -> dict[str, dict[int, float]]:
    """The same comparison without the engine (a plain loop, one evaluation per model on the first
    ``--test-subset`` test images): the quantizers are the hooks' own (``attach_quantizers``)."""
    x, y = torch.as_tensor(bundle.train_images), torch.as_tensor(bundle.train_labels)
    xt, yt = torch.as_tensor(bundle.test_images[:args.test_subset]), torch.as_tensor(bundle.test_labels[:args.test_subset])
    calib = x[:CALIBRATION_IMAGES]
    torch.manual_seed(seed)
    model = build_model("lenet5", input_shape=tuple(x.shape[1:]), num_classes=10)
    _plain_train(model, list(model.parameters()), x, y, args.float_steps, 0.05, seed)
    first_last = None if args.all_bits else 8
    out = {"float": {32: _test_accuracy(model, xt, yt)}, "PTQ": {}, "QAT": {}, "LSQ": {}}
    for b in args.bits:
        out["PTQ"][b] = _test_accuracy(post_training_quantize(model, calib, b, first_last)[0], xt, yt)
        for kind, label in (("minmax", "QAT"), ("lsq", "LSQ")):
            tuned = copy.deepcopy(model)
            per_channel = kind == "minmax" or args.lsq_per_channel
            quantized = attach_quantizers(tuned, kind, b, calib, first_last, per_channel=per_channel)
            _plain_train(tuned, list(tuned.parameters()) + quantized.step_parameters(), x, y, args.qat_steps or 100,
                         args.lr, seed + 1000 * b)
            out[label][b] = _test_accuracy(tuned, xt, yt)
        print(f"  seed {seed}: {b} bits done ({time.strftime('%H:%M:%S')}): " +
              ", ".join(f"{k} {100 * out[k][b]:.2f}%" for k in ("PTQ", "QAT", "LSQ")), flush=True)
    return out


def summarise(per_seed: list[dict], bits: list[int]) -> dict:
    def stats(values):
        return {"mean": statistics.fmean(values), "min": min(values), "max": max(values), "values": values}

    table = {"float": stats([r["float"][32] for r in per_seed])}
    for label in ("PTQ", "QAT", "LSQ"):
        table[label] = {b: stats([r[label][b] for r in per_seed]) for b in bits}
    return table


def report(table: dict, bits: list[int]) -> list[str]:
    f = table["float"]["mean"]
    lines = [f"float: {100 * f:.2f}% [{100 * table['float']['min']:.2f}-{100 * table['float']['max']:.2f}]"]
    for label in ("PTQ", "QAT", "LSQ"):
        cells = [f"{b} bits {100 * table[label][b]['mean']:.2f}% [{100 * table[label][b]['min']:.2f}-"
                 f"{100 * table[label][b]['max']:.2f}]" for b in bits]
        lines.append(f"{label}: " + "; ".join(cells))
    if 4 in bits:
        gap = 100 * (f - table["QAT"][4]["mean"])
        lines.append(f"target QAT 4 bits within 0.5 points of float: {gap:+.2f} points below -> "
                     f"{'met' if gap <= 0.5 else 'MISSED'}")
    for b in (3, 2):
        if b in bits:
            edge = 100 * (table["LSQ"][b]["mean"] - table["PTQ"][b]["mean"])
            lines.append(f"target LSQ above PTQ at {b} bits: {edge:+.2f} points -> {'met' if edge > 0 else 'MISSED'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="digits, 1 seed, short runs (seconds)")
    p.add_argument("--data-root", default=str(DEFAULT_MNIST))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--bits", type=int, nargs="+", default=[8, 4, 3, 2])
    p.add_argument("--float-epochs", type=int, default=4)
    p.add_argument("--qat-epochs", type=int, default=1)
    p.add_argument("--qat-steps", type=int, default=None, help="stop each fine-tune after this many steps")
    p.add_argument("--lr", type=float, default=0.01, help="fine-tuning learning rate (SGD, cosine)")
    p.add_argument("--train-subset", type=int, default=None)
    p.add_argument("--all-bits", action="store_true", help="quantize the first and last layers at the same bits")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--plain", action="store_true", help="a plain training loop instead of engine runs (faster: "
                   "no evaluations while training; the same quantizers)")
    p.add_argument("--lsq-per-channel", action="store_true", help="LSQ learns one step per output channel "
                   "(QAT and PTQ scale per channel; the LSQ paper uses one step per tensor)")
    p.add_argument("--float-steps", type=int, default=1000, help="--plain: steps of the float model")
    p.add_argument("--test-subset", type=int, default=10000, help="--plain: evaluate on this many test images")
    p.add_argument("--json", default=None, help="write the table here")
    args = p.parse_args(argv)
    args.dataset = "mnist"
    if args.quick:
        args.dataset, args.data_root, args.seeds = "digits", None, args.seeds[:1]
        args.bits, args.float_epochs, args.qat_epochs = [4, 2], 12, 2
    set_threads(args.threads)
    bundle = load_dataset(args.dataset, root=args.data_root)
    print(f"QAT / LSQ bench on {args.dataset}, LeNet-5, seeds {args.seeds}, bits {args.bits}, {time.strftime('%Y-%m-%d')}; "
          f"{machine_note()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="kdviz-qat-bench-") as root:
        per_seed = [plain_seed(args, s, bundle) if args.plain else one_seed(args, s, root, bundle) for s in args.seeds]
    table = summarise(per_seed, args.bits)
    for line in report(table, args.bits):
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
