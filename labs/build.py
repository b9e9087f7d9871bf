"""Write the lab notebooks and the labs table of ``labs/README.md`` from the lab sources.

    python labs/build.py          # write labs/NN_topic.ipynb for every labs/src/NN_topic.py, and the table
    python labs/build.py --check  # write nothing; exit 1 naming every notebook (or the table) out of date

A lab's source is ``labs/src/NN_topic.py`` in jupytext's percent format (``# %%`` code cells,
``# %% [markdown]`` markdown cells); a new source is picked up with no edit here. Its YAML header
holds the lab's row of the README table under ``kdviz_lab``: ``title``, ``idea``, ``paper`` and
``widgets`` (each widget must appear in the lab's code). A cell marked ``shared="name"`` in its
``# %%`` line must be the same in every lab that has it, so a copy cannot drift (the labs share their
settings, teachers and baselines through ``kdviz.present.labs`` instead of copied cells). Notebooks
are written without outputs, with stable cell ids and fixed metadata, so a rebuild gives the same
bytes and a diff shows only real changes.
"""
from __future__ import annotations

import argparse
import difflib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat

HERE = Path(__file__).resolve().parent
SOURCE_FORMAT = "py:percent"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LAB_NAME = re.compile(r"\d{2}_[a-z0-9_]+")
META_KEY = "kdviz_lab"
FIELDS = ("title", "idea", "paper", "widgets")
TABLE_BEGIN = "<!-- labs table: written by `python labs/build.py` from the headers of labs/src/*.py -->"
TABLE_END = "<!-- end of labs table -->"
NEW_CELL = {"code": nbformat.v4.new_code_cell, "markdown": nbformat.v4.new_markdown_cell,
            "raw": nbformat.v4.new_raw_cell}


class LabError(ValueError):
    """A lab source that cannot be built (bad name, header or shared cell); the message names it."""


@dataclass(frozen=True)
class Lab:
    """One lab: its name (``NN_topic``), source path, the notebook read from it, and its table row."""

    name: str
    source: Path
    notebook: nbformat.NotebookNode
    meta: dict

    def code(self) -> str:
        return "\n".join(c.source for c in self.notebook.cells if c.cell_type == "code")


def lab_sources(labs_dir: Path) -> list[Path]:
    """Every ``src/*.py`` of ``labs_dir``, in lab order; a file not named ``NN_topic.py`` is an error."""
    sources = sorted((labs_dir / "src").glob("*.py"))
    bad = [p.name for p in sources if not LAB_NAME.fullmatch(p.stem)]
    if bad:
        raise LabError(f"lab sources must be named NN_topic.py (two digits, lower case): {', '.join(bad)}")
    return sources


def _check_meta(path: Path, meta: object) -> dict:
    where = f"{path.name}: the header's `{META_KEY}`"
    if not isinstance(meta, dict):
        raise LabError(f"{where} is missing; it needs {', '.join(FIELDS)}")
    missing = [f for f in FIELDS if not meta.get(f)]
    if missing:
        raise LabError(f"{where} lacks {missing} (it needs {', '.join(FIELDS)})")
    unknown = sorted(set(meta) - set(FIELDS))
    if unknown:
        raise LabError(f"{where} has unknown keys {unknown} (known: {', '.join(FIELDS)})")
    widgets = meta["widgets"]
    if not isinstance(widgets, list) or not all(isinstance(w, str) for w in widgets):
        raise LabError(f"{where} widgets must be a list of widget class names, got {widgets!r}")
    for field in FIELDS[:3]:
        text = meta[field]
        if not isinstance(text, str) or "|" in text or "\n" in text:
            raise LabError(f"{where} {field} must be one line of text without '|', got {text!r}")
    return meta


def read_lab(path: Path) -> Lab:
    """The lab in ``path``: its cells as jupytext reads them and its checked header."""
    try:
        notebook = jupytext.read(path, fmt=SOURCE_FORMAT)
    except Exception as exc:  # a YAML or cell-marker error: say which file, keep jupytext's reason
        raise LabError(f"{path.name}: jupytext cannot read it as {SOURCE_FORMAT}: {exc}") from exc
    lab = Lab(path.stem, path, notebook, _check_meta(path, notebook.metadata.get(META_KEY)))
    code = lab.code()
    unused = [w for w in lab.meta["widgets"] if not re.search(rf"\b{re.escape(w)}\b", code)]
    if unused:
        raise LabError(f"{path.name}: header lists widgets its code never uses: {', '.join(unused)}")
    return lab


