"""The captions of the distillation experiment, written from what the charts show.

A caption that promises "the KD student should stay above" is wrong as soon as a chart shows the
opposite. These pure functions take the runs' numbers (last test accuracies, the probe soft targets)
and return the sentence that matches them: when the KD student leads they say so with the gap; when
the scratch student wins or the two end level they say so and list the likely reasons, read from the
settings and the numbers (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural
Network": soft targets carry most information when the teacher is not overconfident at temperature
T, section 2, and matter most when labelled data are scarce, section 3).

Accuracies are fractions in [0, 1]; gaps are reported in percentage points. Both UIs (the Train a
student page, lab 02) call these, so they tell the same story.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LEVEL_POINTS = 0.5  # a final gap below this many percentage points reads as "level" (seed noise)
OVERCONFIDENT_TOP_PROB = 0.9  # teacher soft targets whose top class holds this much are nearly one-hot
HIGH_ALPHA = 0.8  # soft-target weight above which the labels get little say
SMALL_TEACHER_EDGE_POINTS = 1.0  # a teacher this close to the scratch student has little to pass on
STUDENT_TOO_SMALL_POINTS = 10.0  # a KD student this far below the teacher may lack the capacity to follow it
MANY_LABELS_PER_CLASS = 100  # labelled images per class beyond which labels alone go far
PROBE_SHAPE_MARGIN = 0.03  # total variation by which the KD student must be closer to "take the shape"


@dataclass(frozen=True)
class RaceSettings:
    """What the two students were trained with, as the reasons need it.

    ``train_size``: labelled images each student saw (the transfer set); ``num_classes``: classes;
    ``teacher_top_prob``: the teacher's mean top-class probability at ``T`` on the probe images
    (None when unknown)."""

    T: float
    alpha: float
    train_size: int | None = None
    num_classes: int = 10
    teacher_top_prob: float | None = None


def points(fraction: float) -> float:
    """A fraction (0.031) in percentage points (3.1)."""
    return 100.0 * float(fraction)


def _known(x: float | None) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def scratch_win_reasons(settings: RaceSettings, kd_acc: float, scratch_acc: float,
                        teacher_acc: float | None = None) -> list[str]:
    """Why the scratch student may have matched or beaten the KD student, most telling first.

    Each reason is read from the numbers: an overconfident teacher at this T (its soft targets are
    nearly one-hot, so they say little beyond the labels; Hinton et al. 2015, section 2), a teacher
    barely better than the student alone (the student is large enough, or the teacher weak), a KD
    student far below its teacher (too small to follow it), a high alpha (little weight on the
    labels), plenty of labelled data (soft targets help most when labels are few, section 3)."""
    reasons = []
    if _known(settings.teacher_top_prob) and settings.teacher_top_prob >= OVERCONFIDENT_TOP_PROB:
        reasons.append(f"the teacher is overconfident at T = {settings.T:g}: its top class holds "
                       f"{settings.teacher_top_prob:.0%} of its soft targets on average, so they carry little "
                       "beyond the labels (raise T)")
    if _known(teacher_acc):
        edge = points(teacher_acc - scratch_acc)
        if edge < SMALL_TEACHER_EDGE_POINTS:
            reasons.append(f"the teacher ({teacher_acc:.1%}) is barely better than the student trained alone, "
                           "so it has little to pass on (the student is large enough for the labels, or the "
                           "teacher too weak)")
        elif points(teacher_acc - kd_acc) > STUDENT_TOO_SMALL_POINTS:
            reasons.append(f"the student may be too small to follow the teacher: the KD student ends "
                           f"{points(teacher_acc - kd_acc):.1f} points below it (try a wider student)")
    if settings.alpha > HIGH_ALPHA:
        reasons.append(f"alpha = {settings.alpha:g} leaves only {1 - settings.alpha:.0%} of the weight on the "
                       "labels (try 0.5)")
    if settings.train_size and settings.train_size >= MANY_LABELS_PER_CLASS * settings.num_classes:
        reasons.append(f"with {settings.train_size:,} labelled images the labels alone go far; soft targets "
                       "matter most on a small transfer set")
    return reasons


def accuracy_caption(kd_acc: float | None, scratch_acc: float | None, settings: RaceSettings, *,
                     finished: bool, teacher_acc: float | None = None, kd_label: str = "KD student",
                     scratch_label: str = "scratch student") -> str:
    """The test-accuracy chart's caption: who leads and by how much, from the last evaluations.

    Before both runs have an evaluation it says what to compare; while they run it says who leads
    so far; when they are finished it says who won, and when the scratch student matched or won,
    the likely reasons (``scratch_win_reasons``)."""
    lead = "Evaluated on the held-out test set during training. "
    if not (_known(kd_acc) and _known(scratch_acc)):
        return lead + f"Compare the {kd_label} with the {scratch_label} once both curves appear."
    gap = points(kd_acc - scratch_acc)
    pair = f"({kd_acc:.1%} vs {scratch_acc:.1%})" if gap >= 0 else f"({scratch_acc:.1%} vs {kd_acc:.1%})"  # leader first
    if not finished:
        if abs(gap) < LEVEL_POINTS:
            return lead + f"So far the two students are level {pair}."
        leader = kd_label if gap > 0 else scratch_label
        return lead + f"So far the {leader} leads by {abs(gap):.1f} points {pair}."
    if gap >= LEVEL_POINTS:
        return lead + (f"The {kd_label} ends {gap:.1f} points above the {scratch_label} {pair}: the teacher's "
                       "soft targets taught it what the labels alone did not.")
    verdict = (f"The two students end level {pair}." if gap > -LEVEL_POINTS else
               f"Here the {scratch_label} wins, {-gap:.1f} points above the {kd_label} {pair}.")
    reasons = scratch_win_reasons(settings, kd_acc, scratch_acc, teacher_acc)
    if not reasons:
        return lead + verdict + " The gap is within seed-to-seed noise; try another seed or fewer labelled images."
    return lead + verdict + " Likely reasons: " + "; ".join(reasons) + "."


def total_variation(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Total variation distance ``0.5 * sum_k |p_k - q_k|`` along the last axis (0: same, 1: disjoint)."""
    return 0.5 * np.abs(np.asarray(p, dtype=np.float64) - np.asarray(q, dtype=np.float64)).sum(axis=-1)


