"""What a reproduction is: a paper's table, the runs that rebuild it, and how finished runs become rows.

A :class:`Reproduction` names a paper's experiment (``hinton-mnist``), quotes the paper's numbers
(:class:`PaperNumber`, one per table row), plans the training runs for a number of seeds
(:class:`PlannedRun`: a ``TrainConfig`` plus the row it feeds and the seed it stands for) and
measures finished run folders into :class:`Row` s: every seed's value, their mean and sample
standard deviation, and the training time of each run. Nothing here starts a job: ``runner.py``
does, so a page, a widget, the CLI and ``bench/`` share one plan and one measure.

A run with ``reuse=True`` (a teacher, a dense baseline) is trained once per runs root and reused by
later reproductions with the same settings (``kdviz.engine.train_teacher_cached``); ``after`` names
the planned run whose finished folder becomes this run's ``link`` field (``teacher``, or
``init_from`` for a fine-tune that starts from it).
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine import TrainConfig, open_run
from ..registry import Registry


@dataclass(frozen=True)
class PaperNumber:
    """One row of the paper's table: ``value`` in ``unit`` (e.g. 146 test errors), ``note`` the setting."""

    label: str
    value: float | None
    unit: str
    note: str = ""


@dataclass(frozen=True)
class PlannedRun:
    """One training run of a reproduction: ``key`` is unique in the plan (``"distilled/seed2"``),
    ``row`` the table row its value goes to (``extra_rows``: further rows measured on the same run),
    ``seed`` the seed it stands for."""

    key: str
    row: str
    seed: int
    config: TrainConfig
    reuse: bool = False  # trained once per runs root and reused (a teacher, a baseline)
    after: str | None = None  # the key of the run that must finish first; its folder goes into ``link``
    link: str = "teacher"  # the TrainConfig field set to that run's folder ("teacher" or "init_from")
    extra_rows: tuple[str, ...] = ()

    @property
    def rows(self) -> tuple[str, ...]:
        return (self.row, *self.extra_rows)


@dataclass(frozen=True)
class FinishedRun:
    """A planned run and the run folder that trained it (state "finished")."""

    planned: PlannedRun
    path: Path


@dataclass
class Row:
    """Our number for one row of the table, beside the paper's.

    ``values[i]`` was measured with ``seeds[i]`` in ``runs[i]``, which trained for ``train_s[i]``
    seconds; ``std`` is the sample standard deviation (n - 1), None with fewer than two values."""

    label: str
    unit: str
    paper: float | None
    paper_note: str = ""
    values: list[float] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    train_s: list[float] = field(default_factory=list)
    expected: int = 0  # how many runs the plan has for this row

    @property
    def mean(self) -> float | None:
        return sum(self.values) / len(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return sample_std(self.values)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "unit": self.unit, "paper": self.paper, "paper_note": self.paper_note,
                "values": list(self.values), "seeds": list(self.seeds), "runs": list(self.runs),
                "train_s": list(self.train_s), "expected": self.expected, "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Row":
        names = ("label", "unit", "paper", "paper_note", "values", "seeds", "runs", "train_s", "expected")
        return cls(**{k: data[k] for k in names if k in data})


def sample_std(values: Sequence[float]) -> float | None:
    """sqrt(sum((v - mean)^2) / (n - 1)); None for fewer than two values."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def seed_list(seeds: int | Iterable[int]) -> list[int]:
    """``3`` -> ``[0, 1, 2]``; a list of seeds is kept as given. At least one seed, no repeats."""
    if isinstance(seeds, bool):
        raise ValueError(f"seeds must be a number of seeds or a list of seeds, got {seeds!r}")
    chosen = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not chosen:
        raise ValueError(f"seeds must be at least 1, got {seeds!r}")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"seeds repeat: {chosen}")
    return chosen


def final_test_accuracy(path: str | os.PathLike) -> float:
    """The test accuracy of a run folder's last evaluation record."""
    evals = open_run(path).metrics("eval")
    if not evals:
        raise ValueError(f"run {path} has no evaluation record")
    return float(evals[-1]["test_acc"])


def training_seconds(path: str | os.PathLike) -> float:
    """Seconds the run trained for (the clock of its last record; pauses excluded)."""
    records = open_run(path).metrics()
    return float(records[-1].get("t", 0.0)) if records else 0.0


@dataclass(frozen=True)
class Reproduction:
    """A paper's table and how to rebuild it (see the module docstring).

    ``plan_runs(seeds, quick)`` returns the runs for ``seeds`` (a list); ``value_of(path, row)`` measures
    one finished run folder for one of its rows, in that row's unit. ``settings(quick)`` describes the settings in words."""

    name: str
    title: str
    citation: str
    dataset: str
    paper: tuple[PaperNumber, ...]
    plan_runs: Callable[[list[int], bool], list[PlannedRun]]
    value_of: Callable[[Path, str], float]
    settings: Callable[[bool], str] = lambda quick: ""

    def plan(self, seeds: int | Iterable[int], quick: bool = False) -> list[PlannedRun]:
        """The runs to train for ``seeds`` (a count: seeds 0..n-1, or the seeds themselves)."""
        runs = self.plan_runs(seed_list(seeds), bool(quick))
        keys = [run.key for run in runs]
        if len(set(keys)) != len(keys):
            raise ValueError(f"reproduction {self.name!r} planned two runs with one key: {keys}")
        return runs

    def measure(self, finished: Iterable[FinishedRun], plan: Sequence[PlannedRun] = ()) -> list[Row]:
        """Rows in the paper's order (then any extra rows), each with every finished run's value.

        ``plan`` (optional) sets how many runs each row expects, so a partial table says what is missing."""
        paper = {p.label: p for p in self.paper}
        rows: dict[str, Row] = {p.label: Row(p.label, p.unit, p.value, p.note) for p in self.paper}
        unit = self.paper[0].unit if self.paper else ""
        for planned in plan:
            for label in planned.rows:
                rows.setdefault(label, Row(label, unit, None)).expected += 1
        for run in sorted(finished, key=lambda r: (r.planned.row, r.planned.seed)):
            for label in run.planned.rows:
                row = rows.setdefault(label, Row(label, unit, None))
                row.values.append(float(self.value_of(run.path, label)))
                row.seeds.append(run.planned.seed)
                row.runs.append(str(run.path))
                row.train_s.append(training_seconds(run.path))
        return [row for label, row in rows.items() if label in paper or row.values or row.expected]


REPRODUCTIONS: Registry[Reproduction] = Registry("reproduction")


def register(reproduction: Reproduction) -> Reproduction:
    """Add ``reproduction`` to :data:`REPRODUCTIONS` under its name."""
    REPRODUCTIONS.register(reproduction.name)(reproduction)
    return reproduction
