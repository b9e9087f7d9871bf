"""Specialists (Hinton, Vinyals, Dean 2015, section 5): accuracy and size, a generalist alone against the
generalist combined with its specialists.

Per seed, one run of ``kdviz.present.specialists`` through the engine (one CPU thread per run): the
generalist (an MLP) trained on the training set less a class-balanced held-out slice; the covariance of
its predicted probabilities on the held-out images clustered by k-means on its columns (diagonal zeroed,
best of 10 seedings); one specialist per subset of 2 to ``--max-size`` classes (at most ``--count``),
initialised from the generalist, trained with the subset's images weighted to half and a dustbin class;
then section 5.3's combination on the test set (the generalist's top-1 class picks the specialists; q
minimises KL(p^g||q) + sum_m KL(p^m||q) by gradient descent). Sizes: float32 parameters; every
specialist is a full copy of the generalist's network (it keeps the K logits the dustbin sums).

It prints a markdown table per seed (the subsets, test accuracy alone and combined, on the covered
classes alone and combined, the share of test images with an active specialist, parameters and bytes)
and the mean ± sample standard deviation over seeds, then the settings, the machine, the date and the
wall time.

* ``--dataset digits`` (default; bundled) or ``mnist`` (IDX files from ``--data-root``, else
  ``$KDVIZ_DATA``, else /work/shared/data/mnist);
* ``--seeds 0,1,2``, ``--hidden 64``, ``--epochs N``, ``--specialist-epochs N``, ``--held-out N``,
  ``--clusters K``, ``--count M``, ``--max-size S``;
* ``--quick``: digits, seed 0, short runs: a smoke run of a few seconds.

Usage: python bench/specialists.py [--dataset digits|mnist] [--data-root DIR] [--seeds 0,1,2] [--quick] ...
"""
from __future__ import annotations

import argparse
import datetime
import os
import statistics
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (thread policy before torch)

from kdviz.engine import JobManager, TrainConfig  # noqa: E402
from kdviz.present.specialists import SpecialistsPlan, generalist_config, specialists_experiment  # noqa: E402

DEFAULTS = {"digits": dict(hidden=16, epochs=20, specialist_epochs=10, held_out=300, clusters=5, batch=32, lr=0.05,
                           specialist_lr=0.02),
            "mnist": dict(hidden=64, epochs=5, specialist_epochs=2, held_out=10000, clusters=4, batch=64, lr=0.05,
                          specialist_lr=0.02)}
QUICK = dict(epochs=6, specialist_epochs=2, seeds="0")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", choices=("digits", "mnist"), default="digits")
    ap.add_argument("--data-root")
    ap.add_argument("--seeds", default="0,1,2")
    for name in ("hidden", "epochs", "specialist-epochs", "held-out", "clusters"):
        ap.add_argument(f"--{name}", type=int)
    ap.add_argument("--count", type=int, default=3)
    ap.add_argument("--max-size", type=int, default=4)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs-root")
    args = ap.parse_args()
    if args.quick:
        args.dataset, args.seeds = "digits", QUICK["seeds"]
        args.epochs, args.specialist_epochs = args.epochs or QUICK["epochs"], args.specialist_epochs or QUICK["specialist_epochs"]
    for key, value in DEFAULTS[args.dataset].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    try:
        args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise SystemExit(f"--seeds must be comma-separated whole numbers, e.g. 0,1,2; got {args.seeds!r}") from None
    return args


def data_root_for(args) -> str | None:
    if args.dataset == "digits":
        return None
    root = Path(args.data_root or os.environ.get("KDVIZ_DATA") or _common.DEFAULT_MNIST)
    if not root.is_dir():
        raise SystemExit(f"--data-root {str(root)!r} is not a folder; give the folder with MNIST's four IDX files")
    return str(root)


def run_seed(args, seed: int, manager: JobManager, runs_root: str) -> dict:
    base = TrainConfig(dataset=args.dataset, data_root=data_root_for(args), model="mlp",
                       model_options={"hidden": [args.hidden]}, epochs=args.epochs, lr=args.lr, batch_size=args.batch,
                       seed=seed, snapshot_every=0, runs_root=runs_root, name="generalist")
    plan = SpecialistsPlan(generalist_config(base, args.held_out), clusters=args.clusters, count=args.count,
                           max_size=args.max_size, epochs=args.specialist_epochs, lr=args.specialist_lr)
    exp = specialists_experiment(plan, manager, f"bench seed {seed}")
    exp.wait(3600)
    result = exp.result()
    if result is None:
        reason = exp.error or "; ".join(f"{k}: {v}" for k, v in exp.blocked.items()) or "no specialist finished"
        return {"seed": seed, "subsets": exp.analysis().subsets if exp.analysis() else (), "result": None, "why": reason}
    return {"seed": seed, "subsets": result.subsets, "result": result}


def pct(x: float) -> str:
    return f"{100 * x:.2f}"


def spread(values: list[float]) -> str:
    m = statistics.mean(values)
    return f"{100 * m:.2f} ± {100 * statistics.stdev(values):.2f}" if len(values) > 1 else f"{100 * m:.2f}"


def report(args, rows: list[dict], wall: float) -> None:
    print("| seed | subsets | generalist % | + specialists % | covered: generalist % | covered: + specialists % "
          "| active % | params alone | params with | bytes alone | bytes with |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    done = [r for r in rows if r["result"] is not None]
    for r in rows:
        subsets = " ".join("{" + ",".join(map(str, s)) + "}" for s in r["subsets"]) or "none"
        if r["result"] is None:
            print(f"| {r['seed']} | {subsets} | (no combination: {r['why']}) |")
            continue
        x = r["result"]
        print(f"| {r['seed']} | {subsets} | {pct(x.generalist_acc)} | {pct(x.combined_acc)} | {pct(x.covered_generalist_acc)} "
              f"| {pct(x.covered_combined_acc)} | {pct(x.active_share)} | {x.generalist_params:,} | {x.total_params:,} "
              f"| {x.generalist_bytes:,} | {x.total_bytes:,} |")
    if done:
        get = lambda key: [getattr(r["result"], key) for r in done]  # noqa: E731
        gains = [r["result"].combined_acc - r["result"].generalist_acc for r in done]
        covered = [r["result"].covered_combined_acc - r["result"].covered_generalist_acc for r in done]
        print(f"\nmean ± std over {len(done)} seed(s): generalist {spread(get('generalist_acc'))} %, with specialists "
              f"{spread(get('combined_acc'))} % (gain {spread(gains)} points, higher in {sum(g > 0 for g in gains)}, "
              f"lower in {sum(g < 0 for g in gains)}); covered classes {spread(get('covered_generalist_acc'))} -> "
              f"{spread(get('covered_combined_acc'))} % (gain {spread(covered)} points)")
    print(f"\nsettings: {args.dataset}, generalist MLP [{args.hidden}] {args.epochs} epochs lr {args.lr} batch {args.batch}, "
          f"{args.held_out} held-out images; k = {args.clusters}, <= {args.count} specialists of 2-{args.max_size} classes, "
          f"{args.specialist_epochs} epochs lr {args.specialist_lr}, enriched to 0.5; top-1; seeds {args.seeds}")
    print(f"machine: {_common.machine_note()}; {datetime.date.today().isoformat()}; wall {wall:.0f} s")


def main() -> None:
    args = parse_args()
    runs_root = args.runs_root or tempfile.mkdtemp(prefix="kdviz-bench-specialists-")
    manager = JobManager(max_concurrent=1)
    t0 = time.perf_counter()
    rows = [run_seed(args, seed, manager, runs_root) for seed in args.seeds]
    report(args, rows, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
