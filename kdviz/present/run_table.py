"""The Compare runs table, for both UIs: one row per run folder with its hyper-parameters, filters,
a note per run, deleting a run, and the checks that keep one odd record from breaking a chart.

* ``run_rows(root)``: method (its ``MethodSpec`` label, never the base loss's name: an FSP run is
  "FSP stage 1", not "none"), dataset, model and sizes, T and alpha (for runs with a teacher and a
  distillation loss), epochs, state, last test accuracy, colour, note.
* ``filter_rows``: by dataset and by method.
* ``read_note`` / ``write_note``: a short free-text note kept beside the run in ``notes.json``
  (written atomically, ``engine.run_folder.atomic_write_json``); the run's own records, config and
  status are never rewritten.
* ``delete_run``: removes one run folder, only a folder directly inside the runs root, never a
  symbolic link, never a run whose writer is alive; the caller asks the user to confirm first.
* ``clean_records``: evaluation and step records a chart can draw, and how many were skipped.
"""
from __future__ import annotations

import json
import math
import numbers
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..engine.lock import writer_alive
from ..engine.run_folder import atomic_write_json, read_config
from ..engine.run_reader import read_status
from ..methods import method_of
from ..paths import PathNotAllowed, confine

NOTE_FILE = "notes.json"
NOTE_MAX_CHARS = 2000  # a note is a sentence or a paragraph, not a document
NO_TEACHER_LOSSES = ("ce", "none")  # base losses that use neither T nor alpha (engine.losses names)
COLUMNS = ("name", "method", "dataset", "model", "sizes", "T", "alpha", "epochs", "state", "test_acc", "note")


