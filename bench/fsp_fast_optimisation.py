"""Yim et al. 2017, "A Gift from Knowledge Distillation", section 4.1 ("fast optimisation"), on MNIST.

The paper's claim (CIFAR-10, ResNets): a student first trained to match a deeper teacher's FSP
matrices (stage 1, eq. 2, no labels) and then on the labels (stage 2) reaches the accuracy of the
same student trained from scratch in about a third of the main-task iterations. This script, through
the kdviz engine, on MNIST with small ResNets of the same channels per stage:

* a teacher ResNet-20 (3 blocks per stage), cached in its run folder (a rerun reuses it);
* a scratch ResNet-8 (1 block per stage): cross-entropy for the full schedule of N iterations;
* the same ResNet-8 with FSP: stage 1 (FSP loss over the three sections, S1 iterations, low lr),
  then stage 2 (cross-entropy from the stage-1 weights) for N / 3 iterations.

Both main-task runs use SGD with momentum and a cosine schedule over their own length, so stage 2's
schedule is the scratch schedule compressed 3x, as in the paper's comparison. It prints the scratch
student's test accuracy after N iterations, the FSP student's after S1 + N/3, when (if) stage 2
first reached the scratch accuracy, whether FSP reached the baseline at a third of the iterations,
the schedule, wall times and the load average. ``--quick`` is a smoke run (far from converged).

Usage: python bench/fsp_fast_optimisation.py [--quick] [--iterations N] [--stage1 S1] [--data-root DIR]
"""
from __future__ import annotations

import argparse
import os
import time

import _common  # noqa: F401  (thread policy before torch)

from kdviz.methods import get_method
from kdviz.methods.two_stage import SCRATCH, TwoStageFSP, fsp_stage1_config, probe_loss_key, scratch_config
from kdviz.engine import JobManager, TrainConfig, train_teacher_cached

CHANNELS = [8, 16, 32]
TEACHER = dict(model_options={"blocks_per_stage": [3, 3, 3], "channels": CHANNELS}, epochs=1, lr=0.05,
               lr_schedule="cosine", batch_size=128, snapshot_every=0, eval_train_samples=1000)
STUDENT = {"blocks_per_stage": [1, 1, 1], "channels": CHANNELS}
MAIN_LR, STAGE1_LR, BATCH = 0.05, 1e-4, 64
TRAIN_SIZE = 60_000
QUICK = {"teacher_steps": 60, "iterations": 150, "stage1": 60}


def last_acc(job) -> float:
    return float(job.store.metrics("eval")[-1]["test_acc"])


def finished(job, what: str):
    status = job.wait()
    if status.state != "finished":
        raise SystemExit(f"{what} {status.state}: {status.message}")
    return job


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1500, help="N: the scratch student's iterations (batch 64)")
    parser.add_argument("--stage1", type=int, default=600, help="S1: FSP stage-1 iterations")
    parser.add_argument("--data-root", default=str(_common.DEFAULT_MNIST))
    parser.add_argument("--runs-root", default=str(_common.ROOT / "bench" / "cache" / "fsp_fast_optimisation"))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="smoke run: 60 teacher, 150 scratch, 60 + 50 FSP steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.iterations, args.stage1 = QUICK["iterations"], QUICK["stage1"]
    if int(args.iterations) < 3 or int(args.stage1) < 1:
        raise SystemExit("--iterations must be at least 3 and --stage1 at least 1")
    return args


def print_schedule(args: argparse.Namespace, n: int, s1: int, s2: int) -> None:
    print(f"Yim et al. 2017, fast optimisation, MNIST; {_common.machine_note()}", flush=True)
    print(f"schedule: teacher ResNet-20 {'-'.join(map(str, CHANNELS))} "
          f"({QUICK['teacher_steps']} steps, quick)" if args.quick else
          f"schedule: teacher ResNet-20 {'-'.join(map(str, CHANNELS))} ({TEACHER['epochs']} epoch, batch 128)", end="")
    print(f"; students ResNet-8, batch {BATCH}, SGD momentum 0.9, cosine: scratch {n} iterations at lr {MAIN_LR}; "
          f"FSP stage 1 {s1} iterations at lr {STAGE1_LR:g}, stage 2 {s2} iterations (N/3) at lr {MAIN_LR}", flush=True)


def train_teacher(args: argparse.Namespace, manager: JobManager):
    """The ResNet-20 teacher, trained once and reused from its run folder."""
    t0 = time.perf_counter()
    options = dict(TEACHER, max_steps=QUICK["teacher_steps"]) if args.quick else dict(TEACHER)
    teacher = train_teacher_cached("mnist", "resnet", manager=manager, data_root=args.data_root, runs_root=args.runs_root,
                                   name="fsp-teacher-resnet20", **options)
    reused = teacher.status().state == "finished"
    finished(teacher, "teacher")
    took = time.perf_counter() - t0
    print(f"teacher: {last_acc(teacher):.2%} test accuracy "
          f"[{'reused ' + teacher.path.name if reused else f'trained in {took:.0f} s'}]", flush=True)
    return teacher


