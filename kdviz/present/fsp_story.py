"""Captions for the FSP page that say what its charts show, not what they should show (issue 14).

Yim et al. 2017 (section 4.1, "fast optimisation"): a student whose first stage matched the teacher's
FSP matrices (eq. 2) should reach a given accuracy in far fewer main-task iterations than the same
student trained from scratch. Whether it did in this run is read off the records.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

LEVEL_POINTS = 0.5  # accuracy gaps below this many percentage points read as "level"


def loss_fall_caption(values: Sequence[float]) -> str:
    """How far the stage-1 loss fell from its first to its latest evaluation (total loss values)."""
    finite = [float(v) for v in values if v is not None and float(v) > 0]
    if len(finite) < 2:
        return "The loss curve fills in with each stage-1 evaluation."
    first, last = finite[0], finite[-1]
    if last >= first:
        return (f"The loss has not fallen yet ({first:.3g} -> {last:.3g}): stage 1 may need more iterations or a "
                "larger learning rate.")
    return f"The loss fell {first / last:.1f}x so far ({first:.3g} -> {last:.3g}): the student is taking the teacher's flow."


def _acc_at(evals: Sequence[Mapping[str, Any]], step: float) -> float | None:
    """The test accuracy of the last evaluation at or before ``step``."""
    found = [e["test_acc"] for e in evals if "test_acc" in e and e.get("step", 0) <= step]
    return float(found[-1]) if found else None


def race_caption(stage2_evals: Sequence[Mapping[str, Any]], scratch_evals: Sequence[Mapping[str, Any]],
                 label: str = "FSP student") -> str:
    """Stage 2 against scratch at the same number of main-task steps (both counted from their own start)."""
    done = [e for e in stage2_evals if "test_acc" in e]
    if not done:
        return "Stage 2 has not been evaluated yet."
    step = float(done[-1].get("step", 0))
    mine, theirs = float(done[-1]["test_acc"]), _acc_at(scratch_evals, step)
    if theirs is None:
        return f"After {step:.0f} main-task steps the {label} is at {100 * mine:.1f}%; scratch has no evaluation that early."
    gap = 100 * (mine - theirs)
    at = f"after {step:.0f} main-task steps the {label} is at {100 * mine:.1f}% against scratch's {100 * theirs:.1f}%"
    if gap >= LEVEL_POINTS:
        return f"Fast optimisation shows: {at} ({gap:+.1f} points), the head start Yim et al. report (section 4.1)."
    if gap > -LEVEL_POINTS:
        return (f"Level so far: {at}. On easy data the scratch student also learns fast, which leaves little "
                "for stage 1 to speed up.")
    return (f"Scratch leads: {at} ({gap:+.1f} points). Likely reasons: stage 1 too short for the loss to fall, "
            "or a student that already learns this data quickly.")


__all__ = ["LEVEL_POINTS", "loss_fall_caption", "race_caption"]
