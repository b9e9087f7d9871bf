"""How long one move of the bits slider and of the rank slider takes: re-quantize LeNet-300-100 and
re-evaluate it on the 10,000 MNIST test images (issue 8 target: under 300 ms on 2 CPU cores).

Measured in the same run, on the same model:

* ``plain eval``: one forward pass of the float model over the 10,000 test images under
  ``torch.inference_mode`` (the floor: any slider move has to evaluate the model once);
* ``bits slider``: ``SliderEvaluator.kmeans(bits, init)``: k-means weight sharing of all three
  layers at a new bit width (Lloyd from scratch on the cached sorted weights) and the evaluation.
  Results are cleared before every move, so each move really re-clusters;
* ``rank slider``: ``SliderEvaluator.low_rank``: fc1 and fc2 truncated to a new rank from the
  cached SVDs, and the evaluation (results cleared before every move).

The model is ``bench/han_pruning.py``'s trained baseline when its cache exists, else a
LeNet-300-100 trained here for one epoch (cached in bench/cache/quant_sliders).

    python bench/quant_sliders.py [--root ../shared/data/mnist] [--threads 2] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep: fair on a shared machine
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kdviz.data import load_dataset  # noqa: E402
from kdviz.models import build_model  # noqa: E402
from kdviz.quant import SliderEvaluator  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_ROOT = HERE.parent.parent / "shared" / "data" / "mnist"
HAN_CACHE = HERE / "cache" / "han_pruning" / "baseline.pt"
OWN_CACHE = HERE / "cache" / "quant_sliders" / "lenet300.pt"
BITS = [6, 3, 8, 2, 5, 4, 7]
RANKS = [10, 50, 100, 20, 200, 5, 300, 30]
TARGET_MS = 300.0


def train_one_epoch(data, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model("lenet300", input_shape=(1, 28, 28), num_classes=10)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.as_tensor(data.train_images), torch.as_tensor(data.train_labels)
    order = torch.randperm(len(x))
    for start in range(0, len(x), 128):
        idx = order[start : start + 128]
        opt.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    return model


def baseline_model(data) -> tuple[torch.nn.Module, str]:
    model = build_model("lenet300", input_shape=(1, 28, 28), num_classes=10)
    for path, origin in ((HAN_CACHE, "han_pruning's trained baseline"), (OWN_CACHE, "cached 1-epoch model")):
        if path.is_file():
            model.load_state_dict(torch.load(path, weights_only=True))
            return model, f"{origin} ({path.relative_to(HERE.parent)})"
    start = time.perf_counter()
    model = train_one_epoch(data)
    OWN_CACHE.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), OWN_CACHE)
    return model, f"LeNet-300-100 trained here for one epoch in {time.perf_counter() - start:.0f} s (now cached)"


def time_ms(fn):
    start = time.perf_counter()
    value = fn()
    return 1000 * (time.perf_counter() - start), value


def stats(xs: list[float]) -> str:
    xs = sorted(xs)
    return f"median {statistics.median(xs):6.1f} ms   p90 {xs[int(0.9 * (len(xs) - 1))]:6.1f} ms   max {xs[-1]:6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=str(DEFAULT_ROOT), help="folder of the MNIST IDX files")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="passes over the slider positions")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not Path(args.root).is_dir():
        sys.exit(f"MNIST not found at {args.root}; pass --root (the benchmark's target is defined on MNIST)")
    wall = time.perf_counter()
    data = load_dataset("mnist", root=args.root)
    model, origin = baseline_model(data)
    model.eval()
    images, labels = torch.as_tensor(data.test_images), torch.as_tensor(data.test_labels)
    print(f"model: {origin}; {len(labels):,} test images; torch threads {torch.get_num_threads()}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (machine shared with other jobs)")

    def plain_eval() -> float:
        with torch.inference_mode():
            return float((model(images).argmax(1) == labels).float().mean())

    setup_ms, ev = time_ms(lambda: SliderEvaluator(model, images, labels))
    first_bits_ms, _ = time_ms(lambda: ev.kmeans(6))  # sorts each layer's weights once
    first_rank_ms, _ = time_ms(lambda: ev.low_rank({"fc1": 50, "fc2": 50}))  # one SVD per layer
    plain_eval()  # warm-up

    plain_ms, bits_ms, rank_ms = [], [], []
    per_init: dict[str, list[float]] = {"linear": [], "density": [], "random": []}
    for _ in range(args.repeats):
        for b in BITS:
            for init in per_init:
                ev._results.clear(), ev._shared.clear()  # a real re-clustering on every move
                t, _ = time_ms(lambda: ev.kmeans(b, init=init))
                bits_ms.append(t), per_init[init].append(t)
            plain_ms.append(time_ms(plain_eval)[0])
        for r in RANKS:
            ev._results.clear()
            t, _ = time_ms(lambda: ev.low_rank({"fc1": r, "fc2": min(r, 100)}))
            rank_ms.append(t)
            plain_ms.append(time_ms(plain_eval)[0])

    plain_med = statistics.median(plain_ms)
    print(f"\nbaseline float accuracy {ev.baseline():.4f} (plain eval agrees: {plain_eval():.4f})")
    print(f"one-time setup: evaluator {setup_ms:.0f} ms, first bits move (sorts weights) {first_bits_ms:.0f} ms, "
          f"first rank move (SVDs) {first_rank_ms:.0f} ms")
    print(f"\nplain eval (one float forward of 10,000 images): {stats(plain_ms)}")
    print(f"bits slider, all inits ({len(bits_ms)} moves):     {stats(bits_ms)}   "
          f"ratio to plain eval {statistics.median(bits_ms) / plain_med:.2f}x")
    for init, xs in per_init.items():
        print(f"  k-means {init:<8} init ({len(xs)} moves):      {stats(xs)}")
    print(f"rank slider, fc1+fc2 ({len(rank_ms)} moves):      {stats(rank_ms)}   "
          f"ratio to plain eval {statistics.median(rank_ms) / plain_med:.2f}x")
    for name, xs in (("bits", bits_ms), ("rank", rank_ms)):
        med = statistics.median(xs)
        print(f"target: {name} slider move < {TARGET_MS:.0f} ms -> median {med:.1f} ms: "
              f"{'PASS' if med < TARGET_MS else 'FAIL'}")
    print("\naccuracy at each bit width (k-means, no fine-tuning):")
    for init in per_init:
        print(f"  {init:<8}" + "  ".join(f"{b}b {ev.kmeans(b, init=init):.4f}" for b in sorted(BITS)))
    print("accuracy at each rank (fc1, fc2 <= 100): "
          + "  ".join(f"r={r} {ev.low_rank({'fc1': r, 'fc2': min(r, 100)}):.4f}" for r in sorted(RANKS)))
    print(f"\nwall time {time.perf_counter() - wall:.1f} s; load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