def render_notebook(lab: Lab) -> str:
    """The notebook text for ``lab``: its header and cells with their metadata, ids ``cell-NN``, no outputs."""
    nb = nbformat.v4.new_notebook()
    nb.metadata.update(lab.notebook.metadata)  # the source's header, so jupytext pairs the two as equal
    nb.metadata.setdefault("kernelspec", KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(lab.notebook.cells):
        new = NEW_CELL[cell.cell_type](cell.source, metadata=dict(cell.metadata))
        new["id"] = f"cell-{i:02d}"
        nb.cells.append(new)
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def shared_cell_problems(labs: list[Lab]) -> list[str]:
    """One line per shared cell that differs between labs, or that only one lab has (a typo)."""
    groups: dict[str, list[tuple[str, nbformat.NotebookNode]]] = {}
    for lab in labs:
        for cell in lab.notebook.cells:
            if "shared" in cell.metadata:
                groups.setdefault(str(cell.metadata["shared"]), []).append((lab.name, cell))
    problems = []
    for name, members in sorted(groups.items()):
        (first, reference), *others = members
        if not others:
            problems.append(f"shared cell {name!r} is only in {first}: share it with another lab or unmark it")
        for other, cell in others:
            if (cell.cell_type, cell.source) != (reference.cell_type, reference.source):
                diff = difflib.unified_diff(reference.source.splitlines(), cell.source.splitlines(),
                                            first, other, lineterm="", n=0)
                detail = "\n    ".join(list(diff)[2:8])
                problems.append(f"shared cell {name!r} differs between {first} and {other}:\n    {detail}")
    return problems


def readme_table(labs: list[Lab]) -> str:
    """The labs table for ``README.md``, one row per lab, from each source's header."""
    rows = ["| lab | idea | paper | widgets |", "|---|---|---|---|"]
    for lab in labs:
        meta, widgets = lab.meta, ", ".join(f"`{w}`" for w in lab.meta["widgets"])
        link = f"[{lab.name[:2]} · {meta['title']}]({lab.name}.ipynb)"
        rows.append(f"| {link} | {meta['idea']} | {meta['paper']} | {widgets} |")
    return "\n".join(rows)


def with_table(readme: str, table: str) -> str:
    """``readme`` with the text between the table markers replaced by ``table``."""
    begin, end = readme.find(TABLE_BEGIN), readme.find(TABLE_END)
    if begin < 0 or end < begin:
        raise LabError(f"README.md needs the markers {TABLE_BEGIN!r} and {TABLE_END!r}, in this order")
    return f"{readme[:begin + len(TABLE_BEGIN)]}\n{table}\n{readme[end:]}"


def expected_files(labs_dir: Path) -> dict[Path, str]:
    """Every file the build writes (each notebook and README.md) with the text it should hold."""
    labs = [read_lab(path) for path in lab_sources(labs_dir)]
    problems = shared_cell_problems(labs)
    if problems:
        raise LabError("\n".join(problems))
    files = {labs_dir / f"{lab.name}.ipynb": render_notebook(lab) for lab in labs}
    readme = labs_dir / "README.md"
    if not readme.is_file():
        raise LabError(f"{readme} is missing: it holds the labs table")
    files[readme] = with_table(readme.read_text(encoding="utf-8"), readme_table(labs))
    return files


def orphans(labs_dir: Path, files: dict[Path, str]) -> list[Path]:
    """Notebooks in ``labs_dir`` that no source builds."""
    return [p for p in sorted(labs_dir.glob("*.ipynb")) if p not in files]


def stale(files: dict[Path, str]) -> list[str]:
    """One line per file that is missing or differs from what the build writes."""
    lines = []
    for path, text in files.items():
        if not path.is_file():
            lines.append(f"{path.name}: missing (built from src/{path.stem}.py)")
        elif path.read_text(encoding="utf-8") != text:
            what = "the labs table differs from the sources' headers" if path.suffix == ".md" else \
                f"differs from src/{path.stem}.py (or holds outputs)"
            lines.append(f"{path.name}: {what}")
    return lines


def main(argv: list[str] | None = None, labs_dir: Path = HERE) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if anything is out of date")
    args = parser.parse_args(argv)
    try:
        files = expected_files(labs_dir)
    except LabError as exc:
        print(f"labs/build.py: {exc}", file=sys.stderr)
        return 1
    problems = [f"{p.name}: has no source (add src/{p.stem}.py or delete it)" for p in orphans(labs_dir, files)]
    if args.check:
        problems = stale(files) + problems
    else:
        for path, text in files.items():
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
                print(f"wrote labs/{path.name}")
    if problems:
        fix = "run python labs/build.py" if args.check else "fix these by hand"
        print(f"labs out of date ({fix}):\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
