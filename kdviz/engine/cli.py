"""Command line for headless runs: ``python -m kdviz train ...``, ``kdviz runs``, ``kdviz resume``.

A run started here writes the same run folder as one started from a UI, so it can be watched live
in the Streamlit app or a notebook (``kdviz.engine.open_run(path)``) while it trains.

    python -m kdviz train --dataset digits --model mlp --epochs 3
    python -m kdviz train --method kd --teacher runs/20250101-120000-teacher --T 4 --alpha 0.9
    python -m kdviz train --config my_run.json --epochs 10      # flags override the file
    python -m kdviz runs                     # a run whose process died reads "interrupted"
    python -m kdviz resume runs/20250101-120000-kd-mlp-digits --epochs 20
    python -m kdviz resume runs/20250101-120000-kd-mlp-digits            # an interrupted run: no flag needed

A resume is checked whole before anything is written (``resume.plan_resume``) and starts by printing
where it continues from and how many records after that checkpoint it drops.

Ordinary mistakes (a bad data folder, bad model options, a full disk, a damaged run folder) end with
one line on stderr naming the cause and the fix, and a non-zero exit status; the Python traceback is
kept in the run folder's ``error.log`` when there is a run folder (else in the temp folder) and shown
only with ``--debug``.
"""
from __future__ import annotations

import argparse
import errno
import inspect
import json
import os
import sys
import tempfile
import time
import traceback
import typing
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..paths import runs_root
from .config import TrainConfig

EXIT_CODES = {"finished": 0, "failed": 1, "diverged": 3, "stopped": 4}  # 2: bad arguments
STATE_WIDTH = len("interrupted") + 2  # `kdviz runs`' state column
INTERRUPTED_SHOWN = 5  # `kdviz runs` prints the resume command of at most this many interrupted runs
ERROR_LOG = "error.log"
DEBUG_HELP = "show Python tracebacks on errors (they are always kept in the run folder's error.log)"
# How to fix a failure, by the exception's type name (a failed job reports only "Type: message").
FIXES = {
    "IdxFileNotFound": "pass --data-root a folder holding the four IDX files (gzip or raw), or use --dataset digits",
    "IdxFormatError": "replace the damaged file (copy or download it again), or pass --data-root another copy",
    "ChecksumMismatch": "delete the damaged file, or download it again",
    "DownloadError": "check the network or the mirror, or pass --data-root a folder holding the files",
    "PathEscapesRun": "the run folder refers to files outside itself: use an intact copy of the run",
}
# Exceptions whose message says it all: shown without their type name.
PLAIN_KINDS = {*FIXES, "ValueError", "TypeError", "KeyError", "OSError", "FileNotFoundError", "PermissionError",
               "PathNotAllowed", "JSONDecodeError", "UnpicklingError"}
OS_FIXES = {
    errno.ENOSPC: "the disk is full: free some space, or pass --runs-root a folder on another disk",
    errno.EDQUOT: "your disk quota is used up: free some space, or pass --runs-root another folder",
    errno.EACCES: "pass --runs-root a folder you can write to",
    errno.EPERM: "pass --runs-root a folder you can write to",
    errno.EROFS: "the disk is read-only: pass --runs-root a folder on a writable disk",
}


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
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    parser = argparse.ArgumentParser(prog="kdviz", description="kdviz: visual lab for model compression",
                                     parents=[common])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", parents=[common], help="train one run in the foreground, writing a run folder")
    train.add_argument("--config", help="a config.json (a run folder's, or your own); flags override it")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_config_flags(train)
    runs = sub.add_parser("runs", parents=[common], help="list run folders")
    runs.add_argument("--runs-root", default=None, help="default: kdviz's runs root ($KDVIZ_RUNS, else runs/ in the checkout)")
    resume = sub.add_parser("resume", parents=[common], help="continue a stopped run from its last checkpoint")
    resume.add_argument("path")
    resume.add_argument("--epochs", type=int, default=None, help="train to this many epochs in total")
    resume.add_argument("--force", action="store_true",
                        help="resume a run written before run folders had a writer lock whose status still says "
                             "running or paused (its process was killed); interrupted runs need no --force")
    resume.add_argument("--quiet", action="store_true")
    sub.add_parser("hooks", parents=[common], help="list the training hooks a config can name, with their typed options")
    return parser


