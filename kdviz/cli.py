"""``python -m kdviz``: the engine's commands (``train``, ``runs``, ``resume``, ``hooks``) plus
``reproduce``, which needs the presentation-level ``kdviz.reproduce`` and so lives above the engine,
and the subcommands of the packages in ``SUBCOMMAND_MODULES`` (``sweep``: Ray Tune sweeps;
``import-model``: your own weights as a run), each a module with ``add_parser(subparsers)`` and
``command(args) -> int``.

    python -m kdviz reproduce --list
    python -m kdviz reproduce hinton-mnist --quick                 # 3 seeds, under 3 minutes on 2 cores
    python -m kdviz reproduce hinton-mnist --seeds 5 --data-root ../shared/data/mnist
    python -m kdviz reproduce --all --quick                        # every table, short settings
    python -m kdviz reproduce --all --quick --markdown             # the same as the README quotes it

Errors end as one line on stderr (``kdviz: error: ...``) with exit status 2 for bad input, as the
engine's commands do (``kdviz.engine.cli``).
"""
from __future__ import annotations

import argparse
import importlib
import time
from typing import Sequence

from .engine import cli as engine_cli

# Packages above the engine that add a subcommand: importing one must stay cheap (Ray is imported
# only when a sweep runs, so `kdviz --help` works without the `sweep` extra).
SUBCOMMAND_MODULES = ("kdviz.sweep.cli", "kdviz.importer.cli")
REPRODUCE_EXAMPLE = "kdviz reproduce hinton-mnist --quick"


def build_parser() -> argparse.ArgumentParser:
    """The engine's parser with ``reproduce`` and the ``SUBCOMMAND_MODULES``' subcommands."""
    parser = engine_cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    reproduce = sub.add_parser("reproduce", help="rebuild a paper's table over seeds, beside the paper's numbers",
                               description="Train a paper's experiment over several seeds and print our numbers "
                                           "(mean +- std, every seed) beside the paper's.")
    reproduce.add_argument("name", nargs="?", help="the reproduction (--list names them)")
    reproduce.add_argument("--list", action="store_true", help="list the reproductions and exit")
    reproduce.add_argument("--all", action="store_true", help="run every reproduction, one after another")
    reproduce.add_argument("--seeds", type=int, default=3, help="number of seeds, 0..N-1 (default: 3)")
    reproduce.add_argument("--quick", action="store_true", help="short settings (minutes): the table's shape, "
                                                                "not the paper's numbers")
    reproduce.add_argument("--markdown", action="store_true", help="print the tables as Markdown (as the README quotes them)")
    reproduce.add_argument("--runs-root", default=None, help="default: $KDVIZ_RUNS, else runs/ in the checkout")
    reproduce.add_argument("--data-root", default=None, help="folder of the dataset's files (default: $KDVIZ_DATA)")
    reproduce.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=engine_cli.DEBUG_HELP)
    for module in map(importlib.import_module, SUBCOMMAND_MODULES):
        name = module.add_parser(sub).prog.split()[-1]  # the subcommand's name, as its parser spells it
        PLUGIN_COMMANDS[name] = module.command
    return parser


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from .reproduce import REPRODUCTIONS

    if args.list:
        width = max(len(name) for name in REPRODUCTIONS.names()) + 2
        for name, item in REPRODUCTIONS.items():
            print(f"{name:<{width}}{item.title}\n{'':<{width}}{item.citation}")
        return 0
    if args.all == bool(args.name):
        raise ValueError(f"name one reproduction or pass --all, e.g. `{REPRODUCE_EXAMPLE}`; "
                         "`kdviz reproduce --list` lists them")
    names = REPRODUCTIONS.names() if args.all else [REPRODUCTIONS.get(args.name).name]  # unknown: ValueError
    if args.seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {args.seeds}")
    states = [_reproduce_one(name, args) for name in names]
    return 0 if all(state == "finished" for state in states) else 1


def _reproduce_one(name: str, args: argparse.Namespace) -> str:
    """Run one reproduction, print its table and where it was written; its final state."""
    from .reproduce import REPRODUCTIONS, run_reproduction, table_lines
    from .reproduce.table import markdown_lines

    reproduction = REPRODUCTIONS.get(name)
    print(f"{reproduction.name}: {reproduction.citation}\n{reproduction.settings(args.quick)}; "
          f"seeds 0..{args.seeds - 1}", flush=True)
    t0 = time.perf_counter()

    def progress(result) -> None:
        print(f"  [{time.perf_counter() - t0:5.0f} s] {len(result.runs)} of {len(result.planned)} runs ended", flush=True)

    result = run_reproduction(name, seeds=args.seeds, quick=args.quick, runs_root=args.runs_root,
                              data_root=args.data_root, on_progress=progress)
    print()
    print("\n".join((markdown_lines if args.markdown else table_lines)(result.rows)))
    print(f"\n{result.state}: {len(result.runs)} runs, wall time {result.wall_s / 60:.1f} min on {result.machine}"
          + (" (quick settings: far from the paper's numbers by design)" if args.quick else ""))
    for key, run in result.runs.items():
        if run["state"] != "finished":
            print(f"  {key}: {run['state']}: {run['message']}")
    print(f"result: {result.path / 'result.json'}\n", flush=True)
    return result.state


COMMANDS = {**engine_cli.COMMANDS, "reproduce": _cmd_reproduce}
PLUGIN_COMMANDS: dict = {}  # filled by build_parser from SUBCOMMAND_MODULES: {name: command(args) -> int}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m kdviz`` and the ``kdviz`` console script: the engine's commands,
    ``reproduce`` and the ``SUBCOMMAND_MODULES``' commands, every error one line (exit 2 for bad input)."""
    parser = build_parser()
    return engine_cli.main(argv, parser, {**COMMANDS, **PLUGIN_COMMANDS})


if __name__ == "__main__":
    raise SystemExit(main())