def train_students(args: argparse.Namespace, manager: JobManager, teacher, n: int, s1: int, s2: int, every: int):
    """One experiment: FSP stage 1 and the scratch student at once, then stage 2 from stage 1's
    weights. Returns (scratch job, stage-2 job, stage-1 probe FSP losses)."""
    base = TrainConfig(dataset="mnist", data_root=args.data_root, model="resnet", model_options=STUDENT,
                       teacher=str(teacher.path), lr=MAIN_LR, lr_schedule="cosine", batch_size=BATCH,
                       epochs=-(-max(n, s1) // -(-TRAIN_SIZE // BATCH)), eval_every=every, snapshot_every=0,
                       eval_train_samples=1000, runs_root=args.runs_root, name="fsp-student")
    exp = TwoStageFSP(base, stage1=fsp_stage1_config(base, pairs="auto", max_steps=s1, lr=STAGE1_LR),
                      stage2_steps=s2, manager=manager)
    scratch = exp.start(SCRATCH, scratch_config(base, max_steps=n, name="fsp-scratch"))
    stage1 = finished(exp.stage1, "FSP stage 1")
    loss_key = probe_loss_key(get_method("fsp"), stage1.config)  # "fsp/probe_loss": eq. 2 on a fixed batch
    fsp_losses = [r[loss_key] for r in stage1.store.metrics("eval")]
    for name, status in exp.wait().items():
        if status.state != "finished":
            raise SystemExit(f"{name} {status.state}: {status.message}")
    return scratch, exp.stage2, fsp_losses


def report(teacher, scratch, stage2, fsp_losses: list[float], n: int, s1: int, s2: int, every: int) -> None:
    target, fsp = last_acc(scratch), last_acc(stage2)
    reached = next((r["step"] for r in stage2.store.metrics("eval") if r["test_acc"] >= target), None)
    print(f"\nFSP stage 1: probe FSP loss {fsp_losses[0]:.4g} -> {fsp_losses[-1]:.4g} "
          f"({fsp_losses[0] / fsp_losses[-1]:.3g}x lower) in {s1} iterations")
    print(f"{'run':<44}{'iterations':>12}{'test acc':>10}")
    print(f"{'teacher ResNet-20':<44}{'':>12}{last_acc(teacher):>10.2%}")
    print(f"{'scratch ResNet-8 (full schedule)':<44}{n:>12}{target:>10.2%}")
    print(f"{'FSP ResNet-8, stage 2 cut to N/3':<44}{f'{s1} + {s2}':>12}{fsp:>10.2%}")
    early = next((r for r in scratch.store.metrics("eval") if r["step"] >= s2), None)
    if early is not None:
        label = "scratch ResNet-8, the same run at N/3"
        print(f"{label:<44}{early['step']:>12}{early['test_acc']:>10.2%}")
    when = f"after {reached} stage-2 iterations" if reached is not None else "not within stage 2"
    print(f"FSP stage 2 first reached the scratch accuracy {when} (evaluated every {every} iterations)")
    verdict = "YES" if fsp >= target else "NO"
    print(f"FSP reached the scratch baseline at 1/3 of the main-task iterations: {verdict} "
          f"({100 * (fsp - target):+.2f} points; the paper claims yes on CIFAR-10; counting stage 1, FSP used "
          f"{s1 + s2} iterations against {n})")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    n, s1 = int(args.iterations), int(args.stage1)
    s2, every = max(1, n // 3), max(1, n // 15)  # every: scratch evaluations; stage 2 gets about 5
    manager = JobManager(max_concurrent=2, cpu_threads=_common.set_threads(args.threads))
    load_start = os.getloadavg()[0]
    print_schedule(args, n, s1, s2)
    t0 = time.perf_counter()
    teacher = train_teacher(args, manager)
    t1 = time.perf_counter()
    scratch, stage2, fsp_losses = train_students(args, manager, teacher, n, s1, s2, every)
    students_s = time.perf_counter() - t1
    report(teacher, scratch, stage2, fsp_losses, n, s1, s2, every)
    total = time.perf_counter() - t0
    print(f"wall time: total {total / 60:.1f} min (students {students_s / 60:.1f} min); load average "
          f"{load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end"
          f"{'; quick smoke run: far from converged by design' if args.quick else ''}; runs in {args.runs_root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