def _watch(job, args: argparse.Namespace) -> int:
    """Follow a job with a tqdm bar until it ends; Ctrl-C stops it cleanly (checkpoint kept)."""
    from tqdm import tqdm

    args.run_folder = job.path
    bar = None if args.quiet else tqdm(total=1, unit="step", desc=job.name, dynamic_ncols=True)
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
    if status.state == "failed":
        _report_failure(status.message, status.traceback, job.path, args)
    else:
        print(f"{status.state}: {status.message}")
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

    options = {k: v for k, v in vars(args).items() if k not in ("command", "config", "quiet", "debug", "run_folder")}
    base = TrainConfig.load(args.config).to_dict() if args.config else {}
    if args.config:
        base.pop("name", None)
    config = TrainConfig.from_dict({**base, **options}).validate()
    _check_data_and_model(config)
    return _watch(start(config), args)


def _check_data_and_model(config: TrainConfig) -> None:
    """Load the data and build the model once before any run folder is written, so a bad data folder
    or a misspelt model option is one clear error and leaves nothing behind (the data stay cached
    for the run)."""
    from ..models import MODELS, build_model
    from .setup import dataset_for

    dataset = dataset_for(config)
    try:
        build_model(config.model, input_shape=dataset.input_shape, num_classes=dataset.num_classes,
                    **config.model_options)
    except (TypeError, ValueError) as exc:
        params = list(inspect.signature(MODELS.get(config.model)).parameters)[2:]
        raise ValueError(f"--model {config.model} --model-options {json.dumps(config.model_options)}: {exc}. "
                         f"The options of {config.model!r} are: {', '.join(params) or 'none'}") from exc


def _cmd_runs(args: argparse.Namespace) -> int:
    from .run_reader import list_runs

    rows = list_runs(args.runs_root)
    args.runs_root = args.runs_root or str(runs_root())
    if not rows:
        print(f"no runs under {args.runs_root}")
        return 0
    print(f"{'run':<44}{'method':<7}{'model':<9}{'dataset':<9}{'state':<{STATE_WIDTH}}{'steps':>12}{'test acc':>10}")
    for r in rows:
        acc = f"{r['test_acc']:.4f}" if isinstance(r["test_acc"], (int, float)) else "-"
        steps = f"{r['step']}/{r['total_steps']}"
        print(f"{r['name']:<44}{r['method']:<7}{r['model']:<9}{r['dataset']:<9}{r['state']:<{STATE_WIDTH}}{steps:>12}{acc:>10}")
    interrupted = [r for r in rows if r["state"] == "interrupted"]
    if interrupted:
        print(f"\n{len(interrupted)} run(s) interrupted: their process ended mid-run. Continue one from its last checkpoint with")
        for r in interrupted[:INTERRUPTED_SHOWN]:
            print(f"  kdviz resume {r['path']}")
        if len(interrupted) > INTERRUPTED_SHOWN:
            print(f"  ... and {len(interrupted) - INTERRUPTED_SHOWN} more")
    return 0


def _cmd_resume(args: argparse.Namespace) -> int:
    from .api import resume

    path = Path(args.path)
    _check_run_folder(path)
    try:
        job = resume(path, epochs=args.epochs, force=args.force)
    except ValueError as exc:  # the API's advice names its keyword arguments: say the flags instead
        text = str(exc).replace(" (force=True)", "").replace("force=True", "--force").replace("epochs=", "--epochs")
        raise ValueError(text) from exc
    plan = getattr(job, "resume_plan", None)
    if plan is not None:
        print(f"{job.path}: {plan.describe()}", flush=True)
    return _watch(job, args)  # a refused resume writes nothing into the run folder, not even error.log


