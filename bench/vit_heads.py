"""Are sixteen heads better than one? Accuracy against heads removed (importance vs random order) and the
measured speed of the physically shrunk ViT.

Michel, Levy & Neubig 2019 (section 4.1, fig. 3-4): a ViT (the Transformers page's teacher: 4 pre-norm blocks
of 4 heads, width 64; 7 x 7 patches on MNIST, 2 x 2 on digits) is trained here, seeded, with a plain Adam loop;
then heads are removed one at a time without fine-tuning, (a) the least important first by eq. 4
(E_x |dL/dxi_h| per example on ``--probe`` training images; ``--layer-norm``: each layer l2-normalised,
section 4.2), importance recomputed after each removal, and (b) at random (seeded), the paper's
control. Test accuracy after each removal, mean over ``--seeds``.

Latency: for the first seed's model, the heads chosen by importance at ``--removed`` counts are taken out
physically (``TinyViT.prune_heads``) and timed against the dense model paired and interleaved
(``bench/_paired.py``): each pair times both once, order alternating; a sample is ``--block`` forwards at batch 1
or ``--block-large`` at batch 256; ratios are medians of per-pair ratios with their IQR (< 1: faster). The
shrunk model's predictions are checked against the dense model with those heads gated off.

Prints a markdown table for the README. Usage: python bench/vit_heads.py [--seeds 0 1 2] [--quick]
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
from kdviz.deploy.latency import fixed_threads
from kdviz.models import build_model
from kdviz.prune.heads import gate_rows, iterative_head_pruning, shrink

VIT = {"dim": 64, "depth": 4, "heads": 4, "mlp_ratio": 2.0}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist" if _common.DEFAULT_MNIST.is_dir() else "digits")
    parser.add_argument("--data-root", default=str(_common.DEFAULT_MNIST))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train-steps", type=int, default=1500)
    parser.add_argument("--probe", type=int, default=512, help="training images the importance is averaged over")
    parser.add_argument("--test", type=int, default=10000, help="test images the accuracy is measured on")
    parser.add_argument("--removed", type=int, nargs="+", default=[6, 12], help="heads removed in the timed models")
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--block", type=int, default=50, help="forwards per sample at batch 1")
    parser.add_argument("--block-large", type=int, default=3, help="forwards per sample at batch 256")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--layer-norm", action="store_true", help="rank layer-normalised eq. 4 scores (section 4.2)")
    parser.add_argument("--quick", action="store_true", help="smoke run: digits, one seed, 40 steps, 4 pairs")
    args = parser.parse_args(argv)
    if args.quick:
        args.dataset, args.seeds, args.train_steps, args.probe, args.test = "digits", [0], 40, 64, 450
        args.pairs, args.block, args.block_large, args.removed = 4, 5, 1, [6]
    return args


def train(data, steps: int, seed: int):
    """The ViT trained with Adam (lr 1e-3, cosine, batch 128) for ``steps`` steps, seeded."""
    torch.manual_seed(seed)
    patch = 2 if data.input_shape[-1] == 8 else 7
    model = build_model("vit", input_shape=data.input_shape, num_classes=10, patch=patch, **VIT)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(data.train_labels), (128,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(data.train_images[idx]), data.train_labels[idx]).backward()
        opt.step()
        schedule.step()
    return model.eval()


def curves(model, data, args, seed: int):
    probe = data.train_images[:args.probe], data.train_labels[:args.probe]
    test = data.test_images[:args.test], data.test_labels[:args.test]
    one_head = 1.0 / (len(model.heads_per_layer) * model.heads_per_layer[0])
    by_importance = iterative_head_pruning(model, probe, test, fraction=one_head, normalize_layers=args.layer_norm)
    at_random = iterative_head_pruning(model, probe, test, fraction=one_head, order="random", seed=seed)
    return by_importance, at_random


def blocked(model, x, n):
    def run():
        with torch.inference_mode():
            for _ in range(n):
                model(x)
    return run


def time_shrunk(model, steps, data, args) -> list[tuple]:
    """Paired latency of each shrunk model against the dense one, batch 1 and 256; rows for the table."""
    forms = {"dense": model}
    for count in args.removed:
        removed = next(s.removed for s in steps if s.heads_removed == count)
        small = shrink(model, removed).eval()
        with torch.inference_mode():
            gated = model.forward_detailed(data.test_images[:256], gate_rows(torch.as_tensor(removed))).logits
            diff = float((small(data.test_images[:256]) - gated).abs().max())
        print(f"{count} heads removed: heads per layer {small.heads_per_layer}, max logit difference to the gated "
              f"model {diff:.1e}")
        forms[f"{count} heads removed"] = small
    test = data.test_images
    samples = {}
    for batch, block in ((1, args.block), (256, args.block_large)):
        x = test[:batch].contiguous() if len(test) >= batch else test.repeat(-(-batch // len(test)), 1, 1, 1)[:batch]
        sides = {name: (lambda run=blocked(m, x, block): timed(run)) for name, m in forms.items()}
        for run in sides.values():
            run()  # warm-up, unpaired
        samples[batch] = interleave(sides, args.pairs)
        print(f"batch {batch} ({block} forwards per sample):")
        for name in list(forms)[1:]:
            print(describe(f"{name} / dense, batch {batch}", samples[batch][name], samples[batch]["dense"]))
    rows = []
    for name, m in list(forms.items())[1:]:
        params = sum(p.numel() for p in m.parameters())
        ratio = {b: ratio_stats(pair_ratios(samples[b][name], samples[b]["dense"], "wall")) for b in (1, 256)}
        rows.append((name, params, ratio))
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    data = load_dataset(args.dataset, **({"root": args.data_root} if args.dataset == "mnist" else {}))
    with fixed_threads(args.threads):
        note = _common.machine_note()
        print(note)
        runs = []
        for seed in args.seeds:
            model = train(data, args.train_steps, seed)
            runs.append((seed, model, *curves(model, data, args, seed)))
            print(f"seed {seed}: importance order " + " ".join(f"{s.heads_removed}:{s.accuracy:.3f}" for s in runs[-1][2]))
            print(f"seed {seed}: random order     " + " ".join(f"{s.heads_removed}:{s.accuracy:.3f}" for s in runs[-1][3]))
        timing = time_shrunk(runs[0][1], runs[0][2], data, args)
    dense_params = sum(p.numel() for p in runs[0][1].parameters())
    print(f"\n{datetime.date.today()}, {platform.machine()} {note}; dataset {args.dataset}, seeds {args.seeds}, "
          f"{args.train_steps} Adam steps, probe {args.probe} training images, {args.test} test images, {args.pairs} pairs, "
          f"importance {'layer-normalised' if args.layer_norm else 'raw'}\n")
    print("| heads removed (of 16) | accuracy, importance order | accuracy, random order |")
    print("|---:|---:|---:|")
    for i, step in enumerate(runs[0][2]):
        imp = sum(r[2][i].accuracy for r in runs) / len(runs)
        rnd = sum(r[3][i].accuracy for r in runs) / len(runs)
        print(f"| {step.heads_removed} | {imp:.2%} | {rnd:.2%} |")
    print(f"\n| model (seed {args.seeds[0]}) | parameters | time / dense, batch 1 (wall) | time / dense, batch 256 (wall) |")
    print("|---|---:|---:|---:|")
    print(f"| dense | {dense_params:,} | 1 | 1 |")
    for name, params, ratio in timing:
        print(f"| {name} | {params:,} | {ratio[1].median:.2f} [IQR {ratio[1].q1:.2f}-{ratio[1].q3:.2f}] | "
              f"{ratio[256].median:.2f} [IQR {ratio[256].q1:.2f}-{ratio[256].q3:.2f}] |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
