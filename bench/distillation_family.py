"""Which distillation? The distillation family side by side on one teacher, over seeds (issue 16).

One teacher, trained once (the app's default teacher of the dataset, the one the "Which
distillation?" page and the "Train a student" page use: an MLP 256-256 with dropout, ``kdviz.app``'s
``TEACHERS`` / ``TEACHER_EPOCHS`` / ``TEACHER_LR``), then for every seed the scratch student and every
registered member of the family (``kdviz.present.family``: Hinton et al. 2015's KD, Zhao et al. 2022's
decoupled KD, Park et al. 2019's relational KD, Ba & Caruana 2014's logit matching, and any member
added later) at its default knobs, all from the same base config (``family_story.family_base_config``:
the dataset's Train-a-student defaults, unpaced), so every student of a seed has the same model,
data, transfer set, batches and budget. Every run goes through the engine, one CPU thread per run
(a ``JobManager`` with ``cpu_threads=1``), so a rerun gives the same numbers.

It prints a markdown table: each method's final test accuracy (mean ± sample standard deviation over
seeds, and every seed's value), its gain over the scratch student (the mean of the per-seed
differences, in percentage points), how many seeds it beat scratch on, the same two against Hinton's KD
(the baseline every other member is published against), and its mean training seconds; then the
teacher, the shared student settings, every member's knobs, the machine, the date and the wall time.
The student (MNIST: an MLP 64-64 on 1,000 labelled images, 50 epochs) is far smaller than Hinton et
al.'s 800-800, and every student of a seed gets the same steps.

* ``--dataset mnist`` (default; the IDX files from ``--data-root``, else ``$KDVIZ_DATA``, else
  /work/shared/data/mnist) or ``digits`` (bundled);
* ``--members kd,dkd`` (default: every registered member), ``--seeds 0,1,2`` (default), ``--epochs N``
  (every student's epochs; default: the dataset's);
* ``--quick``: digits, seed 0, 20 epochs (well under a minute): a smoke run, not a measurement.

Usage: python bench/distillation_family.py [--dataset mnist|digits] [--seeds 0,1,2] [--epochs N] [--quick]
                                           [--data-root DIR] [--runs-root DIR] [--parallel N]
"""
from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import _common  # noqa: F401  (thread policy before torch)
import streamlit  # noqa: F401  (sets up its loggers; the app's "no runtime" warning means nothing to a bench)

logging.getLogger("streamlit.runtime.caching.cache_data_api").setLevel(logging.ERROR)

from kdviz.app.sidebar import TEACHERS  # noqa: E402
from kdviz.app.teacher import TEACHER_LR, teacher_epochs  # noqa: E402
from kdviz.data import load_dataset  # noqa: E402
from kdviz.engine import JobManager, start, train_teacher_cached  # noqa: E402
from kdviz.engine.manager import available_cores  # noqa: E402
from kdviz.methods.kd import KD  # noqa: E402
from kdviz.present.distill_configs import distill_defaults  # noqa: E402
from kdviz.present.family import family_configs, family_members  # noqa: E402
from kdviz.present.family_story import SCRATCH_LABEL, family_base_config  # noqa: E402
from kdviz.reproduce.runner import machine_note  # noqa: E402

DATASETS = ("mnist", "digits")
QUICK_EPOCHS = 20  # digits: 7 steps an epoch on the 100-image transfer set; 140 steps a run
DEFAULT_MNIST = _common.DEFAULT_MNIST  # /work/shared/data/mnist


@dataclass
class MethodResult:
    """One method's final test accuracies and training seconds, per seed (in the seeds' order)."""

    label: str
    accs: dict[int, float]
    seconds: dict[int, float]


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; a clear ``SystemExit`` message otherwise."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SystemExit(f"--seeds must be comma-separated whole numbers, e.g. 0,1,2; got {text!r}") from None
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise SystemExit(f"--seeds must list distinct whole numbers >= 0, e.g. 0,1,2; got {text!r}")
    return seeds


def data_root_for(dataset: str, raw: str | None) -> str | None:
    """The MNIST folder (``raw``, else ``$KDVIZ_DATA``, else /work/shared/data/mnist); None for digits."""
    if dataset == "digits":
        return None
    root = Path(raw or os.environ.get("KDVIZ_DATA") or DEFAULT_MNIST)
    if not root.is_dir():
        raise SystemExit(f"--data-root {str(root)!r} is not a folder; give the folder with MNIST's four IDX files")
    return str(root)