def _check_run_folder(path: Path) -> None:
    """A clear error for a path that is not a run folder or whose JSON files are damaged (read only)."""
    if not path.is_dir():
        raise ValueError(f"{path} is not a run folder (no such folder); `kdviz runs` lists the run folders")
    for name in ("config.json", "status.json"):
        file = path / name
        if name == "config.json" and not file.is_file():
            raise ValueError(f"{path} is not a run folder (it has no config.json)")
        try:
            if file.is_file():
                json.loads(file.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{file} is damaged (not valid JSON: {exc}), so the run cannot be resumed; "
                             "restore it from a copy, or start a new run") from None


def _cmd_hooks(args: argparse.Namespace) -> int:
    from .hooks import HOOKS, hook_options

    for name in HOOKS.names():
        options = ", ".join(f"{o.name}: {o.type_name}" + ("" if o.required else f" = {json.dumps(o.default, default=repr)}")
                            for o in hook_options(HOOKS.get(name)).values())
        print(f"{name}({options})")
    return 0


COMMANDS = {"train": _cmd_train, "runs": _cmd_runs, "resume": _cmd_resume, "hooks": _cmd_hooks}


def main(argv: Sequence[str] | None = None, parser: argparse.ArgumentParser | None = None,
         commands: Mapping[str, Callable[[argparse.Namespace], int]] | None = None) -> int:
    """The engine's commands (``kdviz.cli`` passes its own ``parser`` and ``commands``, a superset):
    every error is one line, exit 2 for bad input."""
    args = (parser or build_parser()).parse_args(argv)
    args.debug = getattr(args, "debug", False)
    try:
        return (commands or COMMANDS)[args.command](args)
    except KeyboardInterrupt:
        print("kdviz: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every error ends as one line; the traceback is kept
        _report_failure(_describe(exc), traceback.format_exc(), getattr(args, "run_folder", None), args)
        return 2 if isinstance(exc, (ValueError, TypeError, KeyError)) else 1


def _describe(exc: BaseException) -> str:
    """``Type: message`` on one line (a KeyError without its quotes)."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        text = f"{exc.strerror}: {exc.filename}"
    return f"{type(exc).__name__}: {' '.join(text.split()) or type(exc).__name__}"


def _fix_for(message: str) -> str:
    """How to fix the failure described by ``"Type: message"``, or ''."""
    kind = message.split(":", 1)[0]
    if kind in FIXES:
        return FIXES[kind]
    for number, fix in OS_FIXES.items():
        if f"[Errno {number}]" in message or os.strerror(number) in message:
            return fix
    return ""


def _keep_traceback(trace: str, run_folder: Path | None) -> Path | None:
    """Append ``trace`` to the run folder's error.log (the temp folder's when there is no run folder or
    it cannot be written, e.g. a full disk); where it went, or None."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    targets = [Path(run_folder) / ERROR_LOG] if run_folder is not None and Path(run_folder).is_dir() else []
    targets.append(Path(tempfile.gettempdir()) / f"kdviz-{os.getuid()}-{ERROR_LOG}")
    for target in targets:
        existed = target.exists()
        try:
            with open(target, "a") as log:
                log.write(f"--- {stamp} kdviz {' '.join(sys.argv[1:])}\n{trace.rstrip()}\n")
            return target
        except OSError:
            if not existed:  # a full disk: leave no empty or partial log behind
                target.unlink(missing_ok=True)
    return None


def _report_failure(message: str, trace: str, run_folder: Path | None, args: argparse.Namespace) -> None:
    """One line on stderr: the cause, the fix, where the traceback is; the traceback itself with --debug."""
    message = " ".join(message.split())
    fix = _fix_for(message)
    kept = _keep_traceback(trace, run_folder) if trace.strip() else None
    kind, _, text = message.partition(": ")
    line = f"kdviz: error: {(text if text and kind in PLAIN_KINDS else message).rstrip('.')}"
    line += f". Fix: {fix}" if fix else ""
    line += f" (traceback in {kept}; --debug shows it)" if kept else ""
    print(line, file=sys.stderr)
    if getattr(args, "debug", False) and trace.strip():
        print(trace.rstrip(), file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
