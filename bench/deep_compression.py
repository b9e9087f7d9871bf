"""Deep Compression on LeNet-300-100 / MNIST: the ``deep-compression`` reproduction, its stages in
detail, and accuracy against bits.

Han, Mao, Dally, "Deep Compression" (ICLR 2016), table 1: LeNet-300-100 goes from 1.64% to 1.58%
test error and from 1070 KB to 27 KB (40x).

1. The reproduction through the engine (the same code as ``kdviz reproduce deep-compression``,
   ``kdviz/reproduce/deep_compression.py``): per seed ``han-pruning``'s dense baseline (shared with
   ``bench/han_pruning.py`` in the same ``--runs-root``: trained once) and prune-and-retrain run, then
   the Deep Compression k-means run: ``--bits`` (6) per layer, linear initialisation, pruned weights
   excluded, the centroids (and biases) fine-tuned with the indices fixed (eq. 3).
2. Huffman coding of the indices and of the relative-index gaps (5 bits, fillers), measured from
   the finished run folders (``kdviz.methods.deep_compression_report``): the model is decoded back
   from the bytes and evaluated, so the reported size is the size of that model.
3. Accuracy against bits (2..8) for linear, density and random initialisation, without and with a
   short centroid fine-tuning, in-process from the first seed's pruned run (what the reproduction
   does not measure).

``--quick``: the reproduction's quick mode in a temporary runs root and 20 fine-tuning steps per
sweep point.

    python bench/deep_compression.py [--quick] [--seeds N] [--bits 6] [--root ../shared/data/mnist] [--runs-root DIR]
"""
from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from _common import DEFAULT_MNIST, ROOT, machine_note  # first: makes idle OpenMP threads sleep

import torch  # noqa: E402

from kdviz.data import load_dataset  # noqa: E402
from kdviz.engine import load_trained_model  # noqa: E402
from kdviz.engine.run_folder import read_config  # noqa: E402
from kdviz.methods.deep_compression_report import compression_report  # noqa: E402
from kdviz.prune import accuracy, fine_tune, prunable_weights  # noqa: E402
from kdviz.quant import attach_shared_model, centroid_parameters, kmeans_quantize, model_size  # noqa: E402
from kdviz.reproduce import run_plan, table_lines  # noqa: E402
from kdviz.reproduce.deep_compression import BITS, COMPRESSED_ROW, DEEP_COMPRESSION, plan_runs  # noqa: E402

DEFAULT_RUNS = ROOT / "bench" / "cache" / "reproduce"  # shared with bench/han_pruning.py: one baseline
HAN = {"error": (1.64, 1.58), "kb": (1070, 27), "rate": 40}
LAYERS = ("fc1", "fc2", "fc3")
QUICK_SWEEP_STEPS = 20


def log(msg: str) -> None:
    print(msg, flush=True)


def quantize_and_finetune(pruned, masks, data, bits, init, lr, seed, steps):
    """k-means on every layer (pruned weights excluded), then ``steps`` of centroid + bias
    fine-tuning (SGD, cosine per epoch). Returns (model with shared weights attached, accuracy before fine-tuning)."""
    model = copy.deepcopy(pruned)
    shared = {n: kmeans_quantize(getattr(model, n).weight, bits, init=init, mask=masks[f"{n}.weight"], seed=seed)
              for n in LAYERS}
    attach_shared_model(model, shared)
    acc0 = accuracy(model, data.test_images, data.test_labels)
    params = centroid_parameters(model) + [getattr(model, n).bias for n in LAYERS]
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    per_epoch, done = math.ceil(len(data.train_labels) / 128), 0
    while done < steps:
        n = min(per_epoch, steps - done)
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * done / steps))
        fine_tune(model, None, data.train_images, data.train_labels, opt, n, 128, generator=g)
        done += n
    return model, acc0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=str(DEFAULT_MNIST), help="the MNIST IDX folder")
    parser.add_argument("--runs-root", default=str(DEFAULT_RUNS), help="where the runs go (a finished baseline is reused)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 (the table shows mean +- std and every seed)")
    parser.add_argument("--bits", type=int, default=BITS, help="k-means bits per layer (the paper: 6 for LeNet-300-100)")
    parser.add_argument("--sweep-steps", type=int, default=150, help="fine-tuning steps per point of the bits sweep (0: no sweep)")
    parser.add_argument("--sweep-lr", type=float, default=1e-4, help="centroid learning rate of the bits sweep's short "
                        "fine-tuning (few steps, and low widths have far to move)")
    parser.add_argument("--figure", default=None, help="write the first seed's size waterfall as HTML here")
    parser.add_argument("--quick", action="store_true", help="the quick reproduction in a temporary runs root, "
                        f"{QUICK_SWEEP_STEPS} steps per sweep point")
    args = parser.parse_args(argv)
    if args.quick:
        args.sweep_steps = min(args.sweep_steps, QUICK_SWEEP_STEPS)
    return args


