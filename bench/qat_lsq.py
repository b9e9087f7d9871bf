"""Float vs post-training quantization vs QAT vs LSQ on LeNet-5 20-50-500, at 8/4/3/2 bits, over seeds (issue 17).

Per seed a float LeNet-5 is trained; PTQ quantizes it at each bit width (weights from min/max, activations
from 256 training images, nothing trained); QAT (Jacob et al. 2018) and LSQ (Esser et al. 2020) fine-tune
it at each bit width with the same steps and learning rate, weights and activations fake-quantized, first
and last layers at 8 bits (both papers' practice; ``--all-bits`` quantizes them too). Comparisons are at
matching granularity (``--granularity``: PTQ, QAT and LSQ all per tensor, or all per channel); LSQ runs from
each initial step of ``--lsq-init`` (``paper`` 2<|v|>/sqrt(Q_P); ``minmax``: PTQ's own scale, so LSQ starts
at the PTQ model; ``mse``: the least-error step, LSQ+). Each LSQ row also reports its accuracy before any
update ("start"): for ``minmax`` that is PTQ itself, for ``mse`` a PTQ with MSE-optimal steps.

Two loops, the same quantizers (``attach_quantizers``, the hooks' own):
* engine (default): every run through ``kdviz.engine`` with the real ``qat`` / ``lsq`` hooks (``TrainConfig``,
  ``init_from`` the float run), full epochs, scored on the whole test set;
* ``--plain``: a plain SGD loop of ``--float-steps`` / ``--qat-steps`` steps, one evaluation per model.
``--validation N`` (plain) holds out the last N training images and scores on them: use it to choose the
fine-tuning length and learning rate without looking at the test set.

    python bench/qat_lsq.py --plain --qat-steps 600 --lr 0.01      # MNIST, 3 seeds, minutes
    python bench/qat_lsq.py                                         # engine path, full epochs
    python bench/qat_lsq.py --quick                                 # digits, 1 seed, seconds
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
from kdviz.engine import TrainConfig, load_trained_model, start  # noqa: E402
from kdviz.methods.qat import qat_hook  # noqa: E402
from kdviz.models import build_model  # noqa: E402
from kdviz.present import as_run_view  # noqa: E402
from kdviz.present.compression_configs import fine_tune_config  # noqa: E402
from kdviz.quant.lsq import LSQ_INITS  # noqa: E402
from kdviz.quant.qat_model import attach_quantizers, post_training_quantize  # noqa: E402

CALIBRATION_IMAGES = 256
GRANULARITIES = ("tensor", "channel")


def labels(args) -> list[tuple[str, str, str, str]]:
    """(label, approach, granularity, LSQ init) of every row; plain "PTQ" / "QAT" / "LSQ" when only one
    granularity and one init are asked for."""
    many_g, many_i = len(args.granularity) > 1, len(args.lsq_init) > 1
    rows = []
    for g in args.granularity:
        suffix = f"/{g}" if many_g else ""
        rows += [(f"PTQ{suffix}", "PTQ", g, ""), (f"QAT{suffix}", "QAT", g, "")]
        rows += [(f"LSQ{'-' + i if many_i else ''}{suffix}", "LSQ", g, i) for i in args.lsq_init]
    return rows


def _accuracy(model, x, y) -> float:
    model.eval()
    with torch.no_grad():
        return sum(int((model(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum()) for i in range(0, len(y), 1000)) / len(y)


def _finished(config: TrainConfig):
    job = start(config)
    status = job.wait(None)
    if status.state != "finished":
        raise SystemExit(f"run {config.name} ended {status.state}: {status.message}")
    return job


def _hook(approach: str, bits: int, granularity: str, init: str, first_last) -> dict:
    options = {"first_last_bits": first_last, "per_channel": granularity == "channel", "calibration": CALIBRATION_IMAGES}
    if approach == "LSQ":
        return qat_hook("lsq", bits, init=init, **options)
    return qat_hook("qat", bits, **options)


def engine_seed(args, seed: int, root: str, bundle) -> dict:
    """Float, then every fine-tune as an engine run with the real hook (``init_from`` the float run)."""
    base = TrainConfig(dataset=args.dataset, data_root=args.data_root, model="lenet5", epochs=args.float_epochs,
                       lr=0.05, lr_schedule="cosine", seed=seed, runs_root=root, name=f"float-s{seed}",
                       eval_every=0, snapshot_every=0, train_subset=args.train_subset, eval_train_samples=1000)
    job = _finished(base.validate())
    model = load_trained_model(job.path).eval()
    x, y = torch.as_tensor(bundle.test_images, dtype=torch.float32), torch.as_tensor(bundle.test_labels)
    calib = torch.as_tensor(bundle.train_images[:CALIBRATION_IMAGES], dtype=torch.float32)
    first_last = None if args.all_bits else 8
    out: dict = {"float": {32: _accuracy(model, x, y)}}
    for label, approach, g, init in labels(args):
        out[label], out[label + " start"] = {}, {}
        for b in args.bits:
            if approach == "PTQ":
                out[label][b] = _accuracy(post_training_quantize(model, calib, b, first_last, g == "channel")[0], x, y)
                continue
            config = fine_tune_config(job.path, _hook(approach, b, g, init, first_last), args.qat_epochs, args.lr,
                                      evals=2, snapshots=2, name=f"{label.replace('/', '-')}-{b}-s{seed}",
                                      lr_schedule="cosine", seed=seed, train_subset=args.train_subset,
                                      eval_train_samples=1000, max_steps=args.qat_steps)
            run = as_run_view(_finished(config).path)
            run.refresh()
            out[label][b], out[label + " start"][b] = float(run.evals[-1]["test_acc"]), float(run.evals[0]["test_acc"])
        print(f"  seed {seed}: {label} done ({time.strftime('%H:%M:%S')})", flush=True)
    return _drop_empty(out)


def _drop_empty(out: dict) -> dict:
    return {k: v for k, v in out.items() if v}


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


def _plain_data(args, bundle):
    x, y = torch.as_tensor(bundle.train_images), torch.as_tensor(bundle.train_labels)
    if args.validation:
        return x[:-args.validation], y[:-args.validation], x[-args.validation:], y[-args.validation:]
    return x, y, torch.as_tensor(bundle.test_images[:args.test_subset]), torch.as_tensor(bundle.test_labels[:args.test_subset])


def plain_seed(args, seed: int, bundle) -> dict:
    """The same comparison in a plain loop (one evaluation per model); the quantizers are the hooks' own.
    Every fine-tune of one bit width sees the same batches (seed + 1000 * bits)."""
    x, y, xt, yt = _plain_data(args, bundle)
    calib = x[:CALIBRATION_IMAGES]
    torch.manual_seed(seed)
    model = build_model("lenet5", input_shape=tuple(x.shape[1:]), num_classes=10)
    _plain_train(model, list(model.parameters()), x, y, args.float_steps, 0.05, seed)
    first_last = None if args.all_bits else 8
    out: dict = {"float": {32: _accuracy(model, xt, yt)}}
    if args.float_tuned:  # how much of a fine-tune's gain is just more training, quantization aside
        tuned = copy.deepcopy(model)
        _plain_train(tuned, list(tuned.parameters()), x, y, args.qat_steps or 300, args.lr, seed + 999)
        out["float fine-tuned"] = {32: _accuracy(tuned, xt, yt)}
    for b in args.bits:
        for label, approach, g, init in labels(args):
            if approach == "PTQ":
                out.setdefault(label, {})[b] = _accuracy(post_training_quantize(model, calib, b, first_last, g == "channel")[0], xt, yt)
                continue
            tuned = copy.deepcopy(model)
            kind = "lsq" if approach == "LSQ" else "minmax"
            quantized = attach_quantizers(tuned, kind, b, calib, first_last, per_channel=g == "channel",
                                          lsq_init=init or "paper")
            out.setdefault(label + " start", {})[b] = _accuracy(tuned, xt, yt)
            _plain_train(tuned, list(tuned.parameters()) + quantized.step_parameters(), x, y, args.qat_steps or 300,
                         args.lr, seed + 1000 * b)
            out.setdefault(label, {})[b] = _accuracy(tuned, xt, yt)
        print(f"  seed {seed}: {b} bits done ({time.strftime('%H:%M:%S')}): " +
              ", ".join(f"{k} {100 * out[k][b]:.2f}%" for k, *_ in labels(args)), flush=True)
    return out


def summarise(per_seed: list[dict], bits: list[int]) -> dict:
    def stats(values):
        return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "min": min(values), "max": max(values), "values": values}

    table = {k: stats([r[k][32] for r in per_seed]) for k in ("float", "float fine-tuned") if k in per_seed[0]}
    for label in per_seed[0]:
        if label not in table:
            table[label] = {b: stats([r[label][b] for r in per_seed]) for b in bits if b in per_seed[0][label]}
    return table


def _cell(s: dict) -> str:
    return f"{100 * s['mean']:.2f}% [{100 * s['min']:.2f}-{100 * s['max']:.2f}]"


def _paired(table: dict, top: str, bottom: str, b: int) -> tuple[float, float, list[float]]:
    """Mean and std over seeds of the per-seed difference top - bottom (points), and every seed's difference."""
    diffs = [100 * (t - u) for t, u in zip(table[top][b]["values"], table[bottom][b]["values"])]
    return statistics.fmean(diffs), (statistics.stdev(diffs) if len(diffs) > 1 else 0.0), diffs


