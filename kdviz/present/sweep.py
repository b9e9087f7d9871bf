"""What the Sweeps page, ``SweepMonitor`` and ``kdviz sweep`` show of a sweep, computed once.

Everything here reads a sweep record as plain data (``SweepRecord.to_dict()``: its spec and one dict
per trial with ``values``, ``state``, ``last`` and ``run``), so it serves a live sweep and a reopened
``sweep.json`` alike, and it never imports Ray. The heatmap pools, per cell of two chosen fields, the
trials that differ only in other fields (seeds above all): the mean of their last reported test
accuracy and its standard deviation (``ddof=1``: a sample of seeds), with n. A trial that ASHA stopped
counts with the accuracy it had when stopped, and the caption says how many cells hold such trials.
"""
from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..figures.sweep import best_runs_table, sweep_heatmap, sweep_parallel
from ..methods.kd import KD
from .distill_configs import DISTILL_DEFAULTS

METRIC = "test_acc"
BEST_COLUMNS = ("rank", "trial", "test_acc", "state", "step", "run")
FIELD_TITLES = {"T": "temperature T", "alpha": "alpha (weight of the soft targets)", "lr": "learning rate",
                "seed": "seed"}
# The Sweeps page's default: Hinton et al.'s two knobs, T x alpha, on a small student (the Train-a-student
# defaults, shorter), 2 seeds: 4 x 3 x 2 = 24 short runs.
DEFAULT_GRID = {"T": [1.0, 2.0, 4.0, 8.0], "alpha": [0.5, 0.9, 0.99]}


def _trials(record: Mapping[str, Any]) -> list[dict]:
    return list(record.get("trials", []))


def swept_fields(record: Mapping[str, Any]) -> list[str]:
    """The fields that vary between the record's trials, in the spec's order (``seed`` last)."""
    spec = record.get("spec", {})
    names = [*spec.get("grid", {}), *spec.get("random", {})]
    if len(spec.get("seeds", [])) > 1:
        names.append("seed")
    return names


def default_axes(record: Mapping[str, Any]) -> tuple[str, str | None]:
    """The heatmap's (x, y) fields: the first two swept fields other than the seed (y None when one)."""
    names = [n for n in swept_fields(record) if n != "seed"] or ["seed"]
    return names[0], (names[1] if len(names) > 1 else None)


def field_title(name: str) -> str:
    return FIELD_TITLES.get(name, name)


def heatmap_cells(record: Mapping[str, Any], x: str, y: str | None) -> dict[str, Any]:
    """Per (y value, x value): mean, standard deviation and count of the trials' last test accuracy.

    ``y=None`` gives one row. Values come from the trials' swept values (every planned value is a
    row or column, so the grid is drawn before the first trial reports)."""
    trials = _trials(record)
    x_values = _ordered({t["values"].get(x) for t in trials if x in t["values"]}, trials, x)
    y_values = _ordered({t["values"].get(y) for t in trials if y in t["values"]}, trials, y) if y else ["all"]
    mean = np.full((len(y_values), len(x_values)), np.nan)
    std, count = mean.copy(), np.zeros_like(mean, dtype=int)
    for i, yv in enumerate(y_values):
        for j, xv in enumerate(x_values):
            scores = [t["last"][METRIC] for t in trials if t["values"].get(x) == xv
                      and (y is None or t["values"].get(y) == yv) and t.get("last", {}).get(METRIC) is not None]
            count[i, j] = len(scores)
            if scores:
                mean[i, j] = statistics.fmean(scores)
                std[i, j] = statistics.stdev(scores) if len(scores) > 1 else np.nan
    return {"x_values": x_values, "y_values": y_values, "mean": mean, "std": std, "count": count}


