"""Movement pruning against magnitude pruning while fine-tuning a trained LeNet-300-100, over seeds (issue 17).

Sanh, Wolf, Rush, "Movement Pruning: Adaptive Sparsity by Fine-Tuning" (NeurIPS 2020), Figure 2: when a
pretrained model is fine-tuned, magnitude pruning is the better choice at low sparsity and movement
pruning overtakes it at high sparsity (their setting: BERT fine-tuned on SQuAD / MNLI / QQP, where the
pretrained weights' magnitudes say little about the new task).

What this script does, per seed, through the engine exactly as the Pruning page runs it:
1. trains a dense LeNet-300-100 for ``--baseline-epochs`` (the "trained model");
2. for each sparsity in ``--sparsities``: ``kdviz.present.movement.movement_runs`` builds two
   fine-tunes of it (``init_from``), hard movement (scores S -= alpha_S * dL/dW' * W, Top_v mask
   recomputed every step) and magnitude pruning, on the same cubic schedule (Zhu & Gupta 2017, eq. 1)
   over the first 75 % of ``--epochs``, same data order, learning rate and seed; only the rule that
   picks the weights differs. Each runs to the end; its last test accuracy is the number.
Prints, per sparsity, test accuracy of each (mean, min-max and every seed) and movement minus magnitude
(mean and how many seeds movement won), with the dense baseline's accuracy. Numbers are reported
whatever they show: on one task (no transfer) the trained weights' magnitudes already fit the task.

    python bench/movement.py                        # MNIST, seeds 0 1 2, sparsity 50/80/90/97 %
    python bench/movement.py --quick                # digits, 1 seed, 2 sparsities (seconds)
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

from kdviz.engine import TrainConfig, start  # noqa: E402
from kdviz.methods.movement import MOVEMENT  # noqa: E402
from kdviz.methods.prune import PRUNE  # noqa: E402
from kdviz.present.movement import curve_of, movement_runs  # noqa: E402
from kdviz.present.runs import as_run_view  # noqa: E402

RULES = {MOVEMENT.label: "movement", PRUNE.label: "magnitude"}


def _finished(config: TrainConfig):
    job = start(config)
    status = job.wait(None)
    if status.state != "finished":
        raise SystemExit(f"run {config.name} ended {status.state}: {status.message}")
    return job


def _final_sparsity(job) -> float:
    """The overall sparsity at the run's last evaluation (read as the Pruning page reads it)."""
    view = as_run_view(job)
    view.refresh()
    curve = curve_of(view)
    return float(curve.sparsity[-1]) if curve.sparsity else float("nan")


def one_seed(args, seed: int, root: str) -> dict:
    base = TrainConfig(dataset=args.dataset, data_root=args.data_root, model="lenet300", epochs=args.baseline_epochs,
                       lr=0.05, lr_schedule="cosine", seed=seed, runs_root=root, name=f"dense-s{seed}",
                       eval_every=0, snapshot_every=0, train_subset=args.train_subset, eval_train_samples=1000)
    baseline = _finished(base.validate())
    out = {"dense": float(baseline.status().test_acc), "runs": {}}
    for sparsity in args.sparsities:
        configs = movement_runs(baseline, sparsity, epochs=args.epochs, score_lr=args.score_lr, lr=args.lr,
                                warmup=args.warmup,
                                seed=seed, evals=4, snapshots=2, name=f"s{seed}-{sparsity:g}",
                                train_subset=args.train_subset, eval_train_samples=1000)
        row = {}
        for label, config in configs.items():
            job = _finished(config)
            row[RULES[label]] = {"acc": float(job.status().test_acc), "sparsity": _final_sparsity(job)}
        out["runs"][sparsity] = row
        print(f"  seed {seed} sparsity {sparsity:.0%}: movement {row['movement']['acc']:.2%} "
              f"(at {row['movement']['sparsity']:.1%}), magnitude {row['magnitude']['acc']:.2%} "
              f"(at {row['magnitude']['sparsity']:.1%}), dense {out['dense']:.2%} ({time.strftime('%H:%M:%S')})",
              flush=True)
    return out


