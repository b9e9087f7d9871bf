"""``labs/build.py`` and ``labs/workspace.py`` loaded as modules for the lab tests (``labs/`` is a folder
of notebooks and scripts, not a package)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

LABS = Path(__file__).resolve().parents[2] / "labs"


def _load_script(module: str, file: str):
    """``labs/<file>`` as module ``module``, loaded once per process."""
    if module not in sys.modules:
        spec = importlib.util.spec_from_file_location(module, LABS / file)
        sys.modules[module] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[module])
    return sys.modules[module]


def load_build():
    """The ``labs/build.py`` module."""
    return _load_script("labs_build", "build.py")


def load_workspace():
    """The ``labs/workspace.py`` module (copies the labs into a working folder for JupyterLab)."""
    return _load_script("labs_workspace", "workspace.py")
