"""Where kdviz keeps things, and which folders a path typed into a UI may point at.

One runs root serves the app, the labs and the CLI: ``$KDVIZ_RUNS`` when set, else ``runs/`` beside
the source checkout (an editable install, as ``scripts/setup.sh`` makes), else ``~/.local/share/kdviz/
runs`` for an installed package.

Paths that arrive from a browser (the sidebar's MNIST folder box, the Compare runs path box) are
untrusted: :func:`confine` resolves them (symlinks included) and refuses anything outside the allowed
roots, which are the runs root, ``$KDVIZ_DATA``, the download cache and the folders listed in
``$KDVIZ_ALLOWED_DIRS`` (separated by ``os.pathsep``). Messages name the allowed roots, never the
contents of the folder that was asked for.
"""
from __future__ import annotations

import os
from pathlib import Path

RUNS_ENV = "KDVIZ_RUNS"
DATA_ENV = "KDVIZ_DATA"
CACHE_ENV = "KDVIZ_CACHE"
ALLOWED_ENV = "KDVIZ_ALLOWED_DIRS"
_CHECKOUT = Path(__file__).resolve().parents[1]


class PathNotAllowed(ValueError):
    """A path outside every allowed root (the message says which roots are allowed)."""


def runs_root() -> Path:
    """The one folder the app, the labs and the CLI put run folders in (see the module docstring)."""
    raw = os.environ.get(RUNS_ENV, "").strip()
    if raw:
        return Path(raw).expanduser()
    if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "app.py").is_file():
        return _CHECKOUT / "runs"
    return Path.home() / ".local" / "share" / "kdviz" / "runs"


def cache_root() -> Path:
    """``$KDVIZ_CACHE`` or ``~/.cache/kdviz``: downloaded datasets and cached teacher logits."""
    raw = os.environ.get(CACHE_ENV, "").strip()
    return Path(raw).expanduser() if raw else Path.home() / ".cache" / "kdviz"


def data_root() -> Path | None:
    """``$KDVIZ_DATA`` (a folder of dataset files the user pointed kdviz at), or None."""
    raw = os.environ.get(DATA_ENV, "").strip()
    return Path(raw).expanduser() if raw else None


def allowed_roots() -> list[Path]:
    """The resolved folders a UI path may lie in: runs root, ``$KDVIZ_DATA``, cache, and
    ``$KDVIZ_ALLOWED_DIRS``."""
    roots = [runs_root(), cache_root()]
    data = data_root()
    if data is not None:
        roots.append(data)
    extra = os.environ.get(ALLOWED_ENV, "")
    roots += [Path(p).expanduser() for p in extra.split(os.pathsep) if p.strip()]
    resolved: list[Path] = []
    for root in roots:
        path = root.resolve()
        if path not in resolved:
            resolved.append(path)
    return resolved


def is_within(path: Path, root: Path) -> bool:
    """True when resolved ``path`` is ``root`` or lies below it."""
    return path == root or root in path.parents


def confine(raw: str | os.PathLike, what: str = "folder", roots: list[Path] | None = None) -> Path:
    """The resolved ``raw`` when it lies inside an allowed root, else :class:`PathNotAllowed`.

    Relative paths are taken relative to the working folder, as a shell would. The message names
    the allowed roots and how to add one, never what the refused folder holds.
    """
    text = os.fspath(raw).strip()
    if not text:
        raise PathNotAllowed(f"No {what} given.")
    if "\x00" in text:
        raise PathNotAllowed(f"The {what} path contains a NUL character.")
    path = Path(text).expanduser().resolve()
    allowed = allowed_roots() if roots is None else [r.resolve() for r in roots]
    if any(is_within(path, root) for root in allowed):
        return path
    names = ", ".join(str(r) for r in allowed)
    raise PathNotAllowed(
        f"{text} is not an allowed {what}. kdviz only opens folders under: {names}. "
        f"To allow another, start the lab with {ALLOWED_ENV}=/that/folder (or set {DATA_ENV})."
    )
