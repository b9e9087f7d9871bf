"""How long loading a dataset takes, against the targets: digits < 1 s, MNIST < 3 s.

No ratio: absolute times against absolute targets (wall time, CPU time beside it).

Usage: ``python bench/load_speed.py [MNIST_FOLDER] [--repeat N] [--quick]`` (folder default: ../shared/data/mnist
next to the repository). "first" is the first call in this process, including one-off imports
(scikit-learn for digits), with its CPU time beside it; "best" is the fastest of the repeats. Exits 1 when a first call misses
its target, so the script can gate CI.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _paired import load_note, timed_value  # noqa: E402
from kdviz.data import load_dataset  # noqa: E402

DEFAULT_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
TARGETS_S = {"digits": 1.0, "mnist": 3.0}


def time_loads(name: str, repeat: int, **kwargs) -> tuple[list[float], float, object, float]:
    """Wall-clock seconds of ``repeat`` consecutive ``load_dataset(name, **kwargs)`` calls, the CPU
    seconds of the first (a fairer figure than wall time on a machine shared with other work), the
    bundle, and the CPU seconds of the fastest call."""
    samples, bundle = [], None
    for _ in range(repeat):
        sample, bundle = timed_value(lambda: load_dataset(name, **kwargs))
        samples.append(sample)
    best = min(samples, key=lambda s: s.wall)
    return [s.wall for s in samples], samples[0].cpu, bundle, best.cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mnist_folder", nargs="?", type=Path, default=DEFAULT_MNIST)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one load of each (--repeat 1)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat = 1

    runs = [("digits", {})]
    if args.mnist_folder.is_dir():
        runs.append(("mnist", {"root": args.mnist_folder}))
    else:
        print(f"mnist: skipped, {args.mnist_folder} not found (pass the folder of IDX files as an argument)")

    missed = False
    print(f"{'dataset':<8} {'first':>8} {'cpu':>8} {'best':>8} {'cpu':>8} {'target':>8}  result   bundle")
    for name, kwargs in runs:
        times, cpu, bundle, best_cpu = time_loads(name, max(args.repeat, 1), **kwargs)
        target = TARGETS_S[name]
        ok = times[0] < target
        missed |= not ok
        print(f"{name:<8} {times[0]:>7.3f}s {cpu:>7.3f}s {min(times):>7.3f}s {best_cpu:>7.3f}s {'<' + str(target) + 's':>8}  "
              f"{'OK' if ok else 'MISSED':<7}  {bundle!r}")
    print(load_note())
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
