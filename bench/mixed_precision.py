"""Post-training range setting and mixed precision on LeNet-5 / MNIST (issue 17, items 2 and 3).

For each seed: train LeNet-5 (plain cross-entropy, SGD with momentum) on MNIST, then without any
retraining

1. range setting: every layer's weights at 8 / 4 / 3 bits (symmetric, per tensor) with activations at
   8 bits, and with activations at the same bits, the ranges set by min-max, percentile (99.99) or
   MSE-optimal clipping (``kdviz.quant.ranges``), calibrated on 256 training images;
2. the per-layer noise at 3 bits (AIMET-style, ``kdviz.quant.layer_noise``) and the worst layer;
3. mixed precision chosen from the sweep (``kdviz.quant.mixed_precision``) against uniform 2 / 3 / 4
   bits at the same size.

    python bench/mixed_precision.py --data-root /work/shared/data/mnist      # full: 3 seeds (minutes)
    python bench/mixed_precision.py --quick                                  # digits, 1 seed, seconds
"""
from __future__ import annotations

import argparse
import statistics
import time

from _common import DEFAULT_MNIST, machine_note, plain_epoch, set_threads

import torch  # noqa: E402

from kdviz.data import load_dataset  # noqa: E402
from kdviz.models import build_model  # noqa: E402
from kdviz.present.ptq import curve_budgets, ptq_evaluator  # noqa: E402
from kdviz.quant.layer_noise import compare_ranges, layer_noise, sensitivity_sweep, worst_layer  # noqa: E402
from kdviz.quant.mixed_precision import mixed_vs_uniform, size_curve  # noqa: E402
from kdviz.quant.ranges import RANGE_METHODS, RangeSpec  # noqa: E402


def train(data, seed: int, epochs: int, max_batches: int | None, channels=(6, 16), hidden: int = 120) -> torch.nn.Module:
    """LeNet-5 with LeCun et al. 1998's sizes by default (6 and 16 filters, 120 hidden units)."""
    torch.manual_seed(seed)
    model = build_model("lenet5", input_shape=tuple(data.train_images.shape[1:]), num_classes=10,
                        channels=tuple(channels), hidden=hidden)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    images, labels = data.train_images, data.train_labels
    if max_batches is not None:
        images, labels = images[: 64 * max_batches], labels[: 64 * max_batches]
    for epoch in range(epochs):
        plain_epoch(model, opt, images, labels, 64, epoch, seed)
    return model.eval()


def one_seed(data, seed: int, args) -> dict:
    start = time.perf_counter()
    model = train(data, seed, args.epochs, args.max_batches, args.channels, args.hidden)
    trained = time.perf_counter() - start
    ev = ptq_evaluator(model, data)
    out = {"float": ev.float_accuracy, "train_s": trained}
    out["ranges_w"] = compare_ranges(ev, (8, 4, 3), RangeSpec(act_bits=8))
    out["ranges_wa"] = compare_ranges(ev, (8, 4, 3), RangeSpec(act_bits=8), activations_at_bits=True)
    spec = RangeSpec("mse", act_bits=8)
    out["noise3"] = layer_noise(ev, 3, spec)
    out["worst"] = worst_layer(out["noise3"])
    sweep = sensitivity_sweep(ev, (2, 3, 4, 5, 6, 8), spec)
    out["equal"] = mixed_vs_uniform(ev, sweep, (2, 3, 4), spec)
    out["between"] = size_curve(ev, sweep, curve_budgets(ev, spec, (2.5, 3.5)), spec)
    out["equal_minmax"] = mixed_vs_uniform(ev, sensitivity_sweep(ev, (2, 3, 4, 5, 6, 8), RangeSpec(act_bits=8)),
                                           (3, 4), RangeSpec(act_bits=8))
    out["seconds"] = time.perf_counter() - start
    return out


def mean_sd(values) -> str:
    values = [100 * v for v in values]
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):6.2f} ± {sd:4.2f}"


