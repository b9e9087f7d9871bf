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

The speed-up is the median of per-pair ratios plain / kdviz with its IQR, wall and CPU time
(``bench/_paired.py``): each slider move is one pair, kdviz and plain back to back, order reversed
every other move.

    python bench/prune_slider.py [--root ../shared/data/mnist] [--threads 2] [--repeats 5] [--max-repeats 20]
                                 [--quick]
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
from pathlib import Path

from _common import DEFAULT_MNIST, machine_note, set_threads  # first: makes idle OpenMP threads sleep
from _paired import Sample, describe, interleave, load_note, pair_ratios, settled, timed_value

import torch  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from kdviz.data import load_dataset  # noqa: E402
from kdviz.models import build_model  # noqa: E402
from kdviz.models.checkpoint_io import read_state  # noqa: E402
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


def baseline_model(data, cache: Path, seed: int = 0, train_images: int | None = None):
    """han_pruning's trained baseline, else LeNet-300-100 trained here for one epoch (on the first
    ``train_images`` images only when given: the quick run's stand-in)."""
    model = build_model("lenet300", input_shape=(1, 28, 28), num_classes=10)
    path = cache / "baseline.safetensors"
    if path.is_file():
        model.load_state_dict(read_state(path))
        return model, f"trained baseline from {path}"
    torch.manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    images, labels = data.train_images[:train_images], data.train_labels[:train_images]
    fine_tune(model, None, images, labels, opt, steps=len(labels) // 128, generator=torch.Generator().manual_seed(seed))
    return model, f"LeNet-300-100 trained for one epoch on {len(labels):,} images here (no han_pruning cache found)"


def time_ms(fn):
    """Wall-clock ms of ``fn()`` and its value."""
    sample, value = timed_value(fn)
    return 1000 * sample.wall, value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=str(DEFAULT_MNIST), help="folder of the MNIST IDX files")
    parser.add_argument("--baseline-cache", default=str(DEFAULT_CACHE), help="han_pruning's cache folder")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="passes over the slider positions (at least)")
    parser.add_argument("--max-repeats", type=int, default=None,
                        help="add passes until the 95%% interval of the plain/kdviz median is narrower than "
                             "--tolerance, up to this many (default: --repeats)")
    parser.add_argument("--tolerance", type=float, default=0.05, help="relative interval width (default 0.05)")
    parser.add_argument("--quick", action="store_true", help="smoke run: one pass over 4 positions, 2,000 test images")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.max_repeats = 1, 1
    return args


def measure(ev, plain_model, loader, positions: list[float], args) -> dict[str, list[Sample]]:
    """Interleaved pairs, one per slider move: the kdviz move (per layer), the plain move and the kdviz
    global move back to back, order reversed every other move (``bench/_paired.py``); both
    implementations must agree on the accuracy."""
    at = {"pair": 0, "acc": {}}

    def side(name, fn):
        def run():
            sample, at["acc"][name] = timed_value(lambda: fn(positions[at["pair"] % len(positions)]))
            return sample
        return run

    def after_pair(index, samples):
        s = positions[at["pair"] % len(positions)]
        if abs(at["acc"]["kdviz"] - at["acc"]["plain"]) > 1e-9:
            sys.exit(f"implementations disagree at sparsity {s}: kdviz {at['acc']['kdviz']} vs plain {at['acc']['plain']}")
        at["pair"] += 1

    sides = {"kdviz": side("kdviz", ev.accuracy_at), "plain": side("plain", lambda s: plain_slider_move(plain_model, s, loader)),
             "kdviz global": side("global", lambda s: ev.accuracy_at(s, scope="global"))}
    n = len(positions)
    return interleave(sides, args.repeats * n, (args.max_repeats or args.repeats) * n,
                      enough=lambda got: settled(pair_ratios(got["plain"], got["kdviz"]), args.tolerance),
                      on_pair=after_pair)


def stats(samples: list[Sample]) -> str:
    xs = sorted(1000 * s.wall for s in samples)
    cpu = statistics.median(1000 * s.cpu for s in samples)
    return (f"median {statistics.median(xs):7.1f} ms   p90 {xs[int(0.9 * (len(xs) - 1))]:7.1f} ms   "
            f"max {xs[-1]:7.1f} ms   CPU median {cpu:7.1f} ms")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    set_threads(args.threads)
    if not Path(args.root).is_dir():
        sys.exit(f"MNIST not found at {args.root}; pass --root (the benchmark's target is defined on MNIST)")
    data = load_dataset("mnist", root=args.root)
    model, origin = baseline_model(data, Path(args.baseline_cache), train_images=6000 if args.quick else None)
    images, labels = data.test_images, data.test_labels
    if args.quick:
        images, labels = images[:2000], labels[:2000]
    positions = POSITIONS[:4] if args.quick else POSITIONS
    print(f"model: {origin}; {len(labels):,} test images; {machine_note()}")

    # positions=0: no cache of slider positions, so every timed move really prunes and evaluates
    setup_ms, ev = time_ms(lambda: MaskedEvaluator(model, images, labels, positions=0))
    loader = DataLoader(TensorDataset(images, labels), batch_size=256)
    plain_model = copy.deepcopy(model)
    ev.accuracy_at(0.5), plain_slider_move(plain_model, 0.5, loader)  # warm-up both
    samples = measure(ev, plain_model, loader, positions, args)
    ev.restore()
    dense_ms = statistics.median(time_ms(lambda: ev.current_accuracy())[0] for _ in range(5))
    cached = MaskedEvaluator(model, images, labels)  # the slider's cache of positions (issue 14)
    for s in positions:
        cached.accuracy_at(s)
    revisit = [timed_value(lambda: cached.accuracy_at(s))[0] for s in positions]
    cached.restore()

    kdviz, plain = samples["kdviz"], samples["plain"]
    print(f"\nslider moves: {len(kdviz)} per implementation (interleaved pairs over {len(positions)} positions, "
          "order reversed every other move)")
    print(f"  kdviz MaskedEvaluator, per layer : {stats(kdviz)}")
    print(f"  kdviz MaskedEvaluator, global    : {stats(samples['kdviz global'])}")
    print(f"  plain PyTorch (copy+kthvalue+DataLoader): {stats(plain)}")
    print(f"  kdviz, a revisited position (cached): {stats(revisit)}")
    print(f"  dense forward of {len(labels):,} images alone: {dense_ms:.1f} ms; evaluator setup (once): {setup_ms:.1f} ms")
    print("\nper-pair ratios, median [IQR], wall and CPU (CPU: this process, all threads):")
    print(describe("speed-up plain / kdviz per layer (x faster)", plain, kdviz, digits=2))
    print(describe("speed-up plain / kdviz global (x faster)", plain, samples["kdviz global"], digits=2))
    med_k = statistics.median(1000 * s.wall for s in kdviz)
    cpu_k = statistics.median(1000 * s.cpu for s in kdviz)
    verdict = "PASS" if med_k < TARGET_MS else "FAIL"
    print(f"target: one slider move < {TARGET_MS:.0f} ms on 2 cores -> kdviz median {med_k:.1f} ms wall: {verdict} "
          f"(CPU-time estimate {cpu_k / args.threads:.1f} ms if {args.threads} cores were free: "
          f"{'PASS' if cpu_k / args.threads < TARGET_MS else 'FAIL'}); {load_note()}")
    print("accuracy at each position (identical in both):",
          ", ".join(f"{s:.0%}: {ev.accuracy_at(s):.4f}" for s in sorted(positions)))
    ev.restore()


if __name__ == "__main__":
    main()