def report(table: dict, bits: list[int], rows: list[tuple[str, str, str, str]]) -> list[str]:
    f = table["float"]["mean"]
    lines = [f"{k}: {_cell(table[k])}" for k in ("float", "float fine-tuned") if k in table]
    for label in [k for k in table if not k.startswith("float")]:
        lines.append(f"{label}: " + "; ".join(f"{b} bits {_cell(table[label][b])}" for b in bits if b in table[label]))
    qat4 = next((lab for lab, a, g, _ in rows if a == "QAT" and g == "channel"), None) or \
        next((lab for lab, a, *_ in rows if a == "QAT"), None)
    if 4 in bits and qat4:
        gap = 100 * (f - table[qat4][4]["mean"])
        lines.append(f"target QAT 4 bits within 0.5 points of float: {gap:+.2f} points below -> "
                     f"{'met' if gap <= 0.5 else 'MISSED'}")
    for b in (3, 2):
        if b not in bits:
            continue
        for label, approach, g, _ in rows:
            if approach != "LSQ":
                continue
            ptq = next(lab for lab, a, gg, _ in rows if a == "PTQ" and gg == g)
            mean, std, diffs = _paired(table, label, ptq, b)
            name = "LSQ" if label == "LSQ" else f"{label} (vs {ptq})"
            lines.append(f"target {name} above PTQ at {b} bits: {mean:+.2f} points -> {'met' if mean > 0 else 'MISSED'}"
                         f" (paired over seeds: {mean:+.2f} ± {std:.2f}; per seed " + ", ".join(f"{d:+.2f}" for d in diffs) + ")")
    return lines


