"""What the engine costs on top of a plain PyTorch loop, and what cached teacher logits save.

Prints, measured in one process with the same model, data, batch size and thread count:

* engine KD epoch (background job, metrics to the store and metrics.jsonl every step, snapshots
  every ``--snapshot-every`` steps, status.json) / plain PyTorch KD loop with the same cached
  teacher logits. Target <= 1.05.
* engine KD epoch with cached teacher logits / plain student (cross-entropy) epoch. Target <= 1.10.
* for reference, a plain loop that calls the teacher every step / plain student epoch.

Engine epochs are timed from the step records' clock between the end of one epoch and the end of
the next (evaluations only at the start and the end, so none falls inside a timed epoch; their
cost is printed separately). Each measurement is repeated (``--repeat``) in alternation and the
median is kept, so a burst of load from other processes hits both sides alike.

Usage: python bench/train_overhead.py [--dataset mnist|digits] [--threads N] [--repeat 3]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import _common  # noqa: F401  (thread policy before torch)
import torch

from kdviz.engine import JobManager, TrainConfig, start, train_teacher_cached
from kdviz.engine.setup import dataset_for
from kdviz.engine.teacher_cache import TeacherLogitCache, load_teacher
from kdviz.models import build_model


def engine_epoch_seconds(config: TrainConfig, manager: JobManager) -> tuple[float, float]:
    """(seconds of the second epoch of a 2-epoch engine run, seconds of one evaluation)."""
    job = start(config, manager)
    status = job.wait()
    if status.state != "finished":
        raise SystemExit(f"engine run {status.state}: {status.message}")
    steps = {r["step"]: r["t"] for r in job.store.metrics("step")}
    per_epoch = status.total_steps // 2
    evals = job.store.metrics("eval")
    eval_s = evals[-1]["t"] - steps[status.total_steps]  # the final evaluation follows the last step
    return steps[2 * per_epoch] - steps[per_epoch], eval_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist" if _common.DEFAULT_MNIST.is_dir() else "digits")
    parser.add_argument("--data-root", default=str(_common.DEFAULT_MNIST))
    parser.add_argument("--hidden", default="800,800", help="student MLP widths (Hinton et al.'s 800-800)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--snapshot-every", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--runs-root", default=None, help="where the teacher run is cached (default: a temp folder)")
    args = parser.parse_args(argv)

    threads = _common.set_threads(args.threads)
    root = args.runs_root or tempfile.mkdtemp(prefix="kdviz-bench-")
    data_root = args.data_root if args.dataset != "digits" else None
    hidden = [int(h) for h in args.hidden.split(",")]
    manager = JobManager(max_concurrent=1, cpu_threads=threads)

    t0 = time.perf_counter()
    teacher_job = train_teacher_cached(args.dataset, "mlp", manager=manager, data_root=data_root, epochs=1, lr=0.05,
                                       model_options={"hidden": [1200, 1200]}, batch_size=args.batch_size,
                                       runs_root=root, snapshot_every=0)
    teacher_status = teacher_job.wait()
    print(f"teacher (1200-1200 MLP, 1 epoch, only for timing): {teacher_status.state}, "
          f"{teacher_status.message} [{time.perf_counter() - t0:.0f} s]")

    base = dict(dataset=args.dataset, data_root=data_root, model="mlp", model_options={"hidden": hidden}, epochs=2,
                batch_size=args.batch_size, lr=0.05, runs_root=root, eval_every=10**9)
    kd_config = TrainConfig(method="kd", teacher=str(teacher_job.path), T=4.0, alpha=0.9,
                            snapshot_every=args.snapshot_every, **base)

    data = dataset_for(kd_config)
    images, labels = data.train_images, data.train_labels
    teacher = load_teacher(teacher_job.path)
    cached_logits = TeacherLogitCache(teacher, images, torch.device("cpu")).logits

    def fresh_student():
        torch.manual_seed(0)
        model = build_model("mlp", input_shape=data.input_shape, num_classes=data.num_classes, hidden=hidden)
        return model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    times: dict[str, list[float]] = {"engine kd": [], "plain kd (cached)": [], "plain ce": [], "plain kd (teacher each step)": []}
    eval_times = []
    for rep in range(args.repeat):
        m, opt = fresh_student()
        _common.plain_epoch(m, opt, images, labels, args.batch_size, 0, 0, teacher_logits=cached_logits)  # warm-up epoch
        times["plain kd (cached)"].append(_common.plain_epoch(m, opt, images, labels, args.batch_size, 1, 0, teacher_logits=cached_logits))
        engine_s, eval_s = engine_epoch_seconds(kd_config, manager)
        times["engine kd"].append(engine_s)
        eval_times.append(eval_s)
        m, opt = fresh_student()
        times["plain ce"].append(_common.plain_epoch(m, opt, images, labels, args.batch_size, 1, 0))
        if rep == 0:
            m, opt = fresh_student()
            times["plain kd (teacher each step)"].append(_common.plain_epoch(m, opt, images, labels, args.batch_size, 1, 0, teacher=teacher))
        print(f"  repeat {rep + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items() if len(v) > rep))

    med = {k: statistics.median(v) for k, v in times.items()}
    steps = -(-len(labels) // args.batch_size)
    print(f"\n{args.dataset}: {len(labels)} training images, student MLP {hidden}, batch {args.batch_size}, {steps} steps per epoch, "
          f"snapshots every {args.snapshot_every} steps; {_common.machine_note()}")
    for k, v in med.items():
        print(f"  {k:<30} {v:7.2f} s per epoch (median of {len(times[k])})")
    overhead = med["engine kd"] / med["plain kd (cached)"]
    cached_vs_plain = med["engine kd"] / med["plain ce"]
    per_step = med["plain kd (teacher each step)"] / med["plain ce"]
    print(f"  one evaluation (train subset + test set): {statistics.median(eval_times):.2f} s, not inside the timed epochs")
    print(f"engine KD epoch / plain PyTorch KD epoch:        {overhead:.3f}  (target <= 1.05) {'OK' if overhead <= 1.05 else 'MISSED'}")
    print(f"cached-KD engine epoch / plain student epoch:    {cached_vs_plain:.3f}  (target <= 1.10) {'OK' if cached_vs_plain <= 1.10 else 'MISSED'}")
    print(f"teacher-every-step KD epoch / plain student:     {per_step:.3f}  (what the cache avoids)")
    return 0 if overhead <= 1.05 and cached_vs_plain <= 1.10 else 1


if __name__ == "__main__":
    raise SystemExit(main())
