"""GPU check: the Hinton reproduction and the train-overhead measurement on CUDA and on the CPU.

Issue 19 ("the GPU when there is one"): every training path runs on CUDA when a config's ``device``
is ``auto`` and a GPU is present, with the same results as on the CPU within noise. This script
measures it on a GPU machine:

1. the Hinton et al. 2015 MNIST reproduction (``kdviz.reproduce.hinton_mnist``; ``--quick``: its
   quick settings, else its full ones) trained once with every config on ``cuda`` and once on ``cpu``,
   each in its own runs root (so each trains its own teacher): the wall time of each, their ratio,
   and the table of each side (test errors per row: they must agree within the spread over seeds);
2. the train-overhead measurement of ``bench/train_overhead.py`` on each device: one engine KD
   epoch (the background job with its records, snapshots and checkpoints) beside one plain PyTorch
   KD epoch with the same cached teacher logits, in interleaved pairs (``bench/_paired.py``), so it
   prints engine / plain on each device and CPU / CUDA for each side. CUDA work is asynchronous:
   the plain loop is timed between ``torch.cuda.synchronize()`` calls; the engine synchronises
   every step (it reads the loss).

Without a CUDA GPU it prints one line saying so and exits 0 (``--quick`` is safe anywhere);
``--devices cpu`` runs the CPU side alone (what a CPU-only machine can check of this script).

Usage: python bench/gpu_check.py [--quick] [--seeds 1] [--pairs 5] [--devices cuda,cpu] [--skip-hinton]
                                 [--data-root DIR] [--runs-root DIR]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as bench/_common.py does, before torch
import torch  # noqa: E402

# kdviz and the bench helpers are imported in main(), after the GPU check: the no-GPU answer is quick.

DEVICE_ORDER = ("cuda", "cpu")


def gpu_line() -> str:
    """``"NVIDIA H200, torch 2.x+cu12x (CUDA 12.x)"``, or why there is no GPU here."""
    if not torch.cuda.is_available():
        return (f"no CUDA GPU on this machine (torch {torch.__version__}, torch.cuda.is_available() is False): "
                "nothing to compare. Run bench/gpu_check.py where nvidia-smi shows a GPU, with a CUDA build of torch")
    return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__} (CUDA {torch.version.cuda})"


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


# ---- 1. the Hinton reproduction on each device --------------------------------------------------
def hinton_on(device: str, args: argparse.Namespace, root: Path):
    """The reproduction with every run on ``device``, in its own runs root; its result."""
    seeds = list(range(args.seeds))
    plan = with_device(HINTON_MNIST.plan(seeds, args.quick), device)
    t0 = time.perf_counter()

    def progress(result) -> None:
        print(f"  [{device} {time.perf_counter() - t0:6.0f} s] {len(result.runs)} of {len(plan)} runs ended", flush=True)

    return run_plan(HINTON_MNIST, plan, seeds, args.quick, root / device, args.data_root, on_progress=progress)


def report_hinton(args: argparse.Namespace, root: Path) -> bool:
    """Run and print the reproduction on each device; True when every run finished."""
    print(f"\n1. Hinton et al. 2015, MNIST ({'quick' if args.quick else 'full'} settings, seeds 0..{args.seeds - 1})",
          flush=True)
    results = {}
    for device in args.devices:
        try:
            results[device] = hinton_on(device, args, root)
        except ValueError as exc:  # no MNIST files: say so, go on with the overhead check
            print(f"  skipped: {exc}")
            return True
        print(f"  {device}: {results[device].wall_s:.1f} s wall ({results[device].state})")
        print("\n".join(f"    {line}" for line in table_lines(results[device].rows)))
    if {"cuda", "cpu"} <= set(results):
        cpu, cuda = results["cpu"].wall_s, results["cuda"].wall_s
        print(f"  wall time cpu / cuda: {cpu / cuda:.2f}x ({cpu:.1f} s / {cuda:.1f} s)")
        for cpu_row, cuda_row in zip(results["cpu"].rows, results["cuda"].rows):
            if cpu_row.mean is not None and cuda_row.mean is not None:
                print(f"  {cpu_row.label}: cuda {cuda_row.mean:.1f} vs cpu {cpu_row.mean:.1f} {cpu_row.unit} "
                      f"(difference {cuda_row.mean - cpu_row.mean:+.1f}; spread over seeds on the cpu "
                      f"{cpu_row.std if cpu_row.std is not None else float('nan'):.1f})")
    return all(r.state == "finished" for r in results.values())


# ---- 2. the train overhead on each device --------------------------------------------------------
def overhead_teacher(args: argparse.Namespace, root: Path, manager: JobManager) -> Path:
    job = train_teacher_cached(args.dataset, "mlp", manager=manager, data_root=args.overhead_data_root, epochs=1,
                               lr=0.05, model_options={"hidden": [1200, 1200]}, batch_size=args.batch_size,
                               runs_root=str(root / "overhead-teacher"), snapshot_every=0)
    status = job.wait()
    if status.state != "finished":
        raise SystemExit(f"overhead teacher run {status.state}: {status.message}")
    return Path(job.path)


def overhead_sides(args: argparse.Namespace, device: str, teacher_path: Path, engine_root: Path, manager: JobManager):
    """The two timed sides on ``device``: an engine KD epoch and a plain KD epoch (cached logits)."""
    from train_overhead import engine_epoch  # bench/train_overhead.py: the engine side, timed the same way

    config = TrainConfig(method="kd", teacher=str(teacher_path), T=4.0, alpha=0.9, snapshot_every=50, dataset=args.dataset,
                         data_root=args.overhead_data_root, model="mlp", model_options={"hidden": args.hidden}, epochs=2,
                         batch_size=args.batch_size, lr=0.05, runs_root=str(engine_root), eval_every=10**9,
                         device=device).validate()
    data = dataset_for(config)
    images, labels = data.train_images.to(device), data.train_labels.to(device)
    teacher = load_teacher(teacher_path, device)
    logits = TeacherLogitCache(teacher, images, torch.device(device)).logits
    steps = -(-len(labels) // args.batch_size)
    torch.manual_seed(0)
    model = build_model("mlp", input_shape=data.input_shape, num_classes=data.num_classes, hidden=args.hidden).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    epoch = {"n": 0}

    def plain() -> None:
        epoch["n"] += 1
        synchronize(device)
        _common.plain_epoch(model, optimizer, images, labels, args.batch_size, epoch["n"], 0, teacher_logits=logits)
        synchronize(device)

    plain()  # one unpaired warm-up epoch (CUDA kernels, allocator)
    return {f"engine kd {device}": lambda: engine_epoch(config, manager, steps), f"plain kd {device}": lambda: timed(plain)}


def report_overhead(args: argparse.Namespace, root: Path) -> None:
    print(f"\n2. train overhead ({args.dataset}, student MLP {args.hidden}, batch {args.batch_size}, {args.pairs} pairs)",
          flush=True)
    manager = JobManager(max_concurrent=1, cpu_threads=args.threads)
    engine_root = Path(tempfile.mkdtemp(prefix="kdviz-gpu-check-engine-"))
    try:
        teacher_path = overhead_teacher(args, root, manager)
        sides: dict = {}
        for device in args.devices:
            sides.update(overhead_sides(args, device, teacher_path, engine_root, manager))
        samples: dict[str, list[Sample]] = {name: [] for name in sides}
        for pair in range(args.pairs):
            for name in (list(sides) if pair % 2 == 0 else list(sides)[::-1]):
                samples[name].append(sides[name]())
            print(f"  pair {pair + 1}: " + ", ".join(f"{k} {v[-1].wall:.3f} s" for k, v in samples.items()), flush=True)
    finally:
        shutil.rmtree(engine_root, ignore_errors=True)
    for name, values in samples.items():
        print(f"  {name:<16} {statistics.median(s.wall for s in values):8.3f} s wall per epoch (median of {len(values)})")
    for device in args.devices:
        print(describe(f"engine kd / plain kd on {device}", samples[f"engine kd {device}"], samples[f"plain kd {device}"]))
    if {"cuda", "cpu"} <= set(args.devices):
        for side in ("engine kd", "plain kd"):
            print(describe(f"{side}: cpu / cuda", samples[f"{side} cpu"], samples[f"{side} cuda"]))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="the reproduction's quick settings, 1 seed, and a small overhead check on digits")
    parser.add_argument("--seeds", type=int, default=None, help="reproduction seeds 0..N-1 (default 1 quick, 3 full)")
    parser.add_argument("--pairs", type=int, default=None, help="overhead pairs (default 3 quick, 8 full)")
    parser.add_argument("--devices", default="cuda,cpu", help="devices to run on, in this order (default cuda,cpu)")
    parser.add_argument("--skip-hinton", action="store_true", help="only the overhead check")
    parser.add_argument("--data-root", default=None, help="the MNIST IDX files (default: ../shared/data/mnist)")
    parser.add_argument("--runs-root", default=None, help="where the runs go (default: a temp folder, removed after)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    args.devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    unknown = [d for d in args.devices if d not in DEVICE_ORDER]
    if unknown or not args.devices:
        parser.error(f"--devices takes cuda and/or cpu, got {args.devices}")
    args.seeds = args.seeds or (1 if args.quick else 3)
    args.pairs = args.pairs or (3 if args.quick else 8)
    args.hidden = [100, 100] if args.quick else [800, 800]
    args.batch_size = 128
    return args


def import_the_rest() -> None:
    """The bench helpers and kdviz, into this module's namespace (after the GPU check)."""
    global _common, Sample, describe, timed, JobManager, TrainConfig, train_teacher_cached, dataset_for
    global TeacherLogitCache, load_teacher, build_model, run_plan, table_lines, with_device, HINTON_MNIST
    import _common
    from _paired import Sample, describe, timed

    from kdviz.engine import JobManager, TrainConfig, train_teacher_cached
    from kdviz.engine.setup import dataset_for
    from kdviz.engine.teacher_cache import TeacherLogitCache, load_teacher
    from kdviz.models import build_model
    from kdviz.reproduce import run_plan, table_lines, with_device
    from kdviz.reproduce.hinton_mnist import HINTON_MNIST


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if "cuda" in args.devices and not torch.cuda.is_available():
        print(f"gpu_check: skipped: {gpu_line()}")
        return 0
    import_the_rest()
    args.threads = _common.set_threads(args.threads)
    if args.data_root is None:
        args.data_root = str(_common.DEFAULT_MNIST)
    mnist = Path(args.data_root).is_dir() and not args.quick
    args.dataset, args.overhead_data_root = ("mnist", args.data_root) if mnist else ("digits", None)
    print(f"gpu_check on {gpu_line() if 'cuda' in args.devices else 'the CPU only'}; {_common.machine_note()}")
    root = Path(args.runs_root or tempfile.mkdtemp(prefix="kdviz-gpu-check-"))
    t0 = time.perf_counter()
    try:
        finished = args.skip_hinton or report_hinton(args, root)
        report_overhead(args, root)
    finally:
        if args.runs_root is None:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\ngpu_check time {time.perf_counter() - t0:.0f} s")
    return 0 if finished else 1


if __name__ == "__main__":
    raise SystemExit(main())
