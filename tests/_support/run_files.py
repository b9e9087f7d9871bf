"""A run folder's files read directly with json and numpy: the expected values of UI tests, taken from
disk rather than through the readers under test."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def run_folder(root: Path, name: str) -> Path:
    """The one run folder under ``root`` whose name ends in ``-<name>``."""
    found = sorted(p for p in Path(root).iterdir() if p.name.endswith(f"-{name}"))
    assert len(found) == 1, f"expected one {name} run under {root}, found {found}"
    return found[0]


def metric_lines(run: Path, kind: str) -> list[dict]:
    """The ``metrics.jsonl`` records of one ``kind`` ("eval", "step", ...), in file order."""
    lines = (Path(run) / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("kind") == kind]


def snapshot_array(run: Path, step: int, key: str) -> np.ndarray:
    """Array ``key`` of the snapshot taken at ``step``, found through ``snapshots/index.jsonl``."""
    snapshots = Path(run) / "snapshots"
    for entry in map(json.loads, (snapshots / "index.jsonl").read_text().splitlines()):
        if entry["step"] == step:
            with np.load(snapshots / entry["file"], allow_pickle=False) as z:
                return z[key]
    raise AssertionError(f"no snapshot at step {step} in {run}")


def saved_status(path) -> dict:
    """A run folder's ``status.json`` as written."""
    return json.loads((Path(path) / "status.json").read_text())


def run_dirs(root) -> list[Path]:
    """The run folders (folders holding a ``config.json``) directly under ``root``, sorted."""
    return sorted(p for p in Path(root).iterdir() if (p / "config.json").is_file())

