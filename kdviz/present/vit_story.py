"""The transformer-distillation experiment for both UIs: a ViT student distilled from a ViT teacher
(TinyBERT, Jiao et al. 2020, eqs. 7-11; ``kdviz.methods.vit_distill``) beside the same student trained
alone, its settings, its live readings and its captions.

The page, the widget and the lab start the pair from ``distill_experiment`` and read it back with
``loss_series``, ``accuracy_series`` and ``latest_reading``, so none of them spells a hook option, a
metric key or a cadence. ``race_caption`` and ``maps_caption`` say what the records show (who leads,
by how much; how far the student's attention has come), never what it "should" show.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..engine import TrainConfig
from ..engine.setup import steps_per_epoch
from ..methods.scratch import SCRATCH
from ..methods.vit_distill import (
    ATTENTION_LOSS, LOSS_LABELS, LOSSES, VIT_DISTILL, ViTDistillSnapshot, loss_keys, vit_distill_configs,
)
from .story import points
from .vit_configs import student_config

SNAPSHOTS_PER_RUN = 40  # the maps move about this many times over a run
MAX_LOSS_POINTS = 400  # step records drawn per loss (every k-th, the last always)
DISTILLED_JOB, ALONE_JOB = VIT_DISTILL.label, SCRATCH.label


# Measured on digits (one seed, one thread, the digits teacher preset at 96.7 %): with all 1,347 training
# images and 20 epochs the distilled student (probs) ended at 94.4 % beside 94.2 % alone, and 91.3 % with
# TinyBERT's unnormalised scores; on 300 labelled images (30 per class) and 60 epochs, 89.1 % beside 85.3 %.
# So the page opens on 300 images, where the teacher has something to teach.
@dataclass(frozen=True)
class ViTDistillDefaults:
    """The page's opening settings: each loss's weight (0 = off), T, the layer mapping, the student's
    epochs and labelled training images (None: all), and the seconds a run is paced to (watchable)."""

    prediction_weight: float = 1.0
    hidden_weight: float = 1.0
    attention_weight: float = 1.0
    embedding_weight: float = 0.0
    T: float = 1.0
    layer_mapping: str = "uniform"
    attention_kind: str = "probs"
    epochs: int = 60
    train_subset: int | None = 300
    seed: int = 0
    pace_s: float | None = 30.0


VIT_DEFAULTS = ViTDistillDefaults()


def hook_options(defaults: ViTDistillDefaults | None = None, **changes: Any) -> dict[str, Any]:
    """The hook's options from the settings (``changes`` override ``defaults``' fields)."""
    d = {**(defaults or VIT_DEFAULTS).__dict__, **changes}
    options = {f"{name}_weight": float(d[f"{name}_weight"]) for name in LOSSES}
    options.update(T=float(d["T"]), layer_mapping=d["layer_mapping"], attention_kind=d["attention_kind"])
    return options


def distill_experiment(teacher: str, dataset: str = "digits", runs_root: str | None = None, data_root: str | None = None,
                       defaults: ViTDistillDefaults | None = None, **changes: Any) -> dict[str, TrainConfig]:
    """The distilled student and the student trained alone, validated, by job name. Same seed, data,
    batches and schedule; about ``SNAPSHOTS_PER_RUN`` snapshots and evaluations each. ``changes``:
    any ``ViTDistillDefaults`` field (weights, T, layer_mapping, epochs, train_subset, seed, pace_s)
    or ``max_steps``/``batch_size`` (tests)."""
    d = {**(defaults or VIT_DEFAULTS).__dict__}
    extra = {k: changes.pop(k) for k in ("max_steps", "batch_size", "eval_train_samples") if k in changes}
    unknown = sorted(set(changes) - set(d))
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)} (known: {', '.join(d)})")
    d.update(changes)
    fields: dict[str, Any] = dict(epochs=int(d["epochs"]), train_subset=d["train_subset"], seed=int(d["seed"]),
                                  pace_s=d["pace_s"], data_root=data_root, **extra)
    if runs_root is not None:
        fields["runs_root"] = str(runs_root)
    base = student_config(dataset, **fields)
    total = base.epochs * steps_per_epoch(base)
    if base.max_steps is not None:
        total = min(total, base.max_steps)
    every = max(1, total // SNAPSHOTS_PER_RUN)
    base = TrainConfig.from_dict({**base.to_dict(), "eval_every": every, "snapshot_every": every})
    return vit_distill_configs(base, teacher, **hook_options(**{k: d[k] for k in d if k in VIT_DEFAULTS.__dict__}))


def loss_series(steps: Sequence[Mapping[str, Any]], config: Any) -> tuple[list[float], dict[str, list[float]]]:
    """(steps, {loss label: weighted values}) of the losses a distilled run trains on, from its step
    records, thinned to at most ``MAX_LOSS_POINTS`` points (the last kept)."""
    keys = loss_keys(config)
    rows = [r for r in steps if r.get("kind", "step") == "step" and all(k in r for k in keys.values())]
    stride = max(1, -(-len(rows) // MAX_LOSS_POINTS))
    kept = rows[::stride] + ([rows[-1]] if rows and (len(rows) - 1) % stride else [])
    return [float(r["step"]) for r in kept], {LOSS_LABELS[name]: [float(r[key]) for r in kept] for name, key in keys.items()}


def accuracy_series(evals: Sequence[Mapping[str, Any]]) -> tuple[list[float], list[float]]:
    """(steps, test accuracies) from evaluation records."""
    rows = [r for r in evals if "test_acc" in r]
    return [float(r["step"]) for r in rows], [float(r["test_acc"]) for r in rows]


def latest_reading(view: Any) -> ViTDistillSnapshot | None:
    """The distilled run's latest snapshot as typed data (None before the first)."""
    return view.read(VIT_DISTILL) if getattr(view, "snapshots", None) else None


