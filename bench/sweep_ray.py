"""Bench: a T x alpha grid of KD students on digits through Ray Tune, beside the same runs through the
engine one after another (issue 19).

    python bench/sweep_ray.py            # 12 trials (T 1,2,4,8 x alpha 0.5,0.9,0.99), 300 steps each
    python bench/sweep_ray.py --quick    # 4 trials, 20 steps: seconds of training, mostly Ray's start-up

Prints the wall time of each path, their ratio, and the per-trial overhead of Ray (Ray's wall time
times the slots, over the trials, minus the engine's time per run). Ray's start-up (``ray.init``) is
timed apart. Both paths train the same configs (one torch thread per run); the teacher is trained once
first (reused from the runs root when it exists).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kdviz.engine import JobManager, TrainConfig, start, train_teacher_cached  # noqa: E402
from kdviz.present.sweep import default_sweep_base  # noqa: E402
from kdviz.sweep import SweepSpec, connect_ray, plan_trials, run_sweep, shutdown_ray  # noqa: E402

FULL_GRID = {"T": [1.0, 2.0, 4.0, 8.0], "alpha": [0.5, 0.9, 0.99]}
QUICK_GRID = {"T": [1.0, 4.0], "alpha": [0.5, 0.9]}


def sequential(configs: list[dict]) -> float:
    """Every config through the engine, one after another, one thread; wall seconds."""
    manager = JobManager(max_concurrent=1, cpu_threads=1)
    t0 = time.perf_counter()
    for data in configs:
        job = start(TrainConfig.from_dict(data), manager)
        status = job.wait()
        if status.state != "finished":
            raise RuntimeError(f"{job.path}: {status.state}: {status.message}")
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 trials of 20 steps")
    parser.add_argument("--trials-at-once", type=int, default=2)
    parser.add_argument("--runs-root", default=None, help="default: a temporary folder")
    args = parser.parse_args(argv)
    scratch = [] if args.runs_root else [tempfile.mkdtemp(prefix="kdviz-sweep-bench-")]
    try:
        return bench(args, Path(args.runs_root or scratch[0]), scratch)
    finally:
        for folder in scratch:  # the temporary runs root and Ray's session folder (logs)
            shutil.rmtree(folder, ignore_errors=True)


def bench(args: argparse.Namespace, root: Path, scratch: list[str]) -> int:
    """Train the grid both ways under ``root`` and print the times; 0 when no trial failed."""
    steps = 20 if args.quick else 300
    teacher = train_teacher_cached("digits", "mlp", manager=JobManager(1, cpu_threads=1),
                                   model_options={"hidden": [64]}, epochs=3 if args.quick else 20, runs_root=str(root))
    if teacher.wait().state != "finished":
        raise SystemExit(f"the teacher did not finish: {teacher.status().message}")
    base = default_sweep_base("digits", str(teacher.path), max_steps=steps)
    spec = SweepSpec(base={**base, "device": "cpu"}, grid=QUICK_GRID if args.quick else FULL_GRID,
                     trials_at_once=args.trials_at_once, name="bench")
    configs = [t.config for t in plan_trials(spec, runs_root=str(root))]
    print(f"{len(configs)} trials x {steps} steps on digits; {os.cpu_count()} cores; {args.trials_at_once} at once on Ray",
          flush=True)
    engine_s = sequential(configs)
    t0 = time.perf_counter()
    scratch.append(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Ray's socket paths must stay short
    where = connect_ray(temp_dir=scratch[-1])
    init_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    record = run_sweep(spec, runs_root=root)
    ray_s = time.perf_counter() - t0
    shutdown_ray()
    states = record.counts()
    per_run = engine_s / len(configs)
    overhead = ray_s * args.trials_at_once / len(configs) - per_run
    print(f"engine, one after another: {engine_s:7.1f} s ({per_run:.2f} s per run)")
    print(f"Ray Tune ({where}):  {ray_s:7.1f} s after ray.init ({init_s:.1f} s); trials {states}")
    print(f"ratio Ray / engine: {ray_s / engine_s:.2f}; Ray's overhead per trial: {overhead:+.2f} s "
          f"(per-slot time per trial {ray_s * args.trials_at_once / len(configs):.2f} s)")
    return 0 if states["failed"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
