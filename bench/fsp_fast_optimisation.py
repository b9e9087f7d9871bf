"""Yim et al. 2017, "A Gift from Knowledge Distillation", section 4.1 ("fast optimisation"), on MNIST.

The paper's claim (CIFAR-10, ResNets): a student first trained to match a deeper teacher's FSP
matrices (stage 1, eq. 2, no labels) and then on the labels (stage 2) reaches the accuracy of the
same student trained from scratch in about a third of the main-task iterations. This script runs the
``yim-fsp`` reproduction (the same code as ``kdviz reproduce yim-fsp``, ``kdviz/reproduce/fsp.py``)
through the kdviz engine, on MNIST with small ResNets of the same channels per stage:

* a teacher ResNet-20 (3 blocks per stage), reused from ``--runs-root`` when it has finished there;
* a scratch ResNet-8 (1 block per stage): cross-entropy for the full schedule of N iterations;
* the same ResNet-8 with FSP: stage 1 (FSP loss over the three sections, S1 iterations, low lr),
  then stage 2 (cross-entropy from the stage-1 weights) for N / 3 iterations.

Both main-task runs use SGD with momentum and a cosine schedule over their own length, so stage 2's
schedule is the scratch schedule compressed 3x, as in the paper's comparison. It prints the
reproduction's table (every seed), then for the first seed: the probe FSP loss of stage 1, when (if)
stage 2 first reached the scratch accuracy, whether FSP reached the baseline at a third of the
iterations, wall times and the load average. ``--quick``: the reproduction's quick mode in a
temporary runs root (far from converged).

Usage: python bench/fsp_fast_optimisation.py [--quick] [--seeds N] [--iterations N] [--stage1 S1] [--data-root DIR]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (thread policy before torch)

from kdviz.engine import open_run  # noqa: E402
from kdviz.methods.fsp import FSP  # noqa: E402
from kdviz.methods.two_stage import probe_loss_key  # noqa: E402
from kdviz.engine.run_folder import read_config  # noqa: E402
from kdviz.reproduce import run_plan, table_lines  # noqa: E402
from kdviz.reproduce.fsp import FSP_FAST_OPTIMISATION, FULL, QUICK, Schedule, describe_settings, plan_runs  # noqa: E402

DEFAULT_RUNS = _common.ROOT / "bench" / "cache" / "reproduce"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=FULL.scratch, help="N: the scratch student's iterations (batch 64)")
    parser.add_argument("--stage1", type=int, default=FULL.stage1, help="S1: FSP stage-1 iterations")
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 (the table shows mean +- std and every seed)")
    parser.add_argument("--data-root", default=str(_common.DEFAULT_MNIST))
    parser.add_argument("--runs-root", default=str(DEFAULT_RUNS), help="where the runs go (a finished teacher is reused)")
    parser.add_argument("--quick", action="store_true",
                        help=f"the quick reproduction ({QUICK.teacher_steps} teacher, {QUICK.scratch} scratch, "
                             f"{QUICK.stage1} + {QUICK.stage2} FSP steps) in a temporary runs root")
    args = parser.parse_args(argv)
    if int(args.iterations) < 3 or int(args.stage1) < 1:
        raise SystemExit("--iterations must be at least 3 and --stage1 at least 1")
    args.schedule = QUICK if args.quick else Schedule(scratch=int(args.iterations), stage1=int(args.stage1))
    return args


def evals(path: str) -> list[dict]:
    return [r for r in open_run(path).metrics("eval") if "test_acc" in r]


def report(result, plan: Schedule) -> None:
    """The first seed: stage 1's probe loss, when stage 2 reached the scratch accuracy, the verdict."""
    path = {key.split("/")[0]: info["path"] for key, info in result.runs.items() if key.endswith("seed0") or "/" not in key}
    scratch, stage2 = evals(path["scratch"]), evals(path["fsp-stage2"])
    target, fsp = scratch[-1]["test_acc"], stage2[-1]["test_acc"]
    key = probe_loss_key(FSP, read_config(path["fsp-stage1"]))  # "fsp/probe_loss": eq. 2 on a fixed batch
    losses = [r[key] for r in open_run(path["fsp-stage1"]).metrics("eval") if key in r]
    print(f"\nfirst seed: FSP stage 1 probe FSP loss {losses[0]:.4g} -> {losses[-1]:.4g} "
          f"({losses[0] / losses[-1]:.3g}x lower) in {plan.stage1} iterations")
    reached = next((r["step"] for r in stage2 if r["test_acc"] >= target), None)
    when = f"after {reached} stage-2 iterations" if reached is not None else "not within stage 2"
    print(f"FSP stage 2 first reached the scratch accuracy {when} (evaluated every {plan.every} iterations)")
    verdict = "YES" if fsp >= target else "NO"
    print(f"FSP reached the scratch baseline at 1/3 of the main-task iterations: {verdict} "
          f"({100 * (fsp - target):+.2f} points; the paper claims yes on CIFAR-10; counting stage 1, FSP used "
          f"{plan.stage1 + plan.stage2} iterations against {plan.scratch})")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = args.schedule
    if not Path(args.data_root).is_dir():
        sys.exit(f"MNIST not found at {args.data_root}; pass --data-root")
    load_start = os.getloadavg()[0]
    print(f"Yim et al. 2017, fast optimisation, MNIST; {_common.machine_note()}", flush=True)
    print(f"schedule: {describe_settings(args.quick, plan)}", flush=True)
    t0 = time.perf_counter()

    def progress(result) -> None:
        ended = ", ".join(f"{key} {run['state']}" for key, run in result.runs.items())
        print(f"  [{time.perf_counter() - t0:5.0f} s] {ended}", flush=True)

    seeds = list(range(args.seeds))
    with tempfile.TemporaryDirectory(prefix="fsp-quick-") as scratch_root:
        runs_root = scratch_root if args.quick else args.runs_root
        result = run_plan(FSP_FAST_OPTIMISATION, plan_runs(seeds, args.quick, plan), seeds, args.quick, runs_root,
                          args.data_root, on_progress=progress)
        print(f"\n{result.title}\n" + "\n".join(table_lines(result.rows)))
        if result.state != "finished":
            sys.exit(f"reproduction {result.state}: {result.runs}")
        report(result, plan)
    total = time.perf_counter() - t0
    print(f"wall time: total {total / 60:.1f} min; load average {load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end"
          f"{'; quick smoke run: far from converged by design' if args.quick else f'; result {result.path}'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
