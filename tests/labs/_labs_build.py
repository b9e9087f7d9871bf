"""``labs/build.py`` loaded as a module for the lab tests (``labs/`` is a folder of notebooks, not a package)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

LABS = Path(__file__).resolve().parents[2] / "labs"


def load_build():
    """The ``labs/build.py`` module, loaded once per process."""
    if "labs_build" not in sys.modules:
        spec = importlib.util.spec_from_file_location("labs_build", LABS / "build.py")
        sys.modules["labs_build"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["labs_build"])
    return sys.modules["labs_build"]


def load_workspace():
    """The ``labs/workspace.py`` module (copies the labs into a working folder for JupyterLab)."""
    if "labs_workspace" not in sys.modules:
        spec = importlib.util.spec_from_file_location("labs_workspace", LABS / "workspace.py")
        sys.modules["labs_workspace"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["labs_workspace"])
    return sys.modules["labs_workspace"]