def map_scale(reading: ViTDistillSnapshot) -> float:
    """One colour scale for the teacher's and the student's class-token maps of a snapshot: the largest
    weight the class token gives a patch in either model (so equal colours mean equal attention)."""
    rows = [layer[:, 0, 1:] for layer in (*reading.teacher, *reading.student)]
    return float(max(float(r.max()) for r in rows)) or 1.0


def first_reading(view: Any) -> ViTDistillSnapshot | None:
    return view.read(VIT_DISTILL, view.snapshots[0]) if getattr(view, "snapshots", None) else None


def maps_caption(step: int, first: ViTDistillSnapshot | None, latest: ViTDistillSnapshot) -> str:
    """How far the student's attention has come on the probe batch, in the snapshot's own numbers."""
    now = latest.losses.get(ATTENTION_LOSS)
    if now is None:
        return f"Step {step}."
    text = f"Step {step}: attention-matrix loss (eq. 7, unweighted, 64 test images) {now:.3g}"
    if first is not None and first.losses.get(ATTENTION_LOSS) and first is not latest:
        before = first.losses[ATTENTION_LOSS]
        change = f"{before / now:.2g}x smaller" if 0 < now < before else f"{now / before:.2g}x larger"
        text += f", from {before:.3g} at the start ({change})"
    pairs = ", ".join(f"student {s} ← teacher {t}" for s, t in latest.pairs)
    return text + f". Layer pairs: {pairs}."


def race_caption(distilled: float | None, alone: float | None, teacher: float | None = None, finished: bool = False,
                 distilled_label: str = DISTILLED_JOB, alone_label: str = ALONE_JOB) -> str:
    """Who leads on test accuracy and by how much (points), from the runs' last evaluations."""
    if distilled is None or alone is None:
        return "Waiting for both students' first evaluation…"
    gap = points(distilled - alone)
    when = "ended" if finished else "is"
    if abs(gap) < 0.05:
        text = f"The two students are level at {100 * distilled:.1f} %."
    else:
        leader, other = (distilled_label, alone_label) if gap > 0 else (alone_label, distilled_label)
        text = f"The {leader} {when} ahead of the {other} by {abs(gap):.1f} points ({100 * max(distilled, alone):.1f} %)."
    if teacher is not None:
        text += f" Teacher: {100 * teacher:.1f} %."
        if alone > teacher + 0.05:
            text += (" The teacher is well below the student trained alone, so a student distilled from it copies its "
                     "mistakes: let the teacher train longer (the preset's epochs).")
        elif alone >= teacher:
            text += (" The student alone already matches the teacher, so the teacher has little left to teach: "
                     "try fewer labelled images or a shorter run.")
    return text


def matched_matrices(reading: ViTDistillSnapshot, pair: tuple[int, int], head: int) -> tuple[Any, Any, str]:
    """The probe digit's (N, N) attention of student head ``head`` (0-based) of the pair's student layer,
    and what eq. 7 compares it with: the mean of the teacher layer's heads in that head's group (the
    hook's default ``group_mean`` matching); with a title naming both."""
    s_layer, t_layer = pair
    student, teacher = reading.student[s_layer - 1], reading.teacher[t_layer - 1]
    h_s, h_t = student.shape[0], teacher.shape[0]
    if not 0 <= head < h_s or h_t % h_s:
        raise ValueError(f"student layer {s_layer} has heads 1..{h_s}; the teacher's {h_t} heads must split "
                         f"into {h_s} groups")
    size = h_t // h_s
    group = teacher[head * size:(head + 1) * size].mean(axis=0)
    heads = ", ".join(str(h + 1) for h in range(head * size, (head + 1) * size))
    return group, student[head], f"student layer {s_layer} head {head + 1} ← teacher layer {t_layer} heads {heads}"
