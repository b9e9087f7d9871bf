"""Han et al. 2015 on LeNet-300-100 / MNIST: train, prune iteratively with retraining, compare.

Han, Pool, Tran, Dally, "Learning both Weights and Connections for Efficient Neural Networks"
(NeurIPS 2015), table 1 and table 2: LeNet-300-100 goes from 1.64% to 1.59% test error while
keeping 8% of its weights (12x fewer); per layer fc1 keeps 8%, fc2 9%, fc3 26%.

What this script does (issue 7's benchmark):
1. Train the dense baseline (SGD with momentum, cosine learning rate, weight decay), or reuse it
   from ``--baseline-cache`` when a baseline trained with the same settings is there.
2. Prune iteratively with retraining (Han et al. section 3.3): ``--rounds`` rounds whose per-layer
   targets follow Zhu & Gupta's cubic AGP curve up to Han's per-layer sparsities (fc1 92%, fc2 91%,
   fc3 74%); each round magnitude-prunes (already pruned weights stay pruned) and retrains for
   ``--retrain-epochs`` at a tenth of the baseline learning rate with the masks re-applied after
   every optimizer step; a final retraining of ``--final-epochs`` follows.
3. Print baseline and pruned error, weights kept per layer and overall, beside Han's table, plus
   the storage (dense / CSR / relative index) and FLOPs, and the wall time. The pruned model is
   saved with its masks and reloaded to check it is still pruned.

Pass criteria (issue 7): at least 10x fewer weights, at most +0.1 percentage points of error,
under 20 minutes on 2 CPU cores.

    python bench/han_pruning.py [--root ../shared/data/mnist] [--baseline-cache bench/cache/han_pruning]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

from _common import DEFAULT_MNIST, machine_note, set_threads  # first: makes idle OpenMP threads sleep

import torch  # noqa: E402

from kdviz.data import load_dataset  # noqa: E402
from kdviz.models import build_model  # noqa: E402
from kdviz.prune import (  # noqa: E402
    accuracy,
    agp_targets,
    count_flops,
    fine_tune,
    iterative_prune,
    load_pruned,
    prunable_weights,
    save_pruned,
    size_report,
)

HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = HERE / "cache" / "han_pruning"  # also read by bench/deep_compression.py and prune_slider.py
HAN = {"baseline_error": 1.64, "pruned_error": 1.59, "kept": {"fc1": 8, "fc2": 9, "fc3": 26}, "total_kept": 8, "compression": 12}
TARGETS = {"fc1.weight": 0.92, "fc2.weight": 0.91, "fc3.weight": 0.74}  # 1 - Han's kept fractions


def cosine_lr(base: float, epoch: int, epochs: int) -> float:
    return base * 0.5 * (1 + math.cos(math.pi * epoch / epochs))


def train_epochs(model, masks, data, base_lr, epochs, args, generator, log=None):
    """``epochs`` epochs of SGD (momentum 0.9, weight decay) with a per-epoch cosine learning rate."""
    opt = torch.optim.SGD(model.parameters(), lr=base_lr, momentum=0.9, weight_decay=args.weight_decay)
    steps = math.ceil(len(data.train_labels) / args.batch_size)
    for epoch in range(epochs):
        for group in opt.param_groups:
            group["lr"] = cosine_lr(base_lr, epoch, epochs)
        loss = fine_tune(model, masks, data.train_images, data.train_labels, opt, steps, args.batch_size, generator=generator)
        if log:
            log(f"    epoch {epoch + 1:2d}/{epochs}  lr {opt.param_groups[0]['lr']:.4f}  train loss {loss:.4f}  "
                f"test error {100 * (1 - accuracy(model, data.test_images, data.test_labels)):.2f}%")


def baseline(data, args, log) -> tuple[torch.nn.Module, str]:
    """The trained dense LeNet-300-100, from the cache when its settings match."""
    settings = {"epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size, "weight_decay": args.weight_decay,
                "seed": args.seed, "model": "lenet300"}
    cache = Path(args.baseline_cache)
    torch.manual_seed(args.seed)
    model = build_model("lenet300", input_shape=(1, 28, 28), num_classes=10)
    meta_file, weights_file = cache / "baseline.json", cache / "baseline.pt"
    if meta_file.is_file() and weights_file.is_file() and json.loads(meta_file.read_text()).get("settings") == settings:
        model.load_state_dict(torch.load(weights_file, weights_only=True))
        return model, f"reused from {weights_file}"
    start = time.perf_counter()
    train_epochs(model, None, data, args.lr, args.epochs, args, torch.Generator().manual_seed(args.seed), log)
    cache.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), weights_file.with_suffix(".tmp"))
    os.replace(weights_file.with_suffix(".tmp"), weights_file)
    meta_file.write_text(json.dumps({"settings": settings, "train_seconds": time.perf_counter() - start}, indent=2))
    return model, f"trained here in {time.perf_counter() - start:.0f} s, saved to {weights_file}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=str(DEFAULT_MNIST))
    parser.add_argument("--baseline-cache", default=str(DEFAULT_CACHE),
                        help="folder for the trained baseline (reused when its settings match) and the pruned model")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the target is 2 CPU cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=30, help="baseline training epochs")
    parser.add_argument("--lr", type=float, default=0.05, help="baseline learning rate (retraining uses a tenth)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--rounds", type=int, default=6, help="prune-retrain rounds on the AGP curve")
    parser.add_argument("--retrain-epochs", type=int, default=2, help="retraining epochs after each round")
    parser.add_argument("--final-epochs", type=int, default=8, help="final retraining epochs")
    args = parser.parse_args()
    t0 = time.perf_counter()
    set_threads(args.threads)
    if not Path(args.root).is_dir():
        sys.exit(f"MNIST not found at {args.root}; pass --root")
    data = load_dataset("mnist", root=args.root)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    log(f"LeNet-300-100 on MNIST ({len(data.train_labels):,} train / {len(data.test_labels):,} test); {machine_note()}")

    model, origin = baseline(data, args, log)
    base_err = 100 * (1 - accuracy(model, data.test_images, data.test_labels))
    dense_flops = count_flops(model)
    log(f"baseline ({origin}): test error {base_err:.2f}%")
    stds = {n: float(p.detach().double().std(correction=0)) for n, p in prunable_weights(model).items()}

    g = torch.Generator().manual_seed(args.seed + 1)
    retrain_lr = args.lr / 10
    evaluate = lambda m: accuracy(m, data.test_images, data.test_labels)  # noqa: E731

    def on_round(r):
        kept = ", ".join(f"{n.split('.')[0]} {100 * (1 - s):.1f}%" for n, s in r.sparsity.items())
        log(f"  round {r.round}/{args.rounds}: kept {kept}; error pruned {100 * (1 - r.accuracy_pruned):.2f}% -> "
            f"retrained {100 * (1 - r.accuracy_retrained):.2f}%  ({r.seconds:.0f} s)")

    t_prune = time.perf_counter()
    masks, _ = iterative_prune(
        model, agp_targets(TARGETS, args.rounds),
        lambda m, mk: train_epochs(m, mk, data, retrain_lr, args.retrain_epochs, args, g), evaluate, on_round=on_round)
    log(f"  final retraining, {args.final_epochs} epochs at lr {retrain_lr:g} (cosine):")
    train_epochs(model, masks, data, retrain_lr, args.final_epochs, args, g, log)
    prune_seconds = time.perf_counter() - t_prune
    pruned_err = 100 * (1 - evaluate(model))

    path = save_pruned(model, masks, Path(args.baseline_cache) / "pruned.pt")
    reloaded = build_model("lenet300", input_shape=(1, 28, 28), num_classes=10)
    load_pruned(reloaded, path)
    reload_err = 100 * (1 - evaluate(reloaded))
    still_pruned = all(bool((p.detach()[~masks[n]] == 0).all()) for n, p in prunable_weights(reloaded).items())

    report = size_report(model)
    flops = count_flops(model)
    kept = {l.layer: 100 * l.kept_fraction for l in report.layers}
    total_kept = 100 * report.nonzero / report.weights
    wall = time.perf_counter() - t0

    print("\n=== Han et al. 2015, LeNet-300-100 on MNIST: paper vs this run ===")
    print(f"{'':28}{'Han et al. 2015':>18}{'kdviz (this run)':>20}")
    print(f"{'baseline test error':28}{HAN['baseline_error']:>17.2f}%{base_err:>19.2f}%")
    print(f"{'pruned + retrained error':28}{HAN['pruned_error']:>17.2f}%{pruned_err:>19.2f}%")
    print(f"{'error change (pp)':28}{HAN['pruned_error'] - HAN['baseline_error']:>+18.2f}{pruned_err - base_err:>+20.2f}")
    for layer in ("fc1", "fc2", "fc3"):
        print(f"{'weights kept ' + layer:28}{HAN['kept'][layer]:>17d}%{kept[layer]:>19.1f}%")
    print(f"{'weights kept, all layers':28}{HAN['total_kept']:>17d}%{total_kept:>19.2f}%")
    print(f"{'compression (weights)':28}{HAN['compression']:>17d}x{report.weight_compression:>19.1f}x")
    for layer in report.layers:
        name = layer.layer + ".weight"
        q = report_threshold(model, masks, name) / stds[name]
        print(f"  {layer.layer}: smallest kept |w| after retraining / std(baseline weights) = {q:.2f} (~ Han's quality parameter)")
    print(f"\nstorage (weights + biases): dense {report.total('dense'):,} B; CSR (fp32 values, int32 indices) "
          f"{report.total('csr'):,} B; relative index (5-bit, fp32 values) {report.total('relative'):,} B "
          f"({report.total('dense') / report.total('relative'):.1f}x smaller; {sum(l.fillers for l in report.layers)} fillers)")
    print(f"FLOPs per image: dense {dense_flops['flops']:,}; after pruning {flops['nonzero_flops']:,} "
          f"({100 * flops['nonzero_flops'] / dense_flops['flops']:.1f}%; Han et al. report 8%)")
    print(f"saved with masks to {path}; reloaded: error {reload_err:.2f}%, still pruned: {still_pruned}")
    ok_ratio, ok_err, ok_time = report.weight_compression >= 10, pruned_err - base_err <= 0.1, wall < 20 * 60
    print(f"\ntargets: >= 10x fewer weights: {'PASS' if ok_ratio else 'FAIL'} ({report.weight_compression:.1f}x); "
          f"error change <= +0.1 pp: {'PASS' if ok_err else 'FAIL'} ({pruned_err - base_err:+.2f} pp); "
          f"under 20 min: {'PASS' if ok_time else 'FAIL'} ({wall / 60:.1f} min wall, of which pruning + retraining "
          f"{prune_seconds / 60:.1f} min; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} shared cores)")


def report_threshold(model, masks, name) -> float:
    """Smallest surviving |w| of a layer: the magnitude cut its final mask corresponds to."""
    w = prunable_weights(model)[name].detach().abs()
    return float(w[masks[name]].min())


if __name__ == "__main__":
    main()