def report(results: list[dict], seeds) -> None:
    print(f"float32 test accuracy: {mean_sd([r['float'] for r in results])} %  (seeds {list(seeds)})")
    for key, title in (("ranges_w", "weights at b bits, activations 8 bits"), ("ranges_wa", "weights and activations at b bits")):
        print(f"\nrange setting, {title} (test accuracy %, mean ± sd over seeds):")
        print("  bits " + "".join(f"{m:>20}" for m in RANGE_METHODS))
        for bits in (8, 4, 3):
            cells = [mean_sd([next(row["accuracy"] for row in r[key] if row["range"] == m and row["bits"] == bits)
                              for r in results]) for m in RANGE_METHODS]
            print(f"  {bits:>4} " + "".join(f"{c:>20}" for c in cells))
    print("\nper-layer noise at 3 bits (MSE ranges, activations 8 bits), seed by seed:")
    for seed, r in zip(seeds, results):
        row = ", ".join(f"{n.layer} {n.sqnr_db:.1f} dB / {-100 * n.drop:+.2f} pt" for n in r["noise3"])
        print(f"  seed {seed}: {row}; worst: {r['worst'].layer}")
    for key, label in (("equal", "MSE ranges"), ("equal_minmax", "min-max ranges")):
        print(f"\nmixed precision against uniform at equal size ({label}, activations 8 bits):")
        for i, row in enumerate(results[0][key]):
            b = row.uniform_bits
            uniform = [r[key][i].uniform.accuracy for r in results]
            mixed = [r[key][i].mixed.accuracy for r in results]
            wins = sum(m > u for m, u in zip(mixed, uniform))
            chosen = "; ".join(",".join(str(v) for v in r[key][i].mixed.bits.values()) for r in results)
            print(f"  uniform {b} bits ({row.uniform.size_bytes / 1024:.1f} KB): uniform {mean_sd(uniform)} %, "
                  f"mixed {mean_sd(mixed)} % (bits per layer by seed: {chosen}); mixed ahead on {wins}/{len(results)}")


def report_between(results: list[dict]) -> None:
    print("\nmixed precision between the uniform sizes (MSE ranges, activations 8 bits):")
    for i, avg in enumerate((2.5, 3.5)):
        sizes = [r["between"][i].size_bytes / 1024 for r in results]
        chosen = "; ".join(",".join(str(v) for v in r["between"][i].bits.values()) for r in results)
        print(f"  budget {avg} bits per weight ({max(sizes):.1f} KB): mixed {mean_sd([r['between'][i].accuracy for r in results])} %"
              f" (bits per layer by seed: {chosen})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="digits, 1 seed, a few batches: seconds")
    parser.add_argument("--data-root", default=str(DEFAULT_MNIST), help="folder of MNIST IDX files")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--channels", type=int, nargs=2, default=[6, 16], help="LeNet-5's filters (kdviz's default: 20 50)")
    parser.add_argument("--hidden", type=int, default=120, help="LeNet-5's hidden units (kdviz's default: 500)")
    args = parser.parse_args()
    set_threads(args.threads)
    args.max_batches = None
    if args.quick:
        data, args.seeds, args.epochs, args.max_batches = load_dataset("digits"), [0], 3, 20
    else:
        data = load_dataset("mnist", root=args.data_root)
    print(f"post-training quantization on LeNet-5 {tuple(args.channels)}, {args.hidden} / {data.name}; {machine_note()}; {time.strftime('%Y-%m-%d %H:%M')}")
    results = []
    for seed in args.seeds:
        results.append(one_seed(data, seed, args))
        print(f"  seed {seed}: trained in {results[-1]['train_s']:.0f} s, study done after {results[-1]['seconds']:.0f} s",
              flush=True)
        if len(args.seeds) > 1:  # each seed's numbers as soon as they exist
            report(results[-1:], [seed])
            print(flush=True)
    report(results, args.seeds)
    report_between(results)


if __name__ == "__main__":
    main()
