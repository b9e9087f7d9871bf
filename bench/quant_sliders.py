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

Each ratio "move / plain eval" is the median of per-pair ratios with its IQR, wall and CPU time
(``bench/_paired.py``): every slider move is paired with a plain eval, back to back, the order
reversed every other pair.

    python bench/quant_sliders.py [--root ../shared/data/mnist] [--threads 2] [--repeats 3] [--max-repeats 10]
                                  [--quick]
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
from _paired import Sample, describe, interleave, load_note, pair_ratios, settled, timed_value  # noqa: E402
from kdviz.data import load_dataset  # noqa: E402
from kdviz.models import build_model  # noqa: E402
from kdviz.models.checkpoint_io import read_state, write_state  # noqa: E402
from kdviz.quant import SliderEvaluator  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_ROOT = HERE.parent.parent / "shared" / "data" / "mnist"
HAN_CACHE = HERE / "cache" / "han_pruning" / "baseline.safetensors"
OWN_CACHE = HERE / "cache" / "quant_sliders" / "lenet300.safetensors"
BITS = [6, 3, 8, 2, 5, 4, 7]
RANKS = [10, 50, 100, 20, 200, 5, 300, 30]
TARGET_MS = 300.0


def train_one_epoch(data, seed: int = 0, train_images: int | None = None) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model("lenet300", input_shape=(1, 28, 28), num_classes=10)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.as_tensor(data.train_images[:train_images]), torch.as_tensor(data.train_labels[:train_images])
    order = torch.randperm(len(x))
    for start in range(0, len(x), 128):
        idx = order[start : start + 128]
        opt.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    return model


def baseline_model(data, quick: bool = False) -> tuple[torch.nn.Module, str]:
    """A cached trained LeNet-300-100, else one trained here for one epoch (and cached); ``quick``:
    without a cache, one epoch over 6,000 images, not cached."""
    model = build_model("lenet300", input_shape=(1, 28, 28), num_classes=10)
    for path, origin in ((HAN_CACHE, "han_pruning's trained baseline"), (OWN_CACHE, "cached 1-epoch model")):
        if path.is_file():
            model.load_state_dict(read_state(path))
            return model, f"{origin} ({path.relative_to(HERE.parent)})"
    if quick:
        return train_one_epoch(data, train_images=6000), "LeNet-300-100 trained here for one epoch on 6,000 images"
    start = time.perf_counter()
    model = train_one_epoch(data)
    OWN_CACHE.parent.mkdir(parents=True, exist_ok=True)
    write_state(OWN_CACHE, model.state_dict())
    return model, f"LeNet-300-100 trained here for one epoch in {time.perf_counter() - start:.0f} s (now cached)"


def time_ms(fn):
    sample, value = timed_value(fn)
    return 1000 * sample.wall, value


def stats(samples: list[Sample]) -> str:
    xs = sorted(1000 * s.wall for s in samples)
    return (f"median {statistics.median(xs):6.1f} ms   p90 {xs[int(0.9 * (len(xs) - 1))]:6.1f} ms   max {xs[-1]:6.1f} ms"
            f"   CPU median {statistics.median(1000 * s.cpu for s in samples):6.1f} ms")


