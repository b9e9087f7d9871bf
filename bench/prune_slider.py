"""How long one move of the sparsity slider takes: magnitude-prune LeNet-300-100 to a new sparsity
and re-evaluate it on the 10,000 MNIST test images (issue 7 target: under 300 ms on 2 CPU cores).

Two implementations are timed in the same run, on the same model and the same slider positions:

* ``kdviz``: ``MaskedEvaluator`` (cached dense weights and pruning order, masks by indexing, one
  large batch under ``torch.inference_mode``);
* ``plain``: what a straightforward PyTorch script does per move: deep-copy the model, find each
  layer's magnitude cut with ``torch.kthvalue``, zero the weights below it, and evaluate with a
  ``DataLoader`` of batches of 256 under ``torch.no_grad``.

Both must agree on the accuracy at every position (checked). The model is the trained baseline of
``bench/han_pruning.py`` when its cache exists, else a LeNet-300-100 trained here for one epoch.

    python bench/prune_slider.py [--root ../shared/data/mnist] [--threads 2] [--repeats 5]
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

from _common import DEFAULT_MNIST, machine_note, set_threads  # first: makes idle OpenMP threads sleep

import torch  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from kdviz.data import load_dataset  # noqa: E402
from kdviz.models import build_model  # noqa: E402
from kdviz.prune import MaskedEvaluator, fine_tune, prunable_weights  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = HERE / "cache" / "han_pruning"  # where bench/han_pruning.py keeps its baseline
POSITIONS = [0.5, 0.9, 0.7, 0.95, 0.8, 0.6, 0.98, 0.85, 0.3, 0.92]
TARGET_MS = 300.0


def plain_slider_move(model, sparsity, loader):
    """The straightforward version: copy, per-layer kthvalue cut, zero, evaluate batch by batch."""
    pruned = copy.deepcopy(model)
    with torch.no_grad():
        for p in prunable_weights(pruned).values():
            k = int(sparsity * p.numel() + 0.5)
            if k > 0:
                cut = p.abs().flatten().kthvalue(k).values
                p[p.abs() <= cut] = 0.0
        pruned.eval()
        correct = total = 0
        for x, y in loader:
            correct += int((pruned(x).argmax(1) == y).sum())
            total += len(y)
    return correct / total


def baseline_model(data, cache: Path, seed: int = 0):
    model = build_model("lenet300", input_shape=(1, 28, 28), num_classes=10)
    path = cache / "baseline.pt"
    if path.is_file():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model, f"trained baseline from {path}"
    torch.manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    fine_tune(model, None, data.train_images, data.train_labels, opt, steps=len(data.train_labels) // 128,
              generator=torch.Generator().manual_seed(seed))
    return model, "LeNet-300-100 trained for one epoch here (no han_pruning cache found)"


CPU_MS: list[float] = []  # process CPU time of each timed call (all threads together)


def time_ms(fn):
    """Wall-clock ms of ``fn()`` and its value; the process CPU ms go to ``CPU_MS``."""
    cpu, start = time.process_time(), time.perf_counter()
    value = fn()
    wall = 1000 * (time.perf_counter() - start)
    CPU_MS.append(1000 * (time.process_time() - cpu))
    return wall, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=str(DEFAULT_MNIST), help="folder of the MNIST IDX files")
    parser.add_argument("--baseline-cache", default=str(DEFAULT_CACHE), help="han_pruning's cache folder")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="passes over the slider positions")
    args = parser.parse_args()
    set_threads(args.threads)
    if not Path(args.root).is_dir():
        sys.exit(f"MNIST not found at {args.root}; pass --root (the benchmark's target is defined on MNIST)")
    data = load_dataset("mnist", root=args.root)
    model, origin = baseline_model(data, Path(args.baseline_cache))
    print(f"model: {origin}; {len(data.test_labels):,} test images; {machine_note()}")

    # positions=0: no cache of slider positions, so every timed move really prunes and evaluates
    setup_ms, ev = time_ms(lambda: MaskedEvaluator(model, data.test_images, data.test_labels, positions=0))
    loader = DataLoader(TensorDataset(data.test_images, data.test_labels), batch_size=256)
    plain_model = copy.deepcopy(model)
    ev.accuracy_at(0.5), plain_slider_move(plain_model, 0.5, loader)  # warm-up both

    kdviz_ms, plain_ms, global_ms, kdviz_cpu = [], [], [], []
    for _ in range(args.repeats):
        for s in POSITIONS:
            t_k, acc_k = time_ms(lambda: ev.accuracy_at(s))
            kdviz_cpu.append(CPU_MS[-1])
            t_p, acc_p = time_ms(lambda: plain_slider_move(plain_model, s, loader))
            t_g, _ = time_ms(lambda: ev.accuracy_at(s, scope="global"))
            if abs(acc_k - acc_p) > 1e-9:
                sys.exit(f"implementations disagree at sparsity {s}: kdviz {acc_k} vs plain {acc_p}")
            kdviz_ms.append(t_k), plain_ms.append(t_p), global_ms.append(t_g)
    ev.restore()
    dense_ms = statistics.median(time_ms(lambda: ev.current_accuracy())[0] for _ in range(5))
    cached = MaskedEvaluator(model, data.test_images, data.test_labels)  # the slider's cache of positions (issue 14)
    for s in POSITIONS:
        cached.accuracy_at(s)
    revisit_ms = [time_ms(lambda: cached.accuracy_at(s))[0] for s in POSITIONS]
    cached.restore()

    def stats(xs):
        xs = sorted(xs)
        return f"median {statistics.median(xs):7.1f} ms   p90 {xs[int(0.9 * (len(xs) - 1))]:7.1f} ms   max {xs[-1]:7.1f} ms"

    n = len(kdviz_ms)
    print(f"\nslider moves: {n} per implementation ({args.repeats} passes over {len(POSITIONS)} positions)")
    print(f"  kdviz MaskedEvaluator, per layer : {stats(kdviz_ms)}")
    print(f"  kdviz MaskedEvaluator, global    : {stats(global_ms)}")
    print(f"  plain PyTorch (copy+kthvalue+DataLoader): {stats(plain_ms)}")
    print(f"  kdviz, a revisited position (cached): {stats(revisit_ms)}")
    print(f"  dense forward of 10,000 images alone: {dense_ms:.1f} ms; evaluator setup (once): {setup_ms:.1f} ms")
    med_k, med_p = statistics.median(kdviz_ms), statistics.median(plain_ms)
    cpu_k = statistics.median(kdviz_cpu)
    print(f"  kdviz per-layer move, process CPU time (both threads): median {cpu_k:.1f} ms -> "
          f"{cpu_k / args.threads:.1f} ms wall if {args.threads} cores were free (assuming even use of the threads)")
    print(f"\nspeed-up over plain: {med_p / med_k:.2f}x (median)")
    verdict = "PASS" if med_k < TARGET_MS else "FAIL"
    print(f"target: one slider move < {TARGET_MS:.0f} ms on 2 cores -> kdviz median {med_k:.1f} ms wall: {verdict} "
          f"(load average now {os.getloadavg()[0]:.1f}; CPU-time estimate {cpu_k / args.threads:.1f} ms: "
          f"{'PASS' if cpu_k / args.threads < TARGET_MS else 'FAIL'})")
    print("accuracy at each position (identical in both):",
          ", ".join(f"{s:.0%}: {ev.accuracy_at(s):.4f}" for s in sorted(POSITIONS)))
    ev.restore()


if __name__ == "__main__":
    main()