def _ordered(values: set, trials: list[dict], name: str) -> list:
    """Numbers sorted; other values in the order the trials list them."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return sorted(values)
    order = []
    for t in trials:
        v = t["values"].get(name)
        if v in values and v not in order:
            order.append(v)
    return order


def heatmap_figure(record: Mapping[str, Any], x: str, y: str | None):
    cells = heatmap_cells(record, x, y)
    return sweep_heatmap(cells["x_values"], cells["y_values"], cells["mean"], cells["std"], cells["count"],
                         field_title(x), field_title(y) if y else "")


def parallel_figure(record: Mapping[str, Any]):
    """Every trial that reported, on parallel coordinates of the swept fields and its test accuracy."""
    reported = [t for t in _trials(record) if t.get("last", {}).get(METRIC) is not None]
    names = swept_fields(record)
    columns = {name: [t["values"].get(name) for t in reported] for name in names}
    return sweep_parallel(columns, [t["last"][METRIC] for t in reported])


def best_trials(record: Mapping[str, Any], limit: int = 10) -> list[dict]:
    """The trials with the highest last test accuracy (rank, key, accuracy, state, step, run folder)."""
    reported = [t for t in _trials(record) if t.get("last", {}).get(METRIC) is not None]
    reported.sort(key=lambda t: -t["last"][METRIC])
    rows = []
    for rank, t in enumerate(reported[:limit], start=1):
        state = "stopped by ASHA" if t.get("stopped_by_scheduler") and t["state"] == "stopped" else t["state"]
        rows.append({"rank": rank, "trial": t["key"], "test_acc": float(t["last"][METRIC]), "state": state,
                     "step": int(t["last"].get("step", 0)), "run": t.get("run", "")})
    return rows


SHOWN_COLUMNS = ("rank", "trial", "test accuracy", "state", "step", "run folder")


def best_table_figure(record: Mapping[str, Any], limit: int = 10):
    """The best trials as a table a reader scans: accuracy in percent, the run folder's name (it opens
    on every page under the runs root) rather than its whole path."""
    rows = [{"rank": r["rank"], "trial": r["trial"], "test accuracy": r["test_acc"], "state": r["state"],
             "step": r["step"], "run folder": Path(r["run"]).name if r["run"] else ""}
            for r in best_trials(record, limit)]
    return best_runs_table(rows, SHOWN_COLUMNS)


def state_counts(record: Mapping[str, Any]) -> dict[str, int]:
    counts = {"pending": 0, "running": 0, "finished": 0, "stopped": 0, "failed": 0}
    for t in _trials(record):
        counts[t["state"]] = counts.get(t["state"], 0) + 1
    return counts


def sweep_caption(record: Mapping[str, Any]) -> str:
    """The sweep in words: its trials' states, how many ASHA stopped, where it ran, the best cell."""
    trials, counts = _trials(record), state_counts(record)
    asha = sum(1 for t in trials if t.get("stopped_by_scheduler") and t["state"] == "stopped")
    parts = [f"{n} {state}" for state, n in counts.items() if n and state != "stopped"]
    if counts["stopped"]:
        parts.append(f"{counts['stopped']} stopped" + (f" ({asha} early by ASHA)" if asha else ""))
    text = f"{len(trials)} trials: {', '.join(parts) or 'none yet'}"
    if record.get("cluster"):
        text += f"; on {record['cluster']}"
    if record.get("state") not in (None, "running"):
        text += f"; the sweep {record['state']} after {record.get('wall_s', 0):.0f} s"
    best = best_trials(record, limit=1)
    if best:
        text += f". Best trial: {best[0]['trial']} at {100 * best[0]['test_acc']:.1f}% test accuracy"
    if record.get("state") == "failed" and record.get("message"):
        text += f". The sweep failed: {record['message']}"
    return text + "."


def failed_lines(record: Mapping[str, Any]) -> list[str]:
    """One line per failed trial: its key and why."""
    return [f"{t['key']}: {t.get('message') or 'failed'}" for t in _trials(record) if t["state"] == "failed"]


def default_sweep_base(dataset: str, teacher: str | None, max_steps: int = 300) -> dict[str, Any]:
    """The page's default base config: a KD student (the Train-a-student defaults of ``dataset``, at most
    ``max_steps`` steps, no pacing) of ``teacher`` (a finished run folder)."""
    d = DISTILL_DEFAULTS.get(dataset, DISTILL_DEFAULTS["digits"])
    return {"dataset": dataset, "model": d.student_model, "model_options": dict(d.student_options), "method": KD.loss,
            "teacher": teacher, "lr": d.lr, "batch_size": d.batch_size, "epochs": d.epochs, "max_steps": max_steps,
            "train_subset": d.transfer_size, "eval_every": max(1, max_steps // 10), "snapshot_every": 0,
            "name": "sweep"}


def values_text(values: Sequence) -> str:
    """A list of values as a text box shows them (``"1, 2, 4"``)."""
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


__all__ = [
    "BEST_COLUMNS", "DEFAULT_GRID", "best_table_figure", "best_trials", "default_axes", "default_sweep_base",
    "failed_lines", "field_title", "heatmap_cells", "heatmap_figure", "parallel_figure", "state_counts",
    "sweep_caption", "swept_fields", "values_text",
]