def print_stages(report, bits: int) -> None:
    """The first seed's four stages, per-layer Huffman sizes and bits per entry."""
    stages, huffman = report.stages, report.layer_sizes
    n_weights = stages[0].nbytes / 4
    print("\n=== Deep Compression, LeNet-300-100 on MNIST, first seed (weights only, 1 KB = 1000 B) ===")
    print(f"{'stage':22}{'test error':>12}{'size':>12}{'rate':>9}")
    for stage in stages:
        print(f"{stage.name:22}{100 * stage.error:>11.2f}%{stage.nbytes / 1000:>9.1f} KB{4 * n_weights / stage.nbytes:>8.1f}x")
    if report.accuracy_before_finetune is not None:
        print(f"{'(k-means before fine-tuning)':22}{100 * (1 - report.accuracy_before_finetune):>11.2f}%")
    print(f"{'Han et al. 2016':22}{HAN['error'][0]:>6.2f}% -> {HAN['error'][1]:.2f}%  "
          f"{HAN['kb'][0]} KB -> {HAN['kb'][1]} KB  {HAN['rate']}x")
    print("\nper layer (Huffman):  layer  kept   entries  index bits  gap bits  codebook+tables  rate")
    for s in huffman:
        print(f"{'':22}{s.name:5}{100 * s.n_kept / s.n_weights:6.1f}%{s.n_entries:>9,}{s.value_bits:>12,}"
              f"{s.sparse_index_bits:>10,}{s.codebook_bits + s.table_bits:>17,}{s.rate:>7.1f}x")
    entries = sum(s.n_entries for s in huffman)
    print(f"Huffman bits per stored entry: index {sum(s.value_bits for s in huffman) / entries:.2f} (fixed {bits}), "
          f"gap {sum(s.sparse_index_bits for s in huffman) / entries:.2f} (fixed 5)")


def print_with_biases(report, pruned) -> None:
    n_weights, n_bias = report.stages[0].nbytes / 4, sum(getattr(pruned, n).bias.numel() for n in LAYERS)
    size = model_size(report.encoded, n_bias)
    print(f"with biases (float32, {n_bias}): {(4 * (n_weights + n_bias)) / 1000:.1f} KB -> "
          f"{(size.compressed_bits / 8 + 4 * n_bias) / 1000:.1f} KB, {size.rate_with_biases:.1f}x")
    print(f"decoded-from-bytes model error {100 * report.stages[3].error:.2f}% (fine-tuned shared model "
          f"{100 * report.stages[2].error:.2f}%)")


def print_sweep(pruned, data, args) -> None:
    masks = {n: w.detach() != 0 for n, w in prunable_weights(pruned).items()}
    err = lambda m: 100 * (1 - accuracy(m, data.test_images, data.test_labels))  # noqa: E731
    print(f"\naccuracy against bits (first seed's pruned run; k-means, then {args.sweep_steps} fine-tuning steps at lr "
          f"{args.sweep_lr:g}), test error %:")
    print(f"{'bits':>6}" + "".join(f"{i + ' (no ft)':>18}{i + ' (ft)':>14}" for i in ("linear", "density", "random")))
    for bits in range(2, 9):
        row = f"{bits:>6}"
        for init in ("linear", "density", "random"):
            m, a0 = quantize_and_finetune(pruned, masks, data, bits, init, args.sweep_lr, 0, args.sweep_steps)
            row += f"{100 * (1 - a0):>18.2f}{err(m):>14.2f}"
        print(row, flush=True)


def reproduce(args, runs_root: str, t0: float):
    """Train the reproduction's runs, print its table; the finished result."""
    def progress(result) -> None:
        ended = ", ".join(f"{key} {run['state']}" for key, run in result.runs.items())
        log(f"  [{time.perf_counter() - t0:5.0f} s] {ended}")

    seeds = list(range(args.seeds))
    result = run_plan(DEEP_COMPRESSION, plan_runs(seeds, args.quick, args.bits), seeds, args.quick, runs_root, args.root,
                      on_progress=progress)
    print(f"\n{result.title} ({result.settings}; {args.bits}-bit)\n" + "\n".join(table_lines(result.rows)))
    if result.state != "finished":
        sys.exit(f"reproduction {result.state}: {result.runs}")
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    if not Path(args.root).is_dir():
        sys.exit(f"MNIST not found at {args.root}; pass --root")
    log(f"deep-compression, LeNet-300-100 on MNIST; {machine_note()}")
    with tempfile.TemporaryDirectory(prefix="dc-quick-") as scratch_root:
        result = reproduce(args, scratch_root if args.quick else args.runs_root, t0)
        quantize_run = result.row(COMPRESSED_ROW).runs[0]
        prune_run = read_config(quantize_run).init_from
        report = compression_report(prune_run, quantize_run)
        pruned = load_trained_model(prune_run)
        print_stages(report, args.bits)
        print_with_biases(report, pruned)
        if args.sweep_steps > 0:
            print_sweep(pruned, load_dataset("mnist", root=args.root), args)
        if args.figure:
            from kdviz.figures.quantization import size_waterfall

            size_waterfall(report.sizes()).write_html(args.figure)
            print(f"waterfall written to {args.figure}")
    wall = time.perf_counter() - t0
    rate, delta = report.stages[0].nbytes / report.stages[3].nbytes, 100 * (report.stages[3].error - report.stages[0].error)
    ok_rate, ok_err, ok_time = rate >= 35, round(delta, 6) <= 0.1, wall < 20 * 60  # errors are whole test images
    print(f"\ntargets (first seed): >= 35x: {'PASS' if ok_rate else 'FAIL'} ({rate:.1f}x); error change <= +0.1 pp vs the "
          f"dense baseline: {'PASS' if ok_err else 'FAIL'} ({delta:+.2f} pp); under 20 min: {'PASS' if ok_time else 'FAIL'} "
          f"({wall / 60:.1f} min wall for this script; load average now {os.getloadavg()[0]:.1f})"
          f"{'; quick smoke run: far from the paper by design' if args.quick else f'; result {result.path}'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