def teacher_run(dataset: str, data_root: str | None, runs_root: str, manager: JobManager):
    """The app's default teacher of ``dataset`` (as ``kdviz.app.teacher.teacher_options`` builds it),
    trained once under ``runs_root`` (a finished one with the same config there is reused)."""
    choice = next(iter(TEACHERS.values()))
    job = train_teacher_cached(dataset=dataset, model=choice.model, manager=manager, model_options=dict(choice.options),
                               epochs=teacher_epochs(dataset), lr=TEACHER_LR, data_root=data_root,
                               runs_root=runs_root, name=f"teacher-{choice.model}-{dataset}")
    status = job.wait()
    if status.state != "finished":
        raise SystemExit(f"the teacher did not finish ({status.state}): {status.message}")
    return job, status


def parse_members(text: str | None) -> list[str]:
    """The member names to train (None: every registered member); an unknown one exits naming the known ones."""
    known = [member.name for member in family_members()]
    if text is None:
        return known
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in chosen if name not in known]
    if not chosen or unknown:
        raise SystemExit(f"--members must list registered members, comma-separated; unknown {unknown or text!r}, "
                         f"known: {', '.join(known)}")
    return chosen


def seed_configs(teacher: str, members: list[str], dataset: str, data_root: str | None, runs_root: str, seed: int,
                 epochs: int | None, train_size: int) -> dict:
    """``{label: TrainConfig}``: the scratch student and each of ``members`` at its defaults, for ``seed``."""
    base = family_base_config(teacher=teacher, dataset=dataset, data_root=data_root, train_size=train_size,
                              runs_root=runs_root, epochs=epochs, seed=seed, pace_s=None)
    configs = family_configs(base, {name: None for name in members})
    return {label: replace(config, name=f"{config.name}-seed{seed}") for label, config in configs.items()}


def train_all(plan: dict[int, dict], manager: JobManager, t0: float) -> list[MethodResult]:
    """Start every run of ``plan`` (seed -> {label: config}), wait for all, collect the final accuracies."""
    jobs = {(seed, label): start(config, manager)
            for seed, configs in plan.items() for label, config in configs.items()}
    results: dict[str, MethodResult] = {}
    for done, ((seed, label), job) in enumerate(jobs.items(), start=1):
        status = job.wait()
        if status.state != "finished" or status.test_acc is None:
            raise SystemExit(f"{label}, seed {seed}: {status.state}: {status.message}")
        row = results.setdefault(label, MethodResult(label, {}, {}))
        row.accs[seed], row.seconds[seed] = float(status.test_acc), float(status.elapsed_s)
        print(f"  [{time.perf_counter() - t0:6.0f} s] {done}/{len(jobs)} {label}, seed {seed}: "
              f"{status.test_acc:.2%} in {status.elapsed_s:.1f} s", flush=True)
    return list(results.values())


def _mean_std(values: list[float]) -> str:
    mean = statistics.fmean(values)
    return f"{mean:.2%} ± {statistics.stdev(values):.2%}" if len(values) > 1 else f"{mean:.2%}"


def _paired(row: MethodResult, base: MethodResult, seeds: list[int]) -> tuple[str, str]:
    """(mean ± sample std of ``row`` minus ``base`` per seed, in points; "k of n" seeds where ``row`` is ahead)."""
    diffs = [100 * (row.accs[s] - base.accs[s]) for s in seeds]
    spread = f" ± {statistics.stdev(diffs):.2f}" if len(diffs) > 1 else ""
    return f"{statistics.fmean(diffs):+.2f}{spread}", f"{sum(d > 0 for d in diffs)} of {len(diffs)}"


