"""Han et al. 2015 on LeNet-300-100 / MNIST: the ``han-pruning`` reproduction, plus what the paper's
tables say beside it (per-layer weights kept, storage formats, FLOPs).

Han, Pool, Tran, Dally, "Learning both Weights and Connections for Efficient Neural Networks"
(NeurIPS 2015), table 1 and table 2: LeNet-300-100 goes from 1.64% to 1.59% test error while
keeping 8% of its weights (12x fewer); per layer fc1 keeps 8%, fc2 9%, fc3 26%.

What this script does (issue 7's benchmark, issue 15: the same code as ``kdviz reproduce han-pruning``):
1. Runs the reproduction through the engine (``kdviz.reproduce.run_reproduction``): per seed the
   dense baseline (reused from ``--runs-root`` when one with the same settings has finished), then
   the prune-and-retrain fine-tune from it (Han's per-layer sparsities on Zhu & Gupta's AGP ramp,
   retraining with the masks held at a tenth of the baseline learning rate); see
   ``kdviz/reproduce/han_pruning.py`` for the settings.
2. Prints the reproduction's table (paper beside ours, every seed), then for the first seed the
   weights kept per layer and overall beside Han's table, the storage (dense / CSR / relative
   index), FLOPs and the wall time, all measured on the finished run folders.
3. Writes the first seed's baseline and pruned model (with its masks) to ``--baseline-cache``, the
   files ``bench/prune_slider.py``, ``bench/quant_sliders.py`` read, and reloads the pruned one to
   check it is still pruned.

Pass criteria (issue 7): at least 10x fewer weights, at most +0.1 percentage points of error,
under 20 minutes on 2 CPU cores. ``--quick``: the reproduction's quick mode (2 + 3 epochs) in a
temporary runs root, caches left alone.

    python bench/han_pruning.py [--quick] [--seeds N] [--root ../shared/data/mnist] [--runs-root DIR]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from _common import DEFAULT_MNIST, ROOT, machine_note  # first: makes idle OpenMP threads sleep

import torch  # noqa: E402

from kdviz.engine import load_trained_model  # noqa: E402
from kdviz.models import build_model  # noqa: E402
from kdviz.models.checkpoint_io import write_state  # noqa: E402
from kdviz.prune import PruningMasks, count_flops, load_pruned, prunable_weights, save_pruned, size_report  # noqa: E402
from kdviz.reproduce import run_reproduction, table_lines  # noqa: E402
from kdviz.reproduce.han_pruning import BASELINE_ROW, PRUNED_ROW  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = HERE / "cache" / "han_pruning"  # read by bench/prune_slider.py and bench/quant_sliders.py
DEFAULT_RUNS = ROOT / "bench" / "cache" / "reproduce"  # shared with bench/deep_compression.py: one baseline
HAN = {"baseline_error": 1.64, "pruned_error": 1.59, "kept": {"fc1": 8, "fc2": 9, "fc3": 26}, "total_kept": 8, "compression": 12}


def progress(t0: float):
    """An ``on_progress`` that prints each run as it ends."""
    def show(result) -> None:
        ended = ", ".join(f"{key} {run['state']}" for key, run in result.runs.items())
        print(f"  [{time.perf_counter() - t0:5.0f} s] {ended}", flush=True)
    return show


def smallest_kept_over_std(pruned, baseline) -> dict[str, float]:
    """Per layer: smallest surviving |w| after retraining / std of the baseline's weights (~ Han's quality parameter)."""
    dense = prunable_weights(baseline)
    out = {}
    for name, w in prunable_weights(pruned).items():
        kept = w.detach().abs()[w.detach() != 0]
        out[name.split(".")[0]] = float(kept.min()) / float(dense[name].detach().double().std(correction=0))
    return out


def print_paper_table(base_err: float, pruned_err: float, pruned, baseline) -> tuple:
    """Han's table 1-2 beside the first seed's runs; returns (size report, compression)."""
    report = size_report(pruned)
    kept = {layer.layer: 100 * layer.kept_fraction for layer in report.layers}
    print("\n=== Han et al. 2015, LeNet-300-100 on MNIST: paper vs the first seed ===")
    print(f"{'':28}{'Han et al. 2015':>18}{'kdviz (this run)':>20}")
    print(f"{'baseline test error':28}{HAN['baseline_error']:>17.2f}%{base_err:>19.2f}%")
    print(f"{'pruned + retrained error':28}{HAN['pruned_error']:>17.2f}%{pruned_err:>19.2f}%")
    print(f"{'error change (pp)':28}{HAN['pruned_error'] - HAN['baseline_error']:>+18.2f}{pruned_err - base_err:>+20.2f}")
    for layer in ("fc1", "fc2", "fc3"):
        print(f"{'weights kept ' + layer:28}{HAN['kept'][layer]:>17d}%{kept[layer]:>19.1f}%")
    print(f"{'weights kept, all layers':28}{HAN['total_kept']:>17d}%{100 * report.nonzero / report.weights:>19.2f}%")
    print(f"{'compression (weights)':28}{HAN['compression']:>17d}x{report.weight_compression:>19.1f}x")
    for layer, q in smallest_kept_over_std(pruned, baseline).items():
        print(f"  {layer}: smallest kept |w| after retraining / std(baseline weights) = {q:.2f} (~ Han's quality parameter)")
    dense_flops, flops = count_flops(baseline), count_flops(pruned)
    print(f"\nstorage (weights + biases): dense {report.total('dense'):,} B; CSR (fp32 values, int32 indices) "
          f"{report.total('csr'):,} B; relative index (5-bit, fp32 values) {report.total('relative'):,} B "
          f"({report.total('dense') / report.total('relative'):.1f}x smaller; {sum(l.fillers for l in report.layers)} fillers)")
    print(f"FLOPs per image: dense {dense_flops['flops']:,}; after pruning {flops['nonzero_flops']:,} "
          f"({100 * flops['nonzero_flops'] / dense_flops['flops']:.1f}%; Han et al. report 8%)")
    return report, report.weight_compression


def write_cache(baseline, pruned, cache: Path) -> str:
    """The baseline's state dict and the pruned model with its masks (non-zero = kept), reloaded to check."""
    cache.mkdir(parents=True, exist_ok=True)
    write_state(cache / "baseline.safetensors", baseline.state_dict())  # atomic, tensors only
    masks = PruningMasks({n: w.detach() != 0 for n, w in prunable_weights(pruned).items()})
    path = save_pruned(pruned, masks, cache / "pruned.safetensors")
    reloaded = build_model("lenet300", input_shape=(1, 28, 28), num_classes=10)
    load_pruned(reloaded, path)
    same = all(torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), pruned.state_dict().values()))
    return f"saved with masks to {path} (and baseline.safetensors); reloaded identical and still pruned: {same}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=str(DEFAULT_MNIST), help="the MNIST IDX folder")
    parser.add_argument("--runs-root", default=str(DEFAULT_RUNS), help="where the runs go (a finished baseline is reused)")
    parser.add_argument("--baseline-cache", default=str(DEFAULT_CACHE),
                        help="where the first seed's baseline.safetensors and pruned.safetensors (with masks) are written for the other benches")
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 (the table shows mean +- std and every seed)")
    parser.add_argument("--quick", action="store_true", help="the quick reproduction in a temporary runs root (caches untouched)")
    args = parser.parse_args(argv)
    if not Path(args.root).is_dir():
        sys.exit(f"MNIST not found at {args.root}; pass --root")
    t0 = time.perf_counter()
    print(f"han-pruning, LeNet-300-100 on MNIST; {machine_note()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="han-quick-") as scratch_root:
        result = run_reproduction("han-pruning", seeds=args.seeds, quick=args.quick, data_root=args.root,
                                  runs_root=scratch_root if args.quick else args.runs_root, on_progress=progress(t0))
        print(f"\n{result.title} ({result.settings})\n" + "\n".join(table_lines(result.rows)))
        if result.state != "finished":
            sys.exit(f"reproduction {result.state}: {result.runs}")
        base_row, pruned_row = result.row(BASELINE_ROW), result.row(PRUNED_ROW)
        baseline, pruned = load_trained_model(base_row.runs[0]), load_trained_model(pruned_row.runs[0])
        base_err, pruned_err = base_row.values[0], pruned_row.values[0]
        report, compression = print_paper_table(base_err, pruned_err, pruned, baseline)
        print(write_cache(baseline, pruned, Path(args.baseline_cache)) if not args.quick else "quick: caches untouched")
    wall = time.perf_counter() - t0
    ok_ratio, ok_err, ok_time = compression >= 10, round(pruned_err - base_err, 6) <= 0.1, wall < 20 * 60
    print(f"\ntargets (seed 0): >= 10x fewer weights: {'PASS' if ok_ratio else 'FAIL'} ({compression:.1f}x); "
          f"error change <= +0.1 pp: {'PASS' if ok_err else 'FAIL'} ({pruned_err - base_err:+.2f} pp); "
          f"under 20 min: {'PASS' if ok_time else 'FAIL'} ({wall / 60:.1f} min wall; load average now "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} shared cores); result "
          f"{'in a temporary folder, deleted' if args.quick else result.path}"
          f"{'; quick smoke run: far from the paper by design' if args.quick else ''}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
