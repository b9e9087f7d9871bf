"""Command line for headless runs: ``python -m kdviz train ...``, ``kdviz runs``, ``kdviz resume``.

A run started here writes the same run folder as one started from a UI, so it can be watched live
in the Streamlit app or a notebook (``kdviz.engine.open_run(path)``) while it trains.

    python -m kdviz train --dataset digits --model mlp --epochs 3
    python -m kdviz train --method kd --teacher runs/20250101-120000-teacher --T 4 --alpha 0.9
    python -m kdviz train --config my_run.json --epochs 10      # flags override the file
    python -m kdviz runs
    python -m kdviz resume runs/20250101-120000-kd-mlp-digits --epochs 20
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import typing
from dataclasses import MISSING, fields
from typing import Any, Sequence

from .config import TrainConfig

EXIT_CODES = {"finished": 0, "failed": 1, "diverged": 3, "stopped": 4}  # 2: bad arguments


def _parse_value(kind: Any, text: str) -> Any:
    """Parse one flag value by the TrainConfig field's annotation (JSON for lists and dicts)."""
    kind = kind.__name__ if isinstance(kind, type) else str(kind)  # "int", "list", "str | None", ...
    if text.lower() in ("none", "null") and "None" in kind:
        return None
    if kind.startswith(("list", "dict")):
        candidates = [text, f"[{text}]"] if kind.startswith("list") else [text]  # lists: also "1,4,20"
        for candidate in candidates:
            try:
                return json.loads(candidate)
            except json.JSONDecodeError:
                continue
        raise argparse.ArgumentTypeError(f"expected JSON, got {text!r}")
    if kind.startswith("bool"):
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
        return text.lower() in ("true", "1", "yes")
    if kind.startswith("int"):
        return int(text)
    if kind.startswith("float"):
        return float(text)
    return text


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    hints = typing.get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        if f.name == "hooks":
            continue
        kind = hints[f.name]
        default = f.default if f.default is not MISSING else f.default_factory()
        parser.add_argument(
            f"--{f.name.replace('_', '-')}" if f.name != "T" else "--T",
            dest=f.name,
            type=lambda text, k=kind: _parse_value(k, text),
            default=argparse.SUPPRESS,
            help=f"(default: {json.dumps(default)})",
        )
    parser.add_argument("--hook", dest="hooks", action="append", type=json.loads, default=argparse.SUPPRESS,
                        help='a training hook as JSON, \'{"name": NAME, OPTION: VALUE, ...}\' (repeatable); '
                             '`kdviz hooks` lists the hooks and their options')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kdviz", description="kdviz: visual lab for model compression")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train one run in the foreground, writing a run folder")
    train.add_argument("--config", help="a config.json (a run folder's, or your own); flags override it")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_config_flags(train)
    runs = sub.add_parser("runs", help="list run folders")
    runs.add_argument("--runs-root", default="runs")
    resume = sub.add_parser("resume", help="continue a stopped run from its last checkpoint")
    resume.add_argument("path")
    resume.add_argument("--epochs", type=int, default=None, help="train to this many epochs in total")
    resume.add_argument("--quiet", action="store_true")
    sub.add_parser("hooks", help="list the training hooks a config can name, with their typed options")
    return parser


def _watch(job, quiet: bool) -> int:
    """Follow a job with a tqdm bar until it ends; Ctrl-C stops it cleanly (checkpoint kept)."""
    from tqdm import tqdm

    bar = None if quiet else tqdm(total=1, unit="step", desc=job.name, dynamic_ncols=True)
    try:
        while not job.done:
            _update(bar, job.status())
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("\nstopping (saving a checkpoint)...", file=sys.stderr)
        job.stop()
        job.wait()
    status = job.status()
    _update(bar, status)
    if bar is not None:
        bar.close()
    print(f"{status.state}: {status.message}")
    if status.traceback:
        print(status.traceback, file=sys.stderr)
    print(f"run folder: {job.path}")
    return EXIT_CODES.get(status.state, 1)


def _update(bar, status) -> None:
    if bar is None or not status.total_steps:
        return
    bar.total = status.total_steps
    bar.n = status.step
    postfix = {"state": status.state, "epoch": status.epoch + 1}
    if status.test_acc is not None:
        postfix["test_acc"] = f"{status.test_acc:.4f}"
    bar.set_postfix(postfix, refresh=False)
    bar.refresh()


def _cmd_train(args: argparse.Namespace) -> int:
    from .api import start

    options = {k: v for k, v in vars(args).items() if k not in ("command", "config", "quiet")}
    base = TrainConfig.load(args.config).to_dict() if args.config else {}
    if args.config:
        base.pop("name", None)
    config = TrainConfig.from_dict({**base, **options})
    return _watch(start(config), args.quiet)


def _cmd_runs(args: argparse.Namespace) -> int:
    from .run_reader import list_runs

    rows = list_runs(args.runs_root)
    if not rows:
        print(f"no runs under {args.runs_root}")
        return 0
    print(f"{'run':<44}{'method':<7}{'model':<9}{'dataset':<9}{'state':<10}{'steps':>12}{'test acc':>10}")
    for r in rows:
        acc = f"{r['test_acc']:.4f}" if isinstance(r["test_acc"], (int, float)) else "-"
        steps = f"{r['step']}/{r['total_steps']}"
        print(f"{r['name']:<44}{r['method']:<7}{r['model']:<9}{r['dataset']:<9}{r['state']:<10}{steps:>12}{acc:>10}")
    return 0


def _cmd_resume(args: argparse.Namespace) -> int:
    from .api import resume

    return _watch(resume(args.path, epochs=args.epochs), args.quiet)


def _cmd_hooks(args: argparse.Namespace) -> int:
    from .hooks import HOOKS, hook_options

    for name in HOOKS.names():
        options = ", ".join(f"{o.name}: {o.type_name}" + ("" if o.required else f" = {json.dumps(o.default, default=repr)}")
                            for o in hook_options(HOOKS.get(name)).values())
        print(f"{name}({options})")
    return 0


COMMANDS = {"train": _cmd_train, "runs": _cmd_runs, "resume": _cmd_resume, "hooks": _cmd_hooks}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m kdviz`` and the ``kdviz`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ValueError, TypeError) as exc:
        print(f"kdviz: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