def paired_moves(moves: list, move, plain_eval, args) -> dict[str, list[Sample]]:
    """One interleaved pair per slider move: ``move(position)`` and ``plain_eval()`` back to back, order
    reversed every other pair (``bench/_paired.py``); ``args.repeats`` passes over ``moves`` at least,
    more (up to ``args.max_repeats``) until the move/plain median's 95 % interval is narrow enough."""
    at = {"pair": 0}

    def next_pair(index, samples):
        at["pair"] += 1

    sides = {"move": lambda: timed_value(lambda: move(moves[at["pair"] % len(moves)]))[0],
             "plain": lambda: timed_value(plain_eval)[0]}
    n = len(moves)
    return interleave(sides, args.repeats * n, (args.max_repeats or args.repeats) * n,
                      enough=lambda got: settled(pair_ratios(got["move"], got["plain"]), args.tolerance),
                      on_pair=next_pair)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=str(DEFAULT_ROOT), help="folder of the MNIST IDX files")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="passes over the slider positions (at least)")
    parser.add_argument("--max-repeats", type=int, default=None,
                        help="add passes until the 95%% interval of each move/plain median is narrower than "
                             "--tolerance, up to this many (default: --repeats)")
    parser.add_argument("--tolerance", type=float, default=0.05, help="relative interval width (default 0.05)")
    parser.add_argument("--quick", action="store_true", help="smoke run: one pass over 3 bit widths and 3 ranks, "
                        "2,000 test images")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.max_repeats = 1, 1
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if not Path(args.root).is_dir():
        sys.exit(f"MNIST not found at {args.root}; pass --root (the benchmark's target is defined on MNIST)")
    wall = time.perf_counter()
    data = load_dataset("mnist", root=args.root)
    model, origin = baseline_model(data, quick=args.quick)
    model.eval()
    images, labels = torch.as_tensor(data.test_images), torch.as_tensor(data.test_labels)
    bits, ranks = (BITS[:3], RANKS[:3]) if args.quick else (BITS, RANKS)
    if args.quick:
        images, labels = images[:2000], labels[:2000]
    print(f"model: {origin}; {len(labels):,} test images; torch threads {torch.get_num_threads()}; {load_note()} "
          "(machine shared with other jobs)")

    def plain_eval() -> float:
        with torch.inference_mode():
            return float((model(images).argmax(1) == labels).float().mean())

    setup_ms, ev = time_ms(lambda: SliderEvaluator(model, images, labels))
    first_bits_ms, _ = time_ms(lambda: ev.kmeans(6))  # sorts each layer's weights once
    first_rank_ms, _ = time_ms(lambda: ev.low_rank({"fc1": 50, "fc2": 50}))  # one SVD per layer
    plain_eval()  # warm-up

    def bits_move(position):
        b, init = position
        ev._results.clear(), ev._shared.clear()  # a real re-clustering on every move
        return ev.kmeans(b, init=init)

    def rank_move(r):
        ev._results.clear()
        return ev.low_rank({"fc1": r, "fc2": min(r, 100)})

    inits = ("linear", "density", "random")
    bits_pairs = paired_moves([(b, init) for b in bits for init in inits], bits_move, plain_eval, args)
    rank_pairs = paired_moves(ranks, rank_move, plain_eval, args)
    per_init = {init: bits_pairs["move"][i::len(inits)] for i, init in enumerate(inits)}

    print(f"\nbaseline float accuracy {ev.baseline():.4f} (plain eval agrees: {plain_eval():.4f})")
    print(f"one-time setup: evaluator {setup_ms:.0f} ms, first bits move (sorts weights) {first_bits_ms:.0f} ms, "
          f"first rank move (SVDs) {first_rank_ms:.0f} ms")
    print(f"\nplain eval (one float forward of {len(labels):,} images): {stats(bits_pairs['plain'] + rank_pairs['plain'])}")
    print(f"bits slider, all inits ({len(bits_pairs['move'])} moves):     {stats(bits_pairs['move'])}")
    for init, xs in per_init.items():
        print(f"  k-means {init:<8} init ({len(xs)} moves):      {stats(xs)}")
    print(f"rank slider, fc1+fc2 ({len(rank_pairs['move'])} moves):      {stats(rank_pairs['move'])}")
    print("\nper-pair ratios to a plain float forward, median [IQR], wall and CPU (CPU: this process, all threads):")
    print(describe("bits move (k-means, all inits) / plain eval", bits_pairs["move"], bits_pairs["plain"], digits=2))
    print(describe("rank move (SVD) / plain eval", rank_pairs["move"], rank_pairs["plain"], digits=2))
    for name, xs in (("bits", bits_pairs["move"]), ("rank", rank_pairs["move"])):
        med = statistics.median(1000 * s.wall for s in xs)
        print(f"target: {name} slider move < {TARGET_MS:.0f} ms -> median {med:.1f} ms: "
              f"{'PASS' if med < TARGET_MS else 'FAIL'}")
    print("\naccuracy at each bit width (k-means, no fine-tuning):")
    for init in inits:
        print(f"  {init:<8}" + "  ".join(f"{b}b {ev.kmeans(b, init=init):.4f}" for b in sorted(bits)))
    print("accuracy at each rank (fc1, fc2 <= 100): "
          + "  ".join(f"r={r} {ev.low_rank({'fc1': r, 'fc2': min(r, 100)}):.4f}" for r in sorted(ranks)))
    print(f"\nwall time {time.perf_counter() - wall:.1f} s; {load_note()}")


if __name__ == "__main__":
    main()