def summarise(per_seed: list[dict], sparsities: list[float]) -> dict:
    """Per sparsity: each rule's accuracies over seeds, and movement minus magnitude per seed."""
    table = {"dense": [r["dense"] for r in per_seed], "rows": {}}
    for s in sparsities:
        mv = [r["runs"][s]["movement"]["acc"] for r in per_seed]
        mg = [r["runs"][s]["magnitude"]["acc"] for r in per_seed]
        table["rows"][s] = {"movement": mv, "magnitude": mg, "gap": [a - b for a, b in zip(mv, mg)],
                            "sparsity": [r["runs"][s]["movement"]["sparsity"] for r in per_seed]}
    return table


def _cell(values: list[float]) -> str:
    return f"{100 * statistics.fmean(values):.2f}% [{100 * min(values):.2f}-{100 * max(values):.2f}]"


def report(table: dict) -> list[str]:
    """A Markdown table (README-ready): sparsity, movement, magnitude, difference and seeds won."""
    lines = [f"dense baseline: {_cell(table['dense'])}",
             "| sparsity | movement (mean [min-max]) | magnitude (mean [min-max]) | movement - magnitude | movement ahead |",
             "|---:|---:|---:|---:|---:|"]
    for s, row in table["rows"].items():
        gap = statistics.fmean(row["gap"])
        wins = sum(g > 0 for g in row["gap"])
        lines.append(f"| {100 * s:.0f} % | {_cell(row['movement'])} | {_cell(row['magnitude'])} | "
                     f"{100 * gap:+.2f} points | {wins} of {len(row['gap'])} seeds |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="digits, 1 seed, 2 sparsities, short runs (seconds)")
    p.add_argument("--data-root", default=str(DEFAULT_MNIST))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--sparsities", type=float, nargs="+", default=[0.5, 0.8, 0.9, 0.97])
    p.add_argument("--baseline-epochs", type=int, default=3)
    p.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs of each pruned run")
    p.add_argument("--lr", type=float, default=0.02, help="fine-tuning learning rate (the Pruning page's default)")
    p.add_argument("--warmup", type=float, default=0.0, help="share of the fine-tuning steps before pruning "
                   "starts (the scores accumulate; Sanh et al.'s warm-up)")
    p.add_argument("--score-lr", type=float, default=0.01, help="alpha_S of the movement scores (plain SGD)")
    p.add_argument("--train-subset", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None, help="write the per-seed results and the table here")
    if "--quick" in (sys.argv[1:] if argv is None else argv):  # quick defaults; options given still win
        p.set_defaults(seeds=[0], sparsities=[0.5, 0.9], baseline_epochs=10, epochs=3)
    args = p.parse_args(argv)
    args.dataset = "digits" if args.quick else "mnist"
    if args.quick:
        args.data_root = None
    if not all(0.0 < s < 1.0 for s in args.sparsities):
        p.error(f"every sparsity must be in (0, 1), got {args.sparsities}")
    set_threads(args.threads)
    print(f"movement vs magnitude pruning bench on {args.dataset}, LeNet-300-100, seeds {args.seeds}, sparsities "
          f"{args.sparsities}, {args.baseline_epochs} baseline epochs, {args.epochs} fine-tuning epochs at lr {args.lr}, "
          f"score lr {args.score_lr}, warm-up {args.warmup:.0%} of the steps, {time.strftime('%Y-%m-%d')}; {machine_note()}", flush=True)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kdviz-movement-bench-") as root:
        per_seed = [one_seed(args, s, root) for s in args.seeds]
    table = summarise(per_seed, args.sparsities)
    for line in report(table):
        print(line)
    print(f"{time.perf_counter() - began:.0f} s in all")
    if args.json:
        Path(args.json).write_text(json.dumps({"per_seed": per_seed, "table": table}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
