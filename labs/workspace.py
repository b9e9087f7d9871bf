"""Copy the lab notebooks into a working folder and open JupyterLab there, so the tracked notebooks
in ``labs/`` are never written (issue 14, bug 11).

Opened in place, JupyterLab wrote each lab back on autosave with its outputs, and marked it modified
the moment the kernel started: the kernel reports its ``language_info`` (with the Python version),
which differs from the machine-independent one ``labs/build.py`` writes. Here each lab is copied
into the workspace once, with ``language_info`` as this interpreter's kernel will report it, so a
freshly opened lab is clean. A notebook already in the workspace is never overwritten (it holds the
user's edits and outputs); when the tracked lab has changed since, a line says so.

    python labs/workspace.py [--dir FOLDER] [--no-start] [-- extra jupyter lab arguments]

The workspace defaults to ``$KDVIZ_LABS_DIR`` or ``labs-work/`` beside ``labs/`` (git ignores it).
The lab runs store their run folders in kdviz's one runs root, which the Streamlit app lists too.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DIR = HERE.parent / "labs-work"


def kernel_language_info() -> dict:
    """``language_info`` as ipykernel reports it for this interpreter (what JupyterLab writes)."""
    return {
        "codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
        "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
        "pygments_lexer": "ipython3", "version": platform.python_version(),
    }


def workspace_dir(raw: str | None = None) -> Path:
    return Path(raw or os.environ.get("KDVIZ_LABS_DIR") or DEFAULT_DIR).expanduser().resolve()


def copy_labs(target: Path, labs_dir: Path = HERE) -> tuple[list[str], list[str]]:
    """Copy every ``labs_dir/*.ipynb`` missing from ``target``; returns (copied, kept) names. A kept
    notebook whose tracked lab changed since it was copied is reported by ``main``."""
    target.mkdir(parents=True, exist_ok=True)
    copied, kept = [], []
    for source in sorted(labs_dir.glob("*.ipynb")):
        dest = target / source.name
        if dest.exists():
            kept.append(source.name)
            continue
        notebook = json.loads(source.read_text(encoding="utf-8"))
        notebook.setdefault("metadata", {})["language_info"] = kernel_language_info()
        tmp = dest.with_suffix(".ipynb.tmp")
        tmp.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, dest)
        shutil.copystat(source, dest)
        copied.append(source.name)
    return copied, kept


def stale_copies(target: Path, names: list[str], labs_dir: Path = HERE) -> list[str]:
    """The kept copies whose tracked lab is newer than the copy."""
    return [n for n in names if (labs_dir / n).stat().st_mtime > (target / n).stat().st_mtime + 1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", help="the workspace folder (default $KDVIZ_LABS_DIR or labs-work/)")
    parser.add_argument("--no-start", action="store_true", help="copy the labs, do not start JupyterLab")
    parser.add_argument("jupyter_args", nargs="*", help="passed to jupyter lab (after --)")
    args = parser.parse_args(argv)
    target = workspace_dir(args.dir)
    copied, kept = copy_labs(target)
    print(f"Labs workspace: {target} ({len(copied)} copied, {len(kept)} kept as you left them)")
    for name in stale_copies(target, kept):
        print(f"  {name}: the tracked lab changed since you copied it; delete your copy to get the new one")
    if args.no_start:
        return 0
    cmd = [sys.executable, "-m", "jupyterlab", "--ServerApp.ip=127.0.0.1", f"--ServerApp.root_dir={target}",
           *args.jupyter_args]
    os.execv(sys.executable, cmd)
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
