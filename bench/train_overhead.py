"""What the engine costs on top of a plain PyTorch loop, and what cached teacher logits save.

Prints, measured in one process with the same model, data, batch size and thread count, for each
ratio the median of per-pair ratios with its interquartile range (IQR), wall time and CPU time:

* engine KD epoch (background job, metrics to the store and metrics.jsonl every step, snapshots
  every ``--snapshot-every`` steps, checkpoints, status.json) / plain PyTorch KD loop with the same
  cached teacher logits. Target <= 1.05.
* engine KD epoch with cached teacher logits / plain student (cross-entropy) epoch. Target <= 1.10.
* for reference, a plain loop that calls the teacher every step / plain student epoch.

Paired and interleaved: each pair runs the engine epoch and the plain epochs back to back, in
forward order (engine, plain KD, plain CE, teacher-each-step) on even pairs and reversed on odd
ones, so neither side always goes first and a burst of load from other processes hits both sides
of a pair alike. A ratio is formed within each pair; the median over pairs is the result and the
IQR (Q1..Q3 of the per-pair ratios) its spread (``bench/_paired.py``). The exit status uses the median
of the wall-time ratios; the report gives the verdict on CPU time too, and says whether the target
lies inside Q1..Q3 and inside the median's 95 % interval (then the verdict is not settled). With
``--max-pairs`` pairs are added until that interval is narrower than ``--tolerance`` or clear of
the target.

Timing. Plain loops: ``time.perf_counter`` and ``time.process_time`` (process CPU time: all
threads, OpenMP workers included) around one epoch in the main thread. Engine: one job runs alone
in the process (``max_concurrent=1``; the main thread blocks on an event); the bench's wrapper
around the job's ``LiveStore.add_metric`` (one Python call per step, in the job thread) reads both
clocks at the step record ``w`` and at ``w + steps_per_epoch``, so the window is exactly one
epoch's steps, holds one epoch boundary (its checkpoint included) and no evaluation; ``w`` (an
eighth of an epoch) warms the job thread's fresh OpenMP pool. The job is then stopped. Plain
models keep training across pairs, after one unpaired warm-up epoch each.

Usage: python bench/train_overhead.py [--dataset mnist|digits] [--threads N] [--pairs 16] [--max-pairs 40] [--quick]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import threading
import time

import _common  # noqa: F401  (thread policy before torch)
import torch
from _paired import Sample, describe, pair_ratios, settled, timed

from kdviz.engine import Job, JobManager, TrainConfig, train_teacher_cached
from kdviz.engine.setup import dataset_for
from kdviz.engine.teacher_cache import TeacherLogitCache, load_teacher
from kdviz.models import build_model

TARGETS = {"engine kd / plain kd (cached)": 1.05, "engine kd / plain ce": 1.10}
DEFAULT_PAIRS = 16
TARGET_SIDES = {"engine kd / plain kd (cached)": ("engine kd", "plain kd (cached)"),
                "engine kd / plain ce": ("engine kd", "plain ce")}  # the ratios with a target: they decide when to stop


def engine_epoch(config: TrainConfig, manager: JobManager, steps_per_epoch: int) -> Sample:
    """Wall and process CPU time of one epoch's steps (``w``..``w + steps_per_epoch``) of an engine job."""
    warm = max(1, steps_per_epoch // 8)
    marks: dict[int, tuple[float, float]] = {}
    window_done = threading.Event()
    job = Job(config, manager)
    add_metric = job.store.add_metric

    def add_metric_and_clock(record, seq=None):  # runs in the job thread, once per record
        stored = add_metric(record, seq=seq)
        if record.get("kind") == "step" and record.get("step") in (warm, warm + steps_per_epoch):
            marks[record["step"]] = (time.perf_counter(), time.process_time())
            if len(marks) == 2:
                window_done.set()
        return stored

    job.store.add_metric = add_metric_and_clock
    manager.submit(job)
    while not window_done.wait(0.5):
        if job.done:
            status = job.status()
            raise SystemExit(f"engine run ended ({status.state}: {status.message}) before its timed epoch")
    job.stop("timed epoch done")
    status = job.wait()
    if status.state not in ("stopped", "finished"):
        raise SystemExit(f"engine run {status.state}: {status.message}")
    (w0, c0), (w1, c1) = marks[warm], marks[warm + steps_per_epoch]
    shutil.rmtree(job.path, ignore_errors=True)  # the bench's own throwaway run (checkpoints: MBs each)
    return Sample(w1 - w0, c1 - c0)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist" if _common.DEFAULT_MNIST.is_dir() else "digits")
    parser.add_argument("--data-root", default=str(_common.DEFAULT_MNIST))
    parser.add_argument("--hidden", default="800,800", help="student MLP widths (Hinton et al.'s 800-800)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--snapshot-every", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--pairs", "--repeat", dest="pairs", type=int, default=DEFAULT_PAIRS,
                        help=f"interleaved pairs (default {DEFAULT_PAIRS}; --repeat is the old name)")
    parser.add_argument("--max-pairs", type=int, default=None,
                        help="after --pairs, add pairs until the 95%% interval of each targeted ratio's median is "
                             "narrower than --tolerance or clear of its target, up to this many (default: --pairs)")
    parser.add_argument("--tolerance", type=float, default=0.02,
                        help="relative width of that interval that is good enough (default 0.02)")
    parser.add_argument("--teacher-step-every", type=int, default=2,
                        help="time the teacher-every-step reference loop in every Nth pair (default 2; 0: never)")
    parser.add_argument("--quick", action="store_true", help="smoke run: digits, 3 pairs, a 100-100 student")
    parser.add_argument("--runs-root", default=None, help="where the teacher run is cached (default: a temp folder)")
    args = parser.parse_args(argv)
    if args.quick:
        args.dataset, args.pairs, args.hidden = "digits", 3, "100,100"
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    return args


def teacher_run(args, manager: JobManager, root: str, data_root: str | None) -> Job:
    t0 = time.perf_counter()
    teacher_job = train_teacher_cached(args.dataset, "mlp", manager=manager, data_root=data_root, epochs=1, lr=0.05,
                                       model_options={"hidden": [1200, 1200]}, batch_size=args.batch_size,
                                       runs_root=root, snapshot_every=0)
    teacher_status = teacher_job.wait()
    if teacher_status.state != "finished":
        raise SystemExit(f"teacher run {teacher_status.state}: {teacher_status.message}")
    print(f"teacher (1200-1200 MLP, 1 epoch, only for timing): {teacher_status.message} "
          f"[{time.perf_counter() - t0:.0f} s]")
    return teacher_job


def measure_pairs(args, kd_config: TrainConfig, manager: JobManager, teacher_path) -> dict[str, list[Sample | None]]:
    """Interleaved pairs: per pair, every side once, order forward on even pairs and reversed on odd ones."""
    data = dataset_for(kd_config)
    images, labels = data.train_images, data.train_labels
    teacher = load_teacher(teacher_path)
    cached_logits = TeacherLogitCache(teacher, images, torch.device("cpu")).logits
    steps = -(-len(labels) // args.batch_size)
    hidden = kd_config.model_options["hidden"]
    epoch = {"n": 0}

    def plain(model_opt, **loss):
        model, opt = model_opt
        epoch["n"] += 1
        return lambda: _common.plain_epoch(model, opt, images, labels, args.batch_size, epoch["n"], 0, **loss)

    def fresh_student():
        torch.manual_seed(0)
        model = build_model("mlp", input_shape=data.input_shape, num_classes=data.num_classes, hidden=hidden)
        return model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    students = {k: fresh_student() for k in ("plain kd (cached)", "plain ce", "plain kd (teacher each step)")}
    sides = {"engine kd": lambda: engine_epoch(kd_config, manager, steps),
             "plain kd (cached)": lambda: timed(plain(students["plain kd (cached)"], teacher_logits=cached_logits)),
             "plain ce": lambda: timed(plain(students["plain ce"])),
             "plain kd (teacher each step)": lambda: timed(plain(students["plain kd (teacher each step)"], teacher=teacher))}
    for name in list(sides)[1:]:  # one unpaired warm-up epoch per plain loop
        if name != "plain kd (teacher each step)" or args.teacher_step_every:
            sides[name]()
    samples: dict[str, list[Sample | None]] = {k: [] for k in sides}
    def enough() -> bool:  # every targeted ratio's 95 % interval is narrow enough or clear of its target
        return all(settled(pair_ratios(samples[top], samples[bottom]), args.tolerance, TARGETS[name])
                   for name, (top, bottom) in TARGET_SIDES.items())

    for pair in range(max(args.pairs, args.max_pairs or 0)):
        if pair >= args.pairs and enough():
            break
        with_teacher = bool(args.teacher_step_every) and pair % args.teacher_step_every == 0
        order = [k for k in sides if with_teacher or k != "plain kd (teacher each step)"]
        for name in (order if pair % 2 == 0 else order[::-1]):
            samples[name].append(sides[name]())
        if not with_teacher:
            samples["plain kd (teacher each step)"].append(None)
        print(f"  pair {pair + 1:>2} ({'forward' if pair % 2 == 0 else 'reversed'}): " + ", ".join(
            f"{k} {v[-1].wall:.2f} s wall / {v[-1].cpu:.2f} s CPU" for k, v in samples.items() if v[-1] is not None),
            flush=True)
    return samples


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    threads = _common.set_threads(args.threads)
    root = args.runs_root or tempfile.mkdtemp(prefix="kdviz-bench-")
    engine_root = tempfile.mkdtemp(prefix="kdviz-bench-engine-")
    data_root = args.data_root if args.dataset != "digits" else None
    hidden = [int(h) for h in args.hidden.split(",")]
    manager = JobManager(max_concurrent=1, cpu_threads=threads)
    teacher_job = teacher_run(args, manager, root, data_root)
    kd_config = TrainConfig(method="kd", teacher=str(teacher_job.path), T=4.0, alpha=0.9,
                            snapshot_every=args.snapshot_every, dataset=args.dataset, data_root=data_root, model="mlp",
                            model_options={"hidden": hidden}, epochs=2, batch_size=args.batch_size, lr=0.05,
                            runs_root=engine_root, eval_every=10**9).validate()
    try:
        samples = measure_pairs(args, kd_config, manager, teacher_job.path)
        n_train = len(dataset_for(kd_config).train_labels)
    finally:
        shutil.rmtree(engine_root, ignore_errors=True)
        if args.runs_root is None:  # the teacher went to a temp folder of ours
            shutil.rmtree(root, ignore_errors=True)

    print(f"\n{args.dataset}: {n_train} training images, student MLP {hidden}, batch {args.batch_size}, "
          f"{-(-n_train // args.batch_size)} steps per epoch, snapshots every {args.snapshot_every} steps; "
          f"{_common.machine_note()}")
    for name, values in samples.items():
        kept = [s for s in values if s is not None]
        if kept:
            print(f"  {name:<30} {statistics.median(s.wall for s in kept):7.2f} s wall, "
                  f"{statistics.median(s.cpu for s in kept):7.2f} s CPU per epoch (median of {len(kept)})")
    print("per-pair ratios (median [interquartile range Q1-Q3], wall and CPU):")
    ratios = {"engine kd / plain kd (cached)": ("engine kd", "plain kd (cached)"),
              "engine kd / plain ce": ("engine kd", "plain ce"),
              "plain kd (teacher each step) / plain ce": ("plain kd (teacher each step)", "plain ce")}
    passed = True
    for name, (top, bottom) in ratios.items():
        values = pair_ratios(samples[top], samples[bottom], "wall")
        if values:
            print(describe(name, samples[top], samples[bottom], TARGETS.get(name)))
            if name in TARGETS:
                passed &= statistics.median(values) <= TARGETS[name]
    print(f"bench time {time.perf_counter() - t_start:.0f} s")
    if args.quick:
        print("--quick is a smoke run (tiny model, 3 pairs): exit status 0 whatever the verdicts")
        return 0
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