def run_rows(root: str | os.PathLike) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per run folder directly under ``root`` (newest first) and one sentence per folder
    that could not be read (its config is broken): the rows stay usable whatever one folder holds."""
    root = Path(root)
    if not root.is_dir():
        return [], []
    rows, problems = [], []
    for path in sorted((p for p in root.iterdir() if p.is_dir() and not p.is_symlink()), reverse=True):
        if not (path / "config.json").is_file():
            continue
        try:
            rows.append(run_row(path))
        except (ValueError, TypeError, OSError) as exc:
            problems.append(f"{path.name}: {exc}")
    return rows, problems


def run_row(path: Path) -> dict[str, Any]:
    """The table row of one run folder (``ValueError`` if its config cannot be read)."""
    config = read_config(path)
    spec = method_of(config)
    status = read_status(path)
    distils = bool(config.teacher) and config.method not in NO_TEACHER_LOSSES
    acc = status.get("test_acc")
    return {
        "path": str(path), "name": path.name, "method": spec.label, "colour": spec.colour,
        "dataset": config.dataset, "model": config.model, "sizes": model_sizes(config.model_options),
        "T": float(config.T) if distils else None, "alpha": float(config.alpha) if distils else None,
        "epochs": int(config.epochs), "state": str(status.get("state", "unknown")),
        "test_acc": float(acc) if _finite(acc) else None, "note": read_note(path),
    }


def model_sizes(options: Mapping[str, Any]) -> str:
    """Model options in a few characters: ``{"hidden": [64, 32]}`` -> ``"hidden 64-32"``."""
    parts = []
    for key, value in sorted((options or {}).items()):
        text = "-".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
        parts.append(f"{key} {text}")
    return ", ".join(parts)


def filter_rows(rows: Iterable[Mapping[str, Any]], datasets: Sequence[str] = (), methods: Sequence[str] = ()) -> list[dict]:
    """The rows whose dataset is one of ``datasets`` and whose method label is one of ``methods``
    (an empty choice keeps every value)."""
    return [dict(r) for r in rows if (not datasets or r["dataset"] in datasets) and (not methods or r["method"] in methods)]


def read_note(path: str | os.PathLike) -> str:
    """The run's note ("" when it has none or the file is unreadable)."""
    try:
        data = json.loads((Path(path) / NOTE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    note = data.get("note") if isinstance(data, dict) else None
    return note if isinstance(note, str) else ""


def write_note(path: str | os.PathLike, text: str, root: str | os.PathLike) -> Path:
    """Keep ``text`` as the note of the run folder ``path`` (inside ``root``) in ``notes.json``,
    written to a temporary file and renamed; returns the note file. Only that file is written."""
    if not isinstance(text, str):
        raise TypeError(f"a note is text, got {type(text).__name__}")
    text = text.strip()
    if len(text) > NOTE_MAX_CHARS:
        raise ValueError(f"a note holds at most {NOTE_MAX_CHARS} characters, this one has {len(text)}")
    folder = _run_folder_in(path, root)
    atomic_write_json(folder / NOTE_FILE, {"note": text})
    return folder / NOTE_FILE


def delete_run(path: str | os.PathLike, root: str | os.PathLike) -> Path:
    """Remove the run folder ``path`` and everything in it; returns the removed folder.

    Refused (``ValueError`` naming why, nothing removed): a folder that is not directly inside
    ``root``, a symbolic link, a folder without ``config.json``, and a run whose writer is alive
    (stop it first). Links inside the folder are removed, never followed."""
    folder = _run_folder_in(path, root)
    if writer_alive(folder):
        raise ValueError(f"{folder.name} is still being written by a training job: stop it before deleting it")
    shutil.rmtree(folder)
    return folder


def _run_folder_in(path: str | os.PathLike, root: str | os.PathLike) -> Path:
    """``path`` resolved, when it is a run folder directly inside ``root`` and not a link."""
    raw = Path(path).expanduser()
    if raw.is_symlink():
        raise ValueError(f"{raw.name} is a link, not a run folder: kdviz does not change it")
    root_path = Path(root).expanduser().resolve()
    try:
        folder = confine(raw, "run folder", roots=[root_path])
    except PathNotAllowed:
        raise ValueError(f"{raw} is not a run folder inside the runs root {root_path}") from None
    if folder.parent != root_path:
        raise ValueError(f"{raw} is not a run folder directly inside the runs root {root_path}")
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder.name} is not a run folder (no config.json)")
    return folder


def _finite(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def clean_records(records: Iterable[Mapping[str, Any]]) -> tuple[list[dict], int]:
    """The records a chart can draw, and how many were skipped: an evaluation needs a finite
    ``epoch`` and a ``test_acc`` between 0 and 1; a step needs a finite ``step`` and a numeric
    ``loss`` (NaN and infinity are kept: a diverged run's loss is data). Other kinds pass."""
    kept, skipped = [], 0
    for record in records:
        if not isinstance(record, Mapping):
            skipped += 1
            continue
        kind = record.get("kind")
        if kind == "eval":
            good = _finite(record.get("epoch")) and _finite(record.get("test_acc")) and 0.0 <= record["test_acc"] <= 1.0
        elif kind == "step":
            loss = record.get("loss")
            good = _finite(record.get("step")) and isinstance(loss, (int, float)) and not isinstance(loss, bool)
        else:
            good = True
        if good:
            kept.append(dict(record))
        else:
            skipped += 1
    return kept, skipped


def skipped_note(run_label: str, skipped: int) -> str:
    """The sentence a page shows for a run with odd records."""
    noun = "record" if skipped == 1 else "records"
    return (f"{run_label}: {skipped} metric {noun} skipped (no test accuracy, a value that is not a number, "
            "or no epoch or step); the charts show the rest. The run folder is unchanged.")


def distinct_colours(colours: Sequence[str]) -> list[str]:
    """One colour per run: each run keeps its method's colour, and a second, third... run of the
    same method gets that colour darkened, then lightened, so runs of one method stay one family
    yet can be told apart."""
    seen: dict[str, int] = {}
    out = []
    for colour in colours:
        n = seen.get(colour, 0)
        seen[colour] = n + 1
        out.append(colour if n == 0 else _shade(colour, SHADES[(n - 1) % len(SHADES)]))
    return out


SHADES = (-0.35, 0.4, -0.6, 0.65, -0.2, 0.25)  # negative: towards black; positive: towards white


def _shade(colour: str, amount: float) -> str:
    """``colour`` (``#rrggbb``) moved ``amount`` of the way to white (> 0) or black (< 0)."""
    text = colour.lstrip("#")
    if len(text) != 6:
        return colour
    rgb = [int(text[i:i + 2], 16) for i in (0, 2, 4)]
    target = 255 if amount > 0 else 0
    mixed = [round(c + abs(amount) * (target - c)) for c in rgb]
    return "#" + "".join(f"{c:02x}" for c in mixed)


def thin_records(records: Sequence[Mapping[str, Any]], max_points: int = 400) -> list:
    """At most about ``max_points`` evenly spaced records, always keeping the last one."""
    if max_points < 1:
        raise ValueError(f"max_points must be at least 1, got {max_points}")
    stride = max(1, -(-len(records) // max_points))
    kept = list(records[::stride])
    if records and kept[-1] is not records[-1]:
        kept.append(records[-1])
    return kept


def unique_labels(labels: Sequence[str], folder_names: Sequence[str]) -> list[str]:
    """Legend labels told apart: a label two runs share gets its folder's name after the time
    stamp (``"scratch · 20261129-094024"`` twice -> ``"... · scratch-1"``, ``"... · scratch-2"``)."""
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    out = []
    for label, name in zip(labels, folder_names):
        tail = name[16:] if len(name) > 16 and name[8:9] == "-" else name
        out.append(f"{label} · {tail}" if counts[label] > 1 and tail else label)
    return out