def mean_top_probability(soft: np.ndarray) -> float:
    """The mean over rows of each row's largest probability: near 1 for one-hot soft targets."""
    return float(np.asarray(soft, dtype=np.float64).max(axis=-1).mean())


@dataclass(frozen=True)
class ProbeDistances:
    """Mean total variation from the teacher over the probe images at one temperature."""

    T: float
    kd: float
    scratch: float | None
    teacher_top_prob: float


def probe_distances(teacher_soft: np.ndarray, kd_soft: np.ndarray, scratch_soft: np.ndarray | None,
                    T: float) -> ProbeDistances:
    """Distances of the students' soft targets ``(N, K)`` from the teacher's on the same N probe images."""
    scratch = None if scratch_soft is None else float(total_variation(scratch_soft, teacher_soft).mean())
    return ProbeDistances(float(T), float(total_variation(kd_soft, teacher_soft).mean()), scratch,
                          mean_top_probability(teacher_soft))


def probe_caption(distances: ProbeDistances, *, finished: bool, probe_count: int,
                  kd_label: str = "KD student", scratch_label: str = "scratch student") -> str:
    """The probe chart's caption: whose bars are closer to the teacher's, over all probe images.

    The KD student "takes the teacher's shape" only when its mean distance is smaller than the
    scratch student's by ``PROBE_SHAPE_MARGIN``; otherwise the caption says the shapes match as well
    (and why that can be: nearly one-hot soft targets at this T) or that the scratch student is closer."""
    d = distances
    head = f"Blue: the teacher. Over the {probe_count} probe images at T = {d.T:g}, the {kd_label}'s bars are "
    if d.scratch is None:
        return head + f"{d.kd:.2f} from the teacher's (total variation, 0 = the same)."
    head += f"{d.kd:.2f} from the teacher's and the {scratch_label}'s {d.scratch:.2f} (total variation, 0 = the same)"
    so_far = "" if finished else " so far"
    if d.scratch - d.kd >= PROBE_SHAPE_MARGIN:
        return head + f": the {kd_label} has{so_far} taken the teacher's shape, small bars included."
    why = (f" At T = {d.T:g} the teacher's soft targets are nearly one-hot (top class {d.teacher_top_prob:.0%}), "
           "so any accurate student matches them; pick a higher T to see the small bars."
           if d.teacher_top_prob >= OVERCONFIDENT_TOP_PROB else
           " The soft targets did not pull the KD student towards the teacher here: alpha may be low, or "
           "the student too small to follow them.")
    if d.kd - d.scratch >= PROBE_SHAPE_MARGIN:
        return head + f": here the {scratch_label} is{so_far} closer to the teacher." + why
    return head + f": the two students are{so_far} about as close to the teacher." + why


def race_summary(final: Sequence[tuple[float, float]]) -> str:
    """One line for several seeds' ``(kd_acc, scratch_acc)``: how often KD won and the mean gap."""
    if not final:
        raise ValueError("race_summary needs at least one (kd_acc, scratch_acc) pair")
    gaps = [points(k - s) for k, s in final]
    wins = sum(g >= LEVEL_POINTS for g in gaps)
    return (f"KD ahead on {wins} of {len(gaps)} seeds; mean gap {np.mean(gaps):+.1f} points "
            f"(from {min(gaps):+.1f} to {max(gaps):+.1f}).")


__all__ = [
    "HIGH_ALPHA", "LEVEL_POINTS", "MANY_LABELS_PER_CLASS", "OVERCONFIDENT_TOP_PROB", "PROBE_SHAPE_MARGIN",
    "ProbeDistances", "RaceSettings", "accuracy_caption", "mean_top_probability", "points", "probe_caption",
    "probe_distances", "race_summary", "scratch_win_reasons", "total_variation",
]
