""""Which distillation?": the shared base config, the results table and the caption of who leads.

The page, the widget and the lab train the scratch student and every chosen member of the
distillation family (``kdviz.present.family``) on the same teacher, student, seed, data and batches,
and show them side by side. This module is what the three share, UI-agnostic and without naming a
method:

* ``family_base_config``: the shared student config, the Train-a-student defaults of the dataset
  (``distill_configs.distill_defaults``: a tiny student on a small class-balanced transfer set,
  paced so a class can watch, measured so that Hinton et al.'s KD beats scratch there), with the
  teacher set: what each member's ``configure`` starts from;
* ``result_rows`` / ``rows_from_views`` / ``table_records``: every run's test accuracy at the furthest
  epoch all runs have reached (the final one once they end together) and its gain over the scratch
  student, in percentage points;
* ``leader_caption``: who leads now and by how much, written from those numbers (conditional: a
  scratch student ahead, a tie within seed noise, runs still without an evaluation are all said as
  such, never a fixed claim that distillation helps).

Accuracies are fractions in [0, 1]; gaps are percentage points (``story.points``).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..engine import TrainConfig
from ..methods.scratch import SCRATCH
from .distill_configs import SCRATCH_JOB, distill_defaults, run_name, student_pair_configs
from .runs import RunView
from .story import LEVEL_POINTS, points

SCRATCH_LABEL = SCRATCH.label  # the scratch student's job name and legend label in every family experiment


def family_base_config(*, teacher: str, dataset: str, train_size: int, runs_root: str, data_root: str | None = None,
                       model: str | None = None, model_options: Mapping[str, Any] | None = None,
                       epochs: int | None = None, lr: float | None = None, seed: int = 0,
                       transfer_size: int | None | str = "default", pace_s: float | None | str = "default",
                       ) -> TrainConfig:
    """The shared student config of a family experiment, with ``teacher`` set (the scratch
    student's config of ``student_pair_configs`` plus the teacher): every unset setting is the
    Train-a-student default of ``dataset`` (``distill_defaults``). ``train_size`` is the dataset's
    number of training images (it sets the evaluation interval); ``transfer_size`` the labelled images
    each student sees (None: all of them; ``"default"``: the dataset's default); ``pace_s`` the least
    seconds a run lasts (None: as fast as it can). A bad setting is a ``ValueError`` naming it."""
    d = distill_defaults(dataset)
    if not teacher:
        raise ValueError("the distillation family needs a finished teacher run folder")
    pair = student_pair_configs(
        teacher=str(teacher), T=d.T, alpha=d.alpha, dataset=dataset, data_root=data_root,
        model=model or d.student_model, model_options=dict(d.student_options if model_options is None else model_options),
        epochs=d.epochs if epochs is None else epochs, lr=d.lr if lr is None else lr, seed=seed, train_size=train_size,
        runs_root=str(runs_root), batch_size=d.batch_size,
        transfer_size=d.transfer_size if transfer_size == "default" else transfer_size,
        pace_s=d.pace_s if pace_s == "default" else pace_s)
    return replace(pair[SCRATCH_JOB], teacher=str(teacher), name=run_name("family student"))


@dataclass(frozen=True)
class ResultRow:
    """One run in the results table: its label, state, latest test accuracy (None before its first
    evaluation) and gain over the scratch student in percentage points (None when either is unknown;
    None for the scratch student itself)."""

    label: str
    state: str
    test_acc: float | None
    gain_points: float | None
    is_scratch: bool = False
    epoch: float | None = None  # the epoch ``test_acc`` was measured at (None: not known)
    last_epoch: float | None = None  # the run's latest evaluated epoch (beyond ``epoch`` when it is ahead)


def _known(x: float | None) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def result_rows(runs: Iterable[tuple[str, str, float | None]], scratch_label: str = SCRATCH_LABEL) -> list[ResultRow]:
    """``ResultRow``s of ``runs`` ((label, state, latest test accuracy) each, in the order given); the
    gain is each run's accuracy minus the one labelled ``scratch_label``'s, in points."""
    runs = list(runs)
    scratch = next((acc for label, _, acc in runs if label == scratch_label), None)
    rows = []
    for label, state, acc in runs:
        acc = float(acc) if _known(acc) else None
        is_scratch = label == scratch_label
        gain = points(acc - scratch) if not is_scratch and _known(acc) and _known(scratch) else None
        rows.append(ResultRow(label, state, acc, gain, is_scratch))
    return rows


def rows_from_views(views: Sequence[RunView]) -> list[ResultRow]:
    """``result_rows`` of run views, each at the furthest epoch every run with an evaluation has
    reached (runs train at different speeds: comparing one at epoch 130 with another at epoch 100
    would crown the faster run, not the better method); the baseline is the first view whose method is
    the scratch student's, whatever its label."""
    series = {v.label: v.eval_series("test_acc") for v in views}
    reached = [epochs[-1] for epochs, _ in series.values() if epochs]
    common = min(reached) if reached else None
    measured = {}
    for label, (epochs, accs) in series.items():
        points_so_far = [(e, a) for e, a in zip(epochs, accs) if common is not None and e <= common + 1e-9]
        measured[label] = points_so_far[-1] if points_so_far else (None, None)
    scratch = next((v.label for v in views if v.method.name == SCRATCH.name), SCRATCH_LABEL)
    rows = result_rows(((v.label, str(v.status().get("state", "unknown")), measured[v.label][1]) for v in views), scratch)
    return [replace(row, epoch=measured[row.label][0], last_epoch=series[row.label][0][-1] if series[row.label][0] else None)
            for row in rows]


def table_records(rows: Sequence[ResultRow]) -> list[dict[str, str]]:
    """The results table as text cells, one dict per run (method, state, test accuracy, gain over scratch)."""
    def gain(row: ResultRow) -> str:
        if row.is_scratch:
            return "(the baseline)"
        return "–" if row.gain_points is None else f"{row.gain_points:+.1f} points"

    return [{"method": row.label, "state": row.state, "at epoch": "–" if row.epoch is None else f"{row.epoch:.4g}",
             "test accuracy": "–" if row.test_acc is None else f"{row.test_acc:.1%}", "gain over scratch": gain(row)}
            for row in rows]


def leader_title(rows: Sequence[ResultRow]) -> str | None:
    """The accuracy chart's title, from the same rows as ``leader_caption`` (each run at the furthest
    epoch every run has reached), so the title and the caption never name different leaders; None
    before two runs have an evaluation."""
    scored = sorted((r for r in rows if r.test_acc is not None), key=lambda r: -r.test_acc)
    if len(scored) < 2:
        return None
    best, second = scored[0], scored[1]
    gap = points(best.test_acc - second.test_acc)
    at = f" at epoch {best.epoch:.4g}" if best.epoch is not None else ""
    if gap < LEVEL_POINTS:
        return f"{best.label} and {second.label} are level{at} ({best.test_acc:.1%})"
    return f"{best.label} leads{at}: {best.test_acc:.1%}, {gap:.1f} points above {second.label}"


def leader_caption(rows: Sequence[ResultRow], *, finished: bool, teacher_acc: float | None = None) -> str:
    """Who leads now (or, ``finished``, who ended best) and by how much, from ``rows``' accuracies.

    Level within ``story.LEVEL_POINTS`` reads as a tie; the scratch student leading is said plainly,
    with how many distilled students it beats; runs without an evaluation are named as waiting."""
    scored = sorted((r for r in rows if r.test_acc is not None), key=lambda r: -r.test_acc)
    waiting = [r.label for r in rows if r.test_acc is None]
    head = "Test accuracy on the held-out test set" + (", the dashed line the teacher. " if teacher_acc is not None else ". ")
    if len(scored) < 2:
        return head + "The comparison starts once at least two runs have an evaluation."
    best, second = scored[0], scored[1]
    gap = points(best.test_acc - second.test_acc)
    when = "ends" if finished else "leads so far"
    if gap < LEVEL_POINTS:
        tied = [r.label for r in scored if points(best.test_acc - r.test_acc) < LEVEL_POINTS]
        text = (f"{_joined(tied)} are level at the top ({best.test_acc:.1%}, within {LEVEL_POINTS:g} points: "
                "seed-to-seed noise). ")
    elif best.is_scratch:
        text = (f"The {best.label} {when} on top with {best.test_acc:.1%}, {gap:.1f} points above the "
                f"{second.label}: no distilled student beats training from the labels alone here"
                f"{' yet' if not finished else ''}. ")
    else:
        text = f"The {best.label} {when} with {best.test_acc:.1%}, {gap:.1f} points above the {second.label}. "
    text += _against_scratch(rows, finished)
    ahead = [r for r in rows if r.epoch is not None and r.last_epoch is not None and r.last_epoch > r.epoch + 1e-9]
    if ahead:
        text += (f" Compared at epoch {best.epoch:.4g}, the furthest every run has reached "
                 f"({_joined([r.label for r in ahead])} {'is' if len(ahead) == 1 else 'are'} further on).")
    if waiting:
        text += f" Waiting for a first evaluation: {_joined(waiting)}."
    return head + text.strip()


def _against_scratch(rows: Sequence[ResultRow], finished: bool) -> str:
    """How many distilled students are above, level with and below the scratch student."""
    gains = [r.gain_points for r in rows if not r.is_scratch and r.gain_points is not None]
    if not gains:
        return ""
    above = sum(g >= LEVEL_POINTS for g in gains)
    below = sum(g <= -LEVEL_POINTS for g in gains)
    counts = f"{above} above, {len(gains) - above - below} level, {below} below"
    return (f"Against the scratch student, the distilled students {'end' if finished else 'are'} {counts} "
            f"(level: within {LEVEL_POINTS:g} points).")


def _joined(labels: Sequence[str]) -> str:
    labels = list(labels)
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


__all__ = ["SCRATCH_LABEL", "ResultRow", "family_base_config", "leader_caption", "result_rows", "rows_from_views",
           "table_records"]
