"""ProjectionNet: accuracy against the number of bits and model size in bytes (Ravi 2017, arXiv:1708.00630).

For every bit budget T x d and every seed, one run of ``kdviz.methods.projection`` (through the engine,
one CPU thread per run): a projection net (T hash functions of d bits, P drawn from the run's seed,
then one hidden layer) trained jointly with its own trainer (an MLP 256-256) on eq. 1 with
lambda1 = lambda2 = lambda3 = 1. Beside it, unless ``--no-alone``, the same projection net trained on
the labels alone (lambda1 = lambda2 = 0, lambda3 = 1: no distillation), so the table says what the
trainer's soft predictions add. Sizes: the deployed projection net is its float32 weights plus the
8-byte seed of P (the hyperplanes are regenerated from it); the trainer is its float32 weights.

It prints a markdown table: bits, the projection net's final test accuracy (mean ± sample standard
deviation over seeds, and every seed's value), the label-only projection net's, the trainer's, both
sizes in bytes and their ratio; then the settings, the machine, the date and the wall time.

* ``--dataset digits`` (default; bundled) or ``mnist`` (the IDX files from ``--data-root``, else
  ``$KDVIZ_DATA``, else /work/shared/data/mnist);
* ``--budgets 1x8,4x8,16x8`` (T x d; default per dataset), ``--seeds 0,1,2``, ``--epochs N``;
* ``--quick``: digits, seed 0, budgets 1x8 and 4x8, 3 epochs, no label-only runs: a smoke run.

Usage: python bench/projection_net.py [--dataset digits|mnist] [--data-root DIR] [--budgets TxD,...]
                                      [--seeds 0,1,2] [--epochs N] [--no-alone] [--quick] [--runs-root DIR]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (thread policy before torch)

from kdviz.data import load_dataset  # noqa: E402
from kdviz.engine import JobManager, TrainConfig, start  # noqa: E402
from kdviz.engine.manager import available_cores  # noqa: E402
from kdviz.present.projection_story import model_sizes  # noqa: E402
from kdviz.methods.projection import projection_config  # noqa: E402

DEFAULT_BUDGETS = {"digits": "1x8,2x8,4x8,8x8,16x8", "mnist": "1x10,4x10,16x10,60x10"}
DEFAULT_EPOCHS = {"digits": 30, "mnist": 5}
QUICK = {"budgets": "1x8,4x8", "epochs": 3, "seeds": "0"}
HIDDEN = 128
TRAINER_HIDDEN = [256, 256]


def parse_budgets(text: str) -> list[tuple[int, int]]:
    """``"1x8,4x8"`` -> ``[(1, 8), (4, 8)]``; a clear ``SystemExit`` message otherwise."""
    try:
        budgets = [tuple(int(v) for v in part.lower().split("x")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SystemExit(f"--budgets must be T x d pairs like 1x8,4x8; got {text!r}") from None
    if not budgets or any(len(b) != 2 or min(b) < 1 for b in budgets):
        raise SystemExit(f"--budgets must be T x d pairs of whole numbers >= 1, like 1x8,4x8; got {text!r}")
    return [(b[0], b[1]) for b in budgets]


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SystemExit(f"--seeds must be comma-separated whole numbers, e.g. 0,1,2; got {text!r}") from None
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise SystemExit(f"--seeds must list distinct whole numbers >= 0; got {text!r}")
    return seeds


def data_root_for(dataset: str, raw: str | None) -> str | None:
    if dataset == "digits":
        return None
    root = Path(raw or os.environ.get("KDVIZ_DATA") or _common.DEFAULT_MNIST)
    if not root.is_dir():
        raise SystemExit(f"--data-root {str(root)!r} is not a folder; give the folder with MNIST's four IDX files")
    return str(root)


def run_configs(args, data_root: str | None, runs_root: str) -> dict[tuple, TrainConfig]:
    """``{(T, d, seed, variant): config}``; variant ``"joint"`` (eq. 1) or ``"alone"`` (labels only)."""
    variants = {"joint": (1.0, 1.0, 1.0)} if args.no_alone else {"joint": (1.0, 1.0, 1.0), "alone": (0.0, 0.0, 1.0)}
    out = {}
    for t, d in args.budgets:
        for seed in args.seeds:
            base = TrainConfig(dataset=args.dataset, data_root=data_root, epochs=args.epochs, seed=seed, lr=0.05,
                               eval_every=0, snapshot_every=0, eval_train_samples=1000, runs_root=runs_root,
                               name=f"pn-{t}x{d}-seed{seed}")
            for variant, (l1, l2, l3) in variants.items():
                config = projection_config(base, num_hashes=t, bits_per_hash=d, hidden=[HIDDEN], lambda1=l1,
                                           lambda2=l2, lambda3=l3, trainer_model_options={"hidden": TRAINER_HIDDEN})
                out[(t, d, seed, variant)] = TrainConfig.from_dict({**config.to_dict(),
                                                                    "name": f"{config.name}-{variant}"})
    return out


def train(configs: dict, manager: JobManager) -> dict[tuple, dict]:
    """Start every run, wait for all; ``{key: last evaluation record}``."""
    jobs = {key: start(config, manager) for key, config in configs.items()}
    out = {}
    for key, job in jobs.items():
        status = job.wait()
        if status.state != "finished":
            raise SystemExit(f"run {key} did not finish ({status.state}): {status.message}")
        out[key] = [r for r in job.store.metrics_since(0)[0] if r.get("kind") == "eval"][-1]
        print(f"  {key}: {out[key]['test_acc']:.2%}", flush=True)
    return out


def _cell(values: list[float]) -> str:
    pct = [100 * v for v in values]
    spread = f" ± {statistics.stdev(pct):.1f}" if len(pct) > 1 else ""
    return f"{statistics.mean(pct):.1f}{spread} ({', '.join(f'{v:.1f}' for v in pct)})"


def table_lines(args, configs: dict, last: dict, shape, classes: int) -> list[str]:
    lines = ["| bits (T x d) | projection net, eq. 1 (%) | projection net, labels only (%) | trainer (%) | "
             "projection net bytes | trainer bytes | trainer / projection |",
             "|---|---|---|---|---|---|---|"]
    for t, d in args.budgets:
        joint = [last[(t, d, s, "joint")] for s in args.seeds]
        alone = [last[(t, d, s, "alone")]["test_acc"] for s in args.seeds] if not args.no_alone else []
        sizes = model_sizes(configs[(t, d, args.seeds[0], "joint")], shape, classes)
        lines.append(f"| {t * d} ({t} x {d}) | {_cell([r['test_acc'] for r in joint])} | "
                     f"{_cell(alone) if alone else '-'} | {_cell([r['projection/trainer_test_acc'] for r in joint])} | "
                     f"{sizes.projection_bytes:,} | {sizes.trainer_bytes:,} | {sizes.ratio:.0f}x |")
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("digits", "mnist"), default="digits")
    parser.add_argument("--data-root", default=None, help="folder of MNIST's IDX files (implies --dataset mnist)")
    parser.add_argument("--runs-root", default=None, help="where run folders go (default: a new temporary folder)")
    parser.add_argument("--budgets", default=None, help="T x d pairs, comma-separated (default per dataset)")
    parser.add_argument("--seeds", default=None, help="seeds, comma-separated (default 0,1,2)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of every run (default per dataset)")
    parser.add_argument("--no-alone", action="store_true", help="skip the label-only projection nets")
    parser.add_argument("--parallel", type=int, default=None, help="runs at once, one thread each (default: the cores)")
    parser.add_argument("--quick", action="store_true", help="digits, seed 0, 1x8 and 4x8, 3 epochs: a smoke run")
    args = parser.parse_args(argv)
    if args.data_root and not args.quick:
        args.dataset = "mnist"
    if args.quick:
        args.dataset, args.no_alone = "digits", True
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be a positive whole number, got {args.epochs}")
    args.budgets = parse_budgets(args.budgets or (QUICK["budgets"] if args.quick else DEFAULT_BUDGETS[args.dataset]))
    args.seeds = parse_seeds(args.seeds or (QUICK["seeds"] if args.quick else "0,1,2"))
    args.epochs = args.epochs or (QUICK["epochs"] if args.quick else DEFAULT_EPOCHS[args.dataset])
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data_root = data_root_for(args.dataset, args.data_root)
    runs_root = args.runs_root or tempfile.mkdtemp(prefix="kdviz-projection-bench-")
    parallel = args.parallel or available_cores()
    manager = JobManager(max_concurrent=parallel, cpu_threads=1)  # one thread per run: the same numbers on a rerun
    t0 = time.perf_counter()
    bundle = load_dataset(args.dataset, root=data_root)
    configs = run_configs(args, data_root, runs_root)
    last = train(configs, manager)
    wall = time.perf_counter() - t0
    print(f"\n**ProjectionNet on {args.dataset}: accuracy against bits, seeds {', '.join(map(str, args.seeds))}**"
          f"{' (quick: a smoke run, not a measurement)' if args.quick else ''}\n")
    print("\n".join(table_lines(args, configs, last, bundle.input_shape, bundle.num_classes)))
    print(f"\nsettings: projection net = P (T x d bits) -> {HIDDEN} -> {bundle.num_classes}; trainer = MLP "
          f"{'-'.join(map(str, TRAINER_HIDDEN))}; SGD lr 0.05 momentum 0.9, batch 64, {args.epochs} epochs, "
          f"{len(bundle.train_labels):,} training images; eq. 1 with lambda1 = lambda2 = lambda3 = 1; sizes float32 "
          f"(+ 8 bytes of seed for P)")
    print(f"\nmachine: {_common.machine_note()}, {parallel} runs at once, one thread each; "
          f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; total wall time {wall / 60:.1f} min; "
          f"runs in {runs_root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
