"""Write the lab notebooks (``labs/*.ipynb``) from the cell lists in ``labs/_cells.py``.

    python labs/_build.py          # rewrite every notebook
    python labs/_build.py --check  # exit 1 if a committed notebook differs from its source

Notebooks are committed without outputs and with stable cell ids, so a rebuild gives the same
bytes and a diff shows only real changes. Each lab is one idea with pictures, runs top to bottom
on the bundled digits data in a couple of minutes, and reads two environment variables:
``KDVIZ_RUNS`` (where run folders go) and ``KDVIZ_LAB_EPOCHS`` (CI shortens training with it).
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cells import LABS  # noqa: E402

HERE = Path(__file__).resolve().parent
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def build_notebook(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    """A v4 notebook from ``(kind, source)`` pairs, kind ``"md"`` or ``"code"``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.metadata["language_info"] = {"name": "python"}
    for i, (kind, source) in enumerate(cells):
        source = source.strip("\n")
        if kind == "md":
            cell = nbformat.v4.new_markdown_cell(source)
        elif kind == "code":
            cell = nbformat.v4.new_code_cell(source)
        else:
            raise ValueError(f"cell kind must be 'md' or 'code', got {kind!r}")
        cell["id"] = f"cell-{i:02d}"
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def render(cells: list[tuple[str, str]]) -> str:
    return nbformat.writes(build_notebook(cells)) + "\n"


def write_labs(labs: dict[str, list[tuple[str, str]]], argv: list[str], script: str) -> int:
    """Write ``labs/<name>.ipynb`` for each entry; with ``--check`` in ``argv``, write nothing and
    return 1 if a committed notebook differs from its source (``script`` says how to fix it)."""
    check = "--check" in argv
    stale = []
    for name, cells in labs.items():
        path = HERE / f"{name}.ipynb"
        text = render(cells)
        if check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(HERE.parent)}")
    if stale:
        print(f"out of date (run python labs/{script}): {', '.join(stale)}")
        return 1
    return 0


def main(argv: list[str]) -> int:
    return write_labs(LABS, argv, "_build.py")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
