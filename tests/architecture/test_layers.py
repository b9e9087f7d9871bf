"""The method seam's rules, checked on the source tree (docs/architecture.md, issue #12).

* Imports only point down the layers: maths (distill, prune, quant, data, models, palette, registry, paths)
  < engine < methods < present and reproduce < app, widgets and cli (``kdviz/cli.py``); figures sit
  beside methods and import neither the engine nor the methods.
* A method's name is compared or spelled as a string only in ``kdviz/methods/`` (and in configs).
* No module over 400 lines, no function over 60 lines.
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "kdviz"
MATHS = {"distill", "prune", "quant", "data", "models", "palette", "registry", "paths", "deploy"}
# What each layer may import from kdviz (besides itself).
ALLOWED: dict[str, set[str]] = {
    **{m: MATHS for m in MATHS},
    "engine": MATHS,
    "figures": MATHS,
    "methods": MATHS | {"engine"},
    "present": MATHS | {"engine", "methods", "figures"},
    "reproduce": MATHS | {"engine", "methods", "figures", "present"},  # presentation level, beside present
    "sweep": MATHS | {"engine", "methods", "figures", "present"},  # Ray Tune trials: presentation level, beside present
    "importer": MATHS | {"engine"},  # your weights as a finished run, written through the engine's RunFolder
    "app": MATHS | {"engine", "methods", "figures", "present", "reproduce", "sweep", "importer"},
    "widgets": MATHS | {"engine", "methods", "figures", "present", "reproduce", "sweep", "importer"},
    "cli": MATHS | {"engine", "methods", "figures", "present", "reproduce", "sweep", "importer"},  # kdviz/cli.py: the engine CLI + plugins
}


def layer_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def kdviz_imports(path: Path) -> set[str]:
    """The kdviz layers a module imports (absolute ``kdviz.x`` and relative ``..x`` imports)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package_parts = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                module = ".".join([*base, *(node.module.split(".") if node.module else [])])
                names = [module] if node.module else [f"{module}.{a.name}" for a in node.names]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "kdviz" and len(parts) > 1:
                found.add(parts[1])
    return found


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_imports_only_point_down_the_layers():
    bad = []
    for path in modules():
        layer = layer_of(path)
        if layer in ("__init__", "__main__"):
            continue
        allowed = ALLOWED.get(layer)
        assert allowed is not None, f"{path} is in a layer the architecture does not name: {layer!r}"
        for target in kdviz_imports(path) - {layer} - allowed:
            bad.append(f"{path.relative_to(PACKAGE.parent)} ({layer}) imports kdviz.{target}")
    assert not bad, "imports that point up or sideways:\n" + "\n".join(bad)


def test_importing_a_figure_module_loads_no_engine():
    code = ("import kdviz.figures.fsp_live, kdviz.figures.training, sys; "
            "print(sorted(m for m in sys.modules if m.startswith(('kdviz.engine', 'kdviz.methods'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


# Every registered method, hook and loss name (so a new method is covered the day it registers), less
# the words that also name roles or plain things: a teacher run, the plain cross-entropy and no loss.
GENERIC_NAMES = {"teacher", "ce", "none"}


def registered_method_names() -> set[str]:
    import kdviz.methods  # noqa: F401  (registers every method)
    from kdviz.engine import HOOKS, LOSSES
    from kdviz.methods import METHOD_SPECS

    return (set(METHOD_SPECS.names()) | set(HOOKS.names()) | set(LOSSES.names())) - GENERIC_NAMES


METHOD_NAME = re.compile(r"""["'](%s)["']""" % "|".join(sorted(map(re.escape, registered_method_names()))))


@pytest.mark.parametrize("layer", ["app", "widgets", "figures", "engine", "present", "reproduce", "sweep", "importer"])
def test_no_method_name_strings_outside_methods(layer):
    hits = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if METHOD_NAME.search(line.split("#")[0]):
                hits.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}")
    assert not hits, "method names spelled outside kdviz/methods:\n" + "\n".join(hits)


def test_modules_and_functions_stay_small():
    long_modules, long_functions = [], []
    for path in [*modules(), *sorted(PACKAGE.parent.glob("*.py"))]:
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 400:
            long_modules.append(f"{path.name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 60:
                    long_functions.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}: {length} lines")
    assert not long_modules and not long_functions, "\n".join(long_modules + long_functions)
