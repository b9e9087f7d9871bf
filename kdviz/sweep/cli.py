"""``kdviz sweep``: many runs over a grid (or random draws) of config values, scheduled by Ray Tune.

    kdviz sweep --set method=kd --set teacher=runs/<teacher> --grid T=1,2,4,8 --grid alpha=0.5,0.9,0.99 \\
                --seeds 2 --trials-at-once 2 --asha
    kdviz sweep --set model=mlp --random lr=0.005..0.2 --samples 8 --dry-run      # print the planned trials
    kdviz sweep ... --address ray://head:10001                                    # an existing Ray cluster

Every trial is an ordinary run folder under the runs root; the sweep's record is
``<runs root>/sweeps/<name>-<time>/sweep.json`` (open it on the Sweeps page). ``kdviz.cli`` adds this
subcommand with ``add_parser(subparsers)`` and ``COMMANDS["sweep"] = command``; ``main`` runs it alone.
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

from ..engine import cli as engine_cli
from .record import SweepRecord
from .spec import AshaOptions, SweepSpec, parse_assignment, parse_setting, plan_trials

PROGRESS_S = 2.0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``sweep`` to a ``kdviz`` subparsers object; returns its parser."""
    p = subparsers.add_parser(
        "sweep", help="run a grid or random sweep of config values on Ray Tune (pip install 'kdviz[sweep]')",
        description="Train one run per combination of the swept values (x seeds) on Ray Tune: this machine's "
                    "cores, or a Ray cluster (--address / $RAY_ADDRESS). Each trial writes a normal run folder.")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a config value every trial shares")
    p.add_argument("--config", default=None, help="a JSON file of config values every trial shares (--set overrides)")
    p.add_argument("--grid", action="append", default=[], metavar="FIELD=V1,V2,..",
                   help="sweep FIELD over every value (all combinations of the --grid fields)")
    p.add_argument("--random", action="append", default=[], metavar="FIELD=V1,V2|LO..HI",
                   help="draw FIELD from the values or the range, --samples times")
    p.add_argument("--samples", type=int, default=0, help="random draws (with --random)")
    p.add_argument("--sample-seed", type=int, default=0, help="seed of the random draws (default 0)")
    p.add_argument("--seeds", type=int, default=1, help="seeds per combination, 0..N-1 (default 1)")
    p.add_argument("--trials-at-once", type=int, default=2, help="trials running at the same time (default 2)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs each trial asks Ray for (default 1; "
                   "torch uses that many threads)")
    p.add_argument("--asha", action="store_true", help="stop poor trials early (ASHA on test accuracy)")
    p.add_argument("--grace-period", type=int, default=1, help="ASHA: evaluations before any trial may stop (default 1)")
    p.add_argument("--reduction-factor", type=float, default=2.0, help="ASHA: keep the top 1/this at each rung (default 2)")
    p.add_argument("--address", default=None, help="Ray cluster to join (default: $RAY_ADDRESS, else start Ray here)")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray (default: this machine's cores)")
    p.add_argument("--name", default="sweep", help="the sweep's name (its folder and its runs' names)")
    p.add_argument("--runs-root", default=None, help="default: $KDVIZ_RUNS, else runs/ in the checkout")
    p.add_argument("--dry-run", action="store_true", help="print the planned trials and exit (Ray is not started)")
    p.add_argument("--json", action="store_true", help="print the sweep's record as JSON at the end")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=engine_cli.DEBUG_HELP)
    return p


def spec_from_args(args: argparse.Namespace) -> SweepSpec:
    """The ``SweepSpec`` the options describe (a bad option is a ``ValueError`` naming it)."""
    base = {}
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise ValueError(f"--config {args.config}: no such file")
        try:
            base = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"--config {args.config} is not valid JSON: {exc}") from None
    base.update(parse_setting(text) for text in args.set)
    if args.seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {args.seeds}")
    if not args.grid and not args.random:
        raise ValueError("nothing to sweep: give at least one --grid FIELD=V1,V2 or --random FIELD=... with --samples")
    asha = AshaOptions(args.grace_period, args.reduction_factor) if args.asha else None
    return SweepSpec(base=base, grid=dict(map(parse_assignment, args.grid)), random=dict(map(parse_assignment, args.random)),
                     samples=args.samples, seeds=list(range(args.seeds)), trials_at_once=args.trials_at_once,
                     cpus_per_trial=args.cpus_per_trial, asha=asha, sample_seed=args.sample_seed, name=args.name).validate()


def command(args: argparse.Namespace) -> int:
    """Run the sweep, printing each trial as it ends and the best runs; 0 when no trial failed."""
    from ..present.sweep import sweep_caption  # late: `kdviz --help` stays cheap
    from .runner import start_sweep

    spec = spec_from_args(args)
    if args.dry_run:
        for trial in plan_trials(spec, runs_root=args.runs_root):
            print(trial.key)
        return 0
    sweeping = start_sweep(spec, runs_root=args.runs_root, address=args.address, num_cpus=args.num_cpus)
    print(f"sweep {sweeping.record.name}: {len(sweeping.record.trials)} trials, {spec.trials_at_once} at once"
          + (", ASHA" if spec.asha else ""), flush=True)
    _follow(sweeping)
    record = sweeping.record
    print("\n" + "\n".join(_best_lines(record)))
    print(f"\n{sweep_caption(record.to_dict())}\nrecord: {record.path / 'sweep.json'}", flush=True)
    if args.json:
        print(json.dumps(record.to_dict(), indent=2))
    if record.state == "failed":
        raise RuntimeError(record.message)
    return 1 if any(t.state == "failed" for t in record.trials.values()) else 0


def _follow(sweeping) -> None:
    """Print a line whenever a trial ends, until the sweep has ended (Ctrl-C stops the sweep)."""
    t0, printed = time.perf_counter(), set()
    try:
        while not sweeping.done:
            sweeping.wait(PROGRESS_S)
            for key, trial in list(sweeping.record.trials.items()):
                if trial.state in ("finished", "stopped", "failed") and key not in printed:
                    printed.add(key)
                    acc = f"test acc {trial.test_acc:.4f}" if trial.test_acc is not None else "no evaluation"
                    early = " (stopped by ASHA)" if trial.stopped_by_scheduler else ""
                    print(f"  [{time.perf_counter() - t0:5.0f} s] {key}: {trial.state}{early}, {acc}", flush=True)
    except KeyboardInterrupt:
        sweeping.stop()
        sweeping.wait()
        raise


def _best_lines(record: SweepRecord) -> list[str]:
    from ..present.sweep import best_trials

    rows = best_trials(record.to_dict(), limit=5)
    if not rows:
        return ["no trial reported an evaluation"]
    lines = ["best trials (test accuracy):"]
    lines += [f"  {row['test_acc']:.4f}  {row['trial']}  ({row['state']})  {row['run']}" for row in rows]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """``kdviz sweep ...`` on its own (until ``kdviz.cli`` adds it): errors end as one line."""
    parser = argparse.ArgumentParser(prog="kdviz")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return engine_cli.main(argv, parser, {"sweep": command})


if __name__ == "__main__":
    raise SystemExit(main())