def parse(argv: list[str] | None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="digits, 1 seed, short engine runs (seconds)")
    p.add_argument("--dataset", choices=("mnist", "digits"), default="mnist", help="digits: a check in seconds")
    p.add_argument("--data-root", default=str(DEFAULT_MNIST))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--bits", type=int, nargs="+", default=[4, 3, 2])
    p.add_argument("--granularity", nargs="+", choices=GRANULARITIES, default=list(GRANULARITIES),
                   help="weight scales per tensor and/or per channel (PTQ, QAT and LSQ alike)")
    p.add_argument("--lsq-init", nargs="+", choices=LSQ_INITS, default=list(LSQ_INITS), help="LSQ's initial steps")
    p.add_argument("--float-epochs", type=int, default=4, help="engine: epochs of the float model")
    p.add_argument("--qat-epochs", type=int, default=1, help="engine: fine-tuning epochs")
    p.add_argument("--qat-steps", type=int, default=None, help="stop each fine-tune after this many steps "
                   "(--plain: its length, default 300)")
    p.add_argument("--lr", type=float, default=0.01, help="fine-tuning learning rate (SGD, cosine), QAT and LSQ alike")
    p.add_argument("--train-subset", type=int, default=None)
    p.add_argument("--all-bits", action="store_true", help="quantize the first and last layers at the same bits")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--plain", action="store_true", help="a plain training loop instead of engine runs")
    p.add_argument("--float-steps", type=int, default=1000, help="--plain: steps of the float model")
    p.add_argument("--test-subset", type=int, default=10000, help="--plain: evaluate on this many test images")
    p.add_argument("--validation", type=int, default=0, help="--plain: hold out the last N training images and "
                   "score on them instead of the test set (for choosing steps and lr)")
    p.add_argument("--float-tuned", action="store_true", help="--plain: also fine-tune the float model unquantized, "
                   "the same steps and lr (the gain of more training alone)")
    p.add_argument("--json", default=None, help="write the table here")
    args = p.parse_args(argv)
    if args.dataset == "digits":
        args.data_root = None
    if args.quick:
        args.dataset, args.data_root, args.seeds, args.plain = "digits", None, args.seeds[:1], False
        args.bits, args.float_epochs, args.qat_epochs = [4, 2], 12, 2
        args.granularity, args.lsq_init = ["channel"], ["paper"]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    set_threads(args.threads)
    bundle = load_dataset(args.dataset, root=args.data_root)
    scored = f"validation (last {args.validation} training images)" if args.plain and args.validation else (
        f"the first {args.test_subset} test images" if args.plain and args.test_subset < len(bundle.test_labels)
        else f"the whole test set ({len(bundle.test_labels)} images)")
    print(f"QAT / LSQ bench on {args.dataset}, LeNet-5, seeds {args.seeds}, bits {args.bits}, "
          f"{'plain loop' if args.plain else 'engine'}, fine-tune lr {args.lr}, "
          f"{args.qat_steps or 300 if args.plain else args.qat_epochs} {'steps' if args.plain else 'epochs'}; "
          f"scored on {scored}; {time.strftime('%Y-%m-%d')}; {machine_note()}", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kdviz-qat-bench-") as root:
        per_seed = [plain_seed(args, s, bundle) if args.plain else engine_seed(args, s, root, bundle) for s in args.seeds]
    table = summarise(per_seed, args.bits)
    for line in report(table, args.bits, labels(args)):
        print(line)
    print(f"wall time {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({**table, "settings": {k: v for k, v in vars(args).items()}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