def table_lines(results: list[MethodResult], seeds: list[int]) -> list[str]:
    """The markdown table: accuracy mean ± sample std, per seed, gain and wins over scratch, the same
    against Hinton's KD (the method every other member is published against), mean training seconds."""
    scratch = next(r for r in results if r.label == SCRATCH_LABEL)
    kd = next((r for r in results if r.label == KD.label), None)
    lines = ["| method | test accuracy (mean ± std) | per seed (" + ", ".join(map(str, seeds)) + ") "
             "| gain over scratch (points, mean ± std of per-seed differences) | beats scratch (seeds) "
             f"| against {KD.label} (points; seeds ahead) | training s (mean) |",
             "|---|---|---|---|---|---|---|"]
    for row in results:
        accs = [row.accs[s] for s in seeds]
        per_seed = ", ".join(f"{a:.2%}" for a in accs)
        gain, wins = ("(the baseline)", "–") if row is scratch else _paired(row, scratch, seeds)
        against_kd = "–" if kd is None or row is kd else "{} ({})".format(*_paired(row, kd, seeds))
        seconds = statistics.fmean(row.seconds[s] for s in seeds)
        cells = [row.label, _mean_std(accs), per_seed, gain, wins, against_kd, f"{seconds:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def settings_line(dataset: str, members: list[str], base_epochs: int, teacher_acc: float | None) -> str:
    """The shared settings and every member's default knobs, in words."""
    d = distill_defaults(dataset)
    choice_name = next(iter(TEACHERS))
    knobs = "; ".join(f"{m.spec.label}: " + ", ".join(f"{k}={v:g}" for k, v in m.defaults().items())
                      for m in family_members() if m.name in members)
    teacher = f"{choice_name} ({teacher_epochs(dataset)} epochs, lr {TEACHER_LR:g}"
    teacher += f", test accuracy {teacher_acc:.2%})" if teacher_acc is not None else ")"
    return (f"teacher: {teacher}; student: {d.student_model} {dict(d.student_options)}, {base_epochs} epochs on "
            f"{d.transfer_size or 'all'} labelled training images (class-balanced), batch {d.batch_size}, lr {d.lr:g}, "
            f"unpaced; default knobs: {knobs}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=DATASETS, default=None, help="mnist (default) or digits (--quick's)")
    parser.add_argument("--data-root", default=None, help="folder of MNIST's IDX files (default $KDVIZ_DATA, else "
                                                          f"{DEFAULT_MNIST})")
    parser.add_argument("--runs-root", default=None, help="where run folders go (default: a new temporary folder)")
    parser.add_argument("--seeds", default=None, help="student seeds, comma-separated (default 0,1,2; --quick: 0)")
    parser.add_argument("--epochs", type=int, default=None, help="every student's epochs (default: the dataset's)")
    parser.add_argument("--members", default=None, help="member names, comma-separated (default: every registered one)")
    parser.add_argument("--parallel", type=int, default=None, help="runs at once, one thread each (default: the cores)")
    parser.add_argument("--quick", action="store_true", help=f"digits, seed 0, {QUICK_EPOCHS} epochs: a smoke run")
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be a positive whole number, got {args.epochs}")
    if args.parallel is not None and args.parallel < 1:
        parser.error(f"--parallel must be a positive whole number, got {args.parallel}")
    args.dataset = args.dataset or ("digits" if args.quick else "mnist")
    args.seeds = parse_seeds(args.seeds or ("0" if args.quick else "0,1,2"))
    args.members = parse_members(args.members)
    if args.quick and args.epochs is None:
        args.epochs = QUICK_EPOCHS
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data_root = data_root_for(args.dataset, args.data_root)
    runs_root = args.runs_root or tempfile.mkdtemp(prefix="kdviz-family-bench-")
    parallel = args.parallel or available_cores()
    manager = JobManager(max_concurrent=parallel, cpu_threads=1)  # one thread per run: the same numbers on a rerun
    t0 = time.perf_counter()
    train_size = len(load_dataset(args.dataset, root=data_root).train_labels)
    teacher, teacher_status = teacher_run(args.dataset, data_root, runs_root, manager)
    print(f"teacher: {teacher_status.test_acc:.2%} test accuracy in {teacher_status.elapsed_s:.1f} s ({teacher.path})",
          flush=True)
    plan = {seed: seed_configs(str(teacher.path), args.members, args.dataset, data_root, runs_root, seed, args.epochs,
                               train_size) for seed in args.seeds}
    base_epochs = next(iter(plan[args.seeds[0]].values())).epochs
    results = train_all(plan, manager, t0)
    wall = time.perf_counter() - t0
    print(f"\n**Which distillation? {args.dataset}, seeds {', '.join(map(str, args.seeds))}**"
          f"{' (quick: a smoke run, not a measurement)' if args.quick else ''}\n")
    print("\n".join(table_lines(results, args.seeds)))
    print(f"\n{settings_line(args.dataset, args.members, base_epochs, teacher_status.test_acc)}")
    print(f"\nmachine: {machine_note()}, {parallel} runs at once, one thread each; "
          f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; total wall time {wall / 60:.1f} min "
          f"(teacher included); runs in {runs_root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
