"""A reproduction's table and captions for a UI (the Reproduce page, a widget): rows beside the
paper's numbers, what is still missing, and the earlier results under a runs root.

No Streamlit here: plain dicts and strings, so any UI draws the same table the CLI prints
(``table.py`` formats the numbers for both).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .base import Row
from .runner import FOLDER, RESULT_FILE, ReproductionResult, load_result
from .table import format_number, per_seed, training_time

COLUMNS = ("row", "unit", "paper", "ours (mean ± std)", "per seed", "runs done", "train time/run")
NOT_YET = "-"  # a cell whose runs have not ended yet


def ours_cell(row: Row) -> str:
    """``"72.3 ± 4.1"`` (sample std over seeds), the one value, or ``-`` before the first run has ended."""
    if not row.values:
        return NOT_YET
    return format_number(row.mean) + (f" ± {format_number(row.std)}" if row.std is not None else "")


def table_records(rows: list[Row]) -> list[dict[str, str]]:
    """One dict per row (keys ``COLUMNS``): the paper's value beside ours, every seed's value
    (``s0 71, s1 75``), how many of the row's planned runs have ended, mean training time per run."""
    return [{"row": r.label, "unit": r.unit, "paper": format_number(r.paper), "ours (mean ± std)": ours_cell(r),
             "per seed": per_seed(r) if r.values else NOT_YET, "runs done": f"{len(r.values)}/{max(r.expected, len(r.values))}",
             "train time/run": training_time(r)} for r in rows]


def run_labels(result: ReproductionResult) -> dict[str, str]:
    """``{run folder: "row sN"}`` for every run of a result; a run that feeds several rows is named
    after the first, its own row."""
    labels: dict[str, str] = {}
    for row in result.rows:
        for seed, run in zip(row.seeds, row.runs):
            labels.setdefault(run, f"{row.label} s{seed}")
    return labels


def filled_values(rows: list[Row]) -> int:
    """How many measured values the table holds so far (one per finished run and row)."""
    return sum(len(row.values) for row in rows)


def wall_seconds(result: ReproductionResult, now: datetime | None = None) -> float:
    """Seconds since the start while it runs (``wall_s`` is only brought up to date when a run ends), else ``wall_s``."""
    if result.state != "running":
        return result.wall_s
    try:
        started = datetime.strptime(result.started, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return result.wall_s
    return max(result.wall_s, ((now or datetime.now(timezone.utc)) - started).total_seconds())


def result_caption(result: ReproductionResult) -> str:
    """State, seeds, mode, runs ended of planned, wall time, and where the result lies."""
    ended = len(result.runs)
    where = f" · `{result.path}`" if result.path is not None else ""
    machine = f" · {result.machine}" if result.machine else ""
    return (f"**{result.state}** · {ended}/{len(result.planned)} runs ended · seeds {', '.join(map(str, result.seeds))} · "
            f"{'quick' if result.quick else 'full'} · wall time {wall_seconds(result):.0f} s · started {result.started}"
            f"{machine}{where}")


def failed_runs(result: ReproductionResult) -> list[str]:
    """``"scratch/seed1: failed (message)"`` for every run that ended other than finished."""
    return [f"{key}: {run['state']}" + (f" ({run['message']})" if run.get("message") else "")
            for key, run in list(result.runs.items()) if run.get("state") != "finished"]


@dataclass(frozen=True)
class SavedResult:
    """A ``result.json`` under the runs root: its folder and a one-line label, or why it cannot be read."""

    path: Path
    label: str
    problem: str = ""


def saved_results(runs_root: str | os.PathLike) -> list[SavedResult]:
    """Every reproduction result under ``<runs_root>/reproductions``, newest first; one that cannot be
    read is listed with its problem instead of hiding it (its files are left as they are)."""
    folder = Path(runs_root) / FOLDER
    if not folder.is_dir():
        return []
    found = sorted((p for p in folder.iterdir() if (p / RESULT_FILE).is_file()),
                   key=lambda p: ((p / RESULT_FILE).stat().st_mtime, p.name), reverse=True)
    listed = []
    for path in found:
        try:
            result = load_result(path)
        except (ValueError, KeyError, TypeError, OSError) as exc:
            listed.append(SavedResult(path, f"{path.name} (cannot be read)", str(exc) or type(exc).__name__))
            continue
        mode = "quick" if result.quick else "full"
        seeds = f"{len(result.seeds)} seed" + ("s" if len(result.seeds) != 1 else "")
        listed.append(SavedResult(path, f"{result.name} · {mode} · {seeds} · {result.state} · {result.started} ({path.name})"))
    return listed


def data_problem(needed: str, needed_title: str, chosen: str) -> str | None:
    """Why a reproduction on ``needed`` cannot start with the sidebar's dataset ``chosen``; None when it can."""
    if chosen == needed:
        return None
    return (f"This reproduction trains on {needed_title}: choose {needed_title} as the dataset in the sidebar "
            "and type the folder that holds its four IDX files (or tick 'Download if missing').")


def settings_caption(citation: str, settings: str, quick: bool) -> str:
    """The paper, the settings of this mode, and what a quick run can and cannot show."""
    note = (" Quick runs show the table's shape and whether the paper's ordering holds, not its absolute "
            "numbers; choose Full for those.") if quick else ""
    return f"**Paper:** {citation}. **Settings:** {settings}.{note}"
