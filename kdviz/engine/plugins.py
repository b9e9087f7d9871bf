"""Loading the method plug-ins that register the engine's hooks and base losses.

The engine runs whatever a config names (``method``, ``hooks``) but never names a method itself:
the methods live one layer up, in ``kdviz.methods`` and in any installed package that declares an
entry point in the ``kdviz.methods`` group (``[project.entry-points."kdviz.methods"]`` in its
``pyproject.toml``). The registries ``HOOKS`` and ``LOSSES`` call ``load_plugins`` on their first
lookup, so a fresh process (the CLI, a resumed run, a notebook) finds every method without an
import list to keep in sync. See docs/architecture.md, "The method seam".
"""
from __future__ import annotations

import importlib
import threading
from importlib.metadata import entry_points

ENTRY_POINT_GROUP = "kdviz.methods"
BUILTIN_PLUGINS = "kdviz.methods"  # the package of built-in methods; it names them, the engine does not

_LOCK = threading.RLock()
_loaded = False


def load_plugins() -> None:
    """Import the built-in methods and every installed ``kdviz.methods`` entry point, once."""
    global _loaded
    with _LOCK:
        if _loaded:
            return
        _loaded = True
        importlib.import_module(BUILTIN_PLUGINS)
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            if entry.value != BUILTIN_PLUGINS:
                entry.load()
