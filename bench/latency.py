"""Is the compressed model faster on this CPU? Dense vs shrunk vs sparse CSR vs int8, batch 1 and 256.

For LeNet-300-100 and LeNet-5 (trained here, briefly, seeded), the four forms of
``kdviz.deploy.formats.deploy_forms`` (filters/neurons removed: ``--shrink``; magnitude pruning to
``--sparsity`` stored as torch sparse CSR; torch.ao dynamic int8 of the Linear layers and static int8
(FX graph mode, calibrated on 256 test images) of every layer, on the x86/fbgemm engine) are timed
paired and interleaved (``bench/_paired.py``): each pair times every form once, forward order on even
pairs, reversed on odd ones; each sample is ``--block`` forwards at batch 1 (one forward is ~20 us, below
the clock's useful resolution) or ``--block-large`` forwards at batch 256. A ratio is formed within each pair
against the dense model of the same pair; the result is the median of per-pair ratios with its IQR,
wall and CPU time. Every form's predictions are checked against its source first (agreement of argmax).

Prints a markdown table for the README: per model and form, bytes stored, latency ratio at batch 1 and
256 (< 1: faster than dense), peak working memory at batch 256, agreement.

Usage: python bench/latency.py [--threads 1] [--pairs 30] [--quick]
"""
from __future__ import annotations

import argparse
import datetime
import platform

import _common  # noqa: F401  (thread policy before torch)
import torch
import torch.nn.functional as F
from _paired import describe, interleave, pair_ratios, ratio_stats, timed

from kdviz.data import load_dataset
from kdviz.deploy.formats import deploy_forms, semi_structured_on_cpu, stored_bytes
from kdviz.deploy.latency import fixed_threads, peak_working_bytes, prediction_check
from kdviz.models import build_model

MODELS = {"LeNet-300-100": ("mlp", {"hidden": (300, 100)}), "LeNet-5": ("lenet5", {})}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist" if _common.DEFAULT_MNIST.is_dir() else "digits")
    parser.add_argument("--data-root", default=str(_common.DEFAULT_MNIST))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--block", type=int, default=200, help="forwards per sample at batch 1")
    parser.add_argument("--block-large", type=int, default=5, help="forwards per sample at batch 256")
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--shrink", type=float, default=0.5)
    parser.add_argument("--train-steps", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: digits, 4 pairs, small blocks, few steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.dataset, args.pairs, args.block, args.block_large, args.train_steps = "digits", 4, 20, 1, 30
    return args


def train(kind, options, data, steps, seed):
    torch.manual_seed(seed)
    model = build_model(kind, input_shape=data.input_shape, num_classes=10, **options)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(data.train_labels), (64,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(data.train_images[idx]), data.train_labels[idx]).backward()
        opt.step()
    model.eval()
    with torch.inference_mode():
        accuracy = float((model(data.test_images).argmax(1) == data.test_labels).float().mean())
    return model, accuracy


def blocked(model, x, n):
    def run():
        with torch.inference_mode():
            for _ in range(n):
                model(x)
    return run


def measure(title, model, data, args):
    test = data.test_images
    skipped = {}
    forms = deploy_forms(model, args.sparsity, args.shrink, calibration=test[:256], skipped=skipped)
    for name, reason in skipped.items():
        print(f"{title}: {name} left out: {reason}")
    rows = []
    samples_by_batch = {}
    for batch, block in ((1, args.block), (256, args.block_large)):
        x = test[:batch].contiguous() if len(test) >= batch else test.repeat(-(-batch // len(test)), 1, 1, 1)[:batch]
        sides = {f.name: (lambda run=blocked(f.model, x, block): timed(run)) for f in forms}
        for run in sides.values():
            run()  # warm-up, unpaired
        samples_by_batch[batch] = interleave(sides, args.pairs)
        print(f"{title}, batch {batch} ({block} forwards per sample):")
        for f in forms[1:]:
            print(describe(f"{title} {f.name} / dense, batch {batch}", samples_by_batch[batch][f.name],
                           samples_by_batch[batch]["dense"]))
    x256 = test[:256] if len(test) >= 256 else test.repeat(-(-256 // len(test)), 1, 1, 1)[:256]
    for f in forms:
        agreement, diff = prediction_check(f, x256)
        ratio = {(b, clock): ratio_stats(pair_ratios(samples_by_batch[b][f.name], samples_by_batch[b]["dense"], clock)).median
                 for b in (1, 256) for clock in ("wall", "cpu")}
        rows.append((title, f.name, stored_bytes(f.model), ratio, peak_working_bytes(f.model, x256),
                     agreement, diff, f.note))
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    data = load_dataset(args.dataset, **({"root": args.data_root} if args.dataset == "mnist" else {}))
    rows = []
    with fixed_threads(args.threads):
        note = _common.machine_note()
        print(note)
        for title, (kind, options) in MODELS.items():
            model, accuracy = train(kind, options, data, args.train_steps, args.seed)
            print(f"{title} on {args.dataset}: {args.train_steps} SGD steps, seed {args.seed}, test accuracy {accuracy:.2%}")
            rows += measure(title, model, data, args)
    print(f"\nsemi-structured 2:4 sparse kernels on CPU: {semi_structured_on_cpu() or 'available'}")
    print(f"\n{datetime.date.today()}, {platform.machine()} {note}; {args.pairs} pairs, "
          f"sparsity {args.sparsity:.0%}, shrink {args.shrink:.0%}, dataset {args.dataset}, seed {args.seed}\n")
    print("| model | form | bytes | time / dense, batch 1 (wall; CPU) | time / dense, batch 256 (wall; CPU) "
          "| peak working memory, batch 256 | same prediction |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for title, name, size, ratio, peak, agreement, diff, note in rows:
        print(f"| {title} | {name} ({note}) | {size / 1024:.0f} KiB | {ratio[1, 'wall']:.2f}; {ratio[1, 'cpu']:.2f} | "
              f"{ratio[256, 'wall']:.2f}; {ratio[256, 'cpu']:.2f} | {peak / 1024:.0f} KiB | "
              f"{agreement:.1%} (max logit diff {diff:.1e}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
