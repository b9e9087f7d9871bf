"""Training charts, drawn from engine records (``store.metrics_since`` / ``RunReader``) and snapshots.

* ``loss_curves``: the total loss and its parts (Hinton et al. 2015, section 2: the soft-target
  term ``alpha * T^2 * KL`` and the hard-label term ``(1 - alpha) * CE``) plus any hook terms.
* ``accuracy_comparison``: test accuracy of several runs over epochs, the teacher as a reference line.
* ``probe_soft_targets``: one probe image's soft targets, student beside teacher, at one temperature.
* ``run_comparison``: final test errors of several runs (optionally beside a paper's numbers).

Runs are passed as plain dicts ``{"label": ..., "colour": ..., "records": [...]}``: the caller
gives each run's legend label and colour (a method's ``MethodSpec.colour``, via
``kdviz.present.RunView.colour``), so a KD student is the same colour on every chart and this module
never looks a method up. Reference lines (the teacher) and loss parts keep palette defaults, which
callers may override.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from . import theme

TEACHER_COLOUR = theme.ROLE_COLORS["teacher"]  # the teacher's reference line and bars (default)
STUDENT_COLOUR = theme.ROLE_COLORS["student"]  # a student's probe bars (default)
# Loss parts: the total in black, the soft-target term in the distilled student's colour, the
# hard-label term in the label-only student's colour (Hinton et al. 2015, section 2).
PART_COLOURS = {"loss": theme.OKABE_ITO["black"], "soft": theme.ROLE_COLORS["kd student"],
                "hard": theme.ROLE_COLORS["scratch student"]}
BASE_PARTS = {"loss": "total", "soft": "soft targets (alpha T² KL)", "hard": "hard labels ((1 - alpha) CE)"}
_STEP_KEYS = {"kind", "seq", "step", "epoch", "t", "lr", *BASE_PARTS}


def _step_records(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    if isinstance(records, (str, bytes)) or not isinstance(records, Sequence):
        raise TypeError(f"records must be a list of metric dicts, got {type(records).__name__}")
    return [r for r in records if r.get("kind") == "step"]


def loss_curves(records: Sequence[Mapping[str, Any]], log_y: bool = False, title: str | None = None) -> go.Figure:
    """Total, soft and hard loss (and hook terms) per training step.

    ``records``: metric records; only ``kind == "step"`` ones are drawn. Parts that are zero
    throughout (the soft part of a cross-entropy run) are left out.
    """
    steps = _step_records(records)
    if not steps:
        raise ValueError("no step records to draw (has the run taken a step yet?)")
    x = [r["step"] for r in steps]
    hook_keys = sorted({k for r in steps for k in r if k not in _STEP_KEYS and isinstance(r[k], (int, float))})
    fig = go.Figure()
    for i, key in enumerate([*BASE_PARTS, *hook_keys]):
        y = [r.get(key) for r in steps]
        if key != "loss" and all(v in (None, 0, 0.0) for v in y):
            continue
        fig.add_scatter(
            x=x, y=y, mode="lines", name=BASE_PARTS.get(key, key),
            line={"color": PART_COLOURS.get(key, theme.SERIES[(i + 3) % len(theme.SERIES)]), "width": 2.2 if key == "loss" else 1.5},
            hovertemplate="step %{x}: %{y:.4f}<extra>" + BASE_PARTS.get(key, key) + "</extra>",
        )
    if log_y:
        fig.update_yaxes(type="log")
    first, last = float(np.mean([r["loss"] for r in steps[:10]])), float(np.mean([r["loss"] for r in steps[-10:]]))
    default = f"Training loss fell from {first:.3g} to {last:.3g}" if last < first else f"Training loss has not fallen yet ({first:.3g} -> {last:.3g})"
    return theme.apply(fig, title or default, x_title="training step (optimizer updates)", y_title="loss (nats per sample)")


def _eval_series(records: Sequence[Mapping[str, Any]], metric: str) -> tuple[list[float], list[float]]:
    evals = [r for r in records if r.get("kind") == "eval" and metric in r]
    return [r["epoch"] for r in evals], [100.0 * r[metric] for r in evals]


def run_colour(run: Mapping[str, Any], index: int) -> str:
    """A run dict's ``colour``; without one, its ``role``'s palette colour (kept while pruning and
    quantization figures still pass roles), else the ``index``-th series colour."""
    colour = run.get("colour")
    if colour:
        return str(colour)
    return theme.role_color(str(run.get("role", "")), index)


def accuracy_comparison(
    runs: Sequence[Mapping[str, Any]], teacher_accuracy: float | None = None, metric: str = "test_acc",
    title: str | None = None, teacher_colour: str = TEACHER_COLOUR,
) -> go.Figure:
    """Accuracy (percent) over epochs for several runs, with the teacher as a dashed horizontal line.

    ``runs``: dicts with ``label``, ``colour`` (the run's line colour) and ``records`` (metric
    records with ``kind == "eval"``). ``teacher_accuracy`` is a fraction in [0, 1].
    """
    if not runs and teacher_accuracy is None:
        raise ValueError("nothing to compare: give at least one run or a teacher accuracy")
    fig = go.Figure()
    finals: list[tuple[str, float]] = []
    for i, run in enumerate(runs):
        if not {"label", "records"} <= set(run):
            raise ValueError(f"each run needs 'label' and 'records' (and a 'colour'), got keys {sorted(run)}")
        x, y = _eval_series(run["records"], metric)
        fig.add_scatter(x=x, y=y, mode="lines+markers", name=run["label"], line={"color": run_colour(run, i), "width": 2},
                        marker={"size": 5}, hovertemplate="epoch %{x:.2f}: %{y:.2f}%<extra>" + run["label"] + "</extra>")
        if y:
            finals.append((run["label"], y[-1]))
    if teacher_accuracy is not None:
        if not 0.0 <= teacher_accuracy <= 1.0:
            raise ValueError(f"teacher_accuracy is a fraction in [0, 1], got {teacher_accuracy}")
        fig.add_hline(y=100.0 * teacher_accuracy, line={"color": teacher_colour, "dash": "dash", "width": 2},
                      annotation_text=f"teacher {100 * teacher_accuracy:.2f}%", annotation_position="bottom right")
    if title is None:
        if len(finals) >= 2:
            best, second = sorted(finals, key=lambda f: -f[1])[:2]
            title = f"{best[0]} ends {best[1] - second[1]:.2f} points above {second[0]}"
        elif finals:
            title = f"{finals[0][0]} reaches {finals[0][1]:.2f}%"
        else:
            title = "No evaluations yet"
    name = {"test_acc": "test accuracy", "train_acc": "train accuracy", "agreement_test": "agreement with the teacher"}.get(metric, metric)
    return theme.apply(fig, title, x_title="epoch", y_title=f"{name} (%)")


def probe_soft_targets(
    student_probs: Sequence[float], teacher_probs: Sequence[float] | None, class_names: Sequence[str], T: float,
    true_class: int | None = None, title: str | None = None, student_label: str = "student",
    student_colour: str = STUDENT_COLOUR, teacher_colour: str = TEACHER_COLOUR,
) -> go.Figure:
    """Bars per class: the student's softmax(z / T) beside the teacher's for one probe image.

    ``student_label`` and ``student_colour`` name and colour the student's bars (the run's legend
    label and its method's colour); the teacher's bars are ``teacher_colour``.

    What to notice: at a high T the teacher's small probabilities (which wrong classes look alike)
    become visible, and distillation pulls the student's bars towards them.
    """
    s = np.asarray(student_probs, dtype=np.float64)
    if s.ndim != 1 or len(s) != len(class_names):
        raise ValueError(f"student_probs must be one probability per class ({len(class_names)}), got shape {s.shape}")
    fig = go.Figure()
    names = [str(c) for c in class_names]
    if teacher_probs is not None:
        t = np.asarray(teacher_probs, dtype=np.float64)
        if t.shape != s.shape:
            raise ValueError(f"teacher_probs shape {t.shape} differs from student_probs shape {s.shape}")
        fig.add_bar(x=names, y=t, name="teacher", marker_color=teacher_colour,
                    hovertemplate="class %{x}: %{y:.4f}<extra>teacher</extra>")
    fig.add_bar(x=names, y=s, name=student_label, marker_color=student_colour,
                hovertemplate="class %{x}: %{y:.4f}<extra>" + student_label + "</extra>")
    fig.update_layout(barmode="group", bargap=0.2)
    fig.update_yaxes(range=[0, 1.02])
    if title is None:
        if teacher_probs is not None:
            tv = 0.5 * float(np.abs(s - t).sum())
            title = f"At T = {T:g} the student's soft targets differ from the teacher's by {tv:.3f} (total variation)"
        else:
            title = f"Student soft targets at T = {T:g}: top class {names[int(s.argmax())]} with {s.max():.1%}"
    subtitle = f"true class {names[true_class]}" if true_class is not None else None
    return theme.apply(fig, title, x_title="class", y_title=f"probability at T = {T:g}", subtitle=subtitle)


def probe_soft_targets_from_snapshot(snapshot: Any, reference: Mapping[str, np.ndarray], sample: int, temperature_index: int,
                                     class_names: Sequence[str], student_label: str = "student",
                                     student_colour: str = STUDENT_COLOUR) -> go.Figure:
    """``probe_soft_targets`` for probe ``sample`` at ``reference["probe/temperatures"][temperature_index]``
    from an engine ``Snapshot`` and the run's reference arrays (teacher bars when the run has a teacher)."""
    temps = reference["probe/temperatures"]
    if not 0 <= temperature_index < len(temps):
        raise ValueError(f"temperature_index must be in 0..{len(temps) - 1}, got {temperature_index}")
    student = snapshot.arrays["probe/soft"][temperature_index, sample]
    teacher = reference["teacher/soft"][temperature_index, sample] if "teacher/soft" in reference else None
    return probe_soft_targets(student, teacher, class_names, float(temps[temperature_index]), int(reference["probe/labels"][sample]),
                              student_label=student_label, student_colour=student_colour)


def run_comparison(runs: Sequence[Mapping[str, Any]], reference_label: str = "paper", title: str | None = None,
                   value_title: str = "test errors (count)", lower_is_better: bool = True) -> go.Figure:
    """Horizontal bars of one final number per run (e.g. MNIST test errors), each run in its own
    colour, with an optional ``reference`` value per run drawn as a black diamond (a paper's result).

    ``runs``: dicts with ``label``, ``colour``, ``value`` and optionally ``reference``.
    """
    if not runs:
        raise ValueError("run_comparison needs at least one run")
    labels = [str(r["label"]) for r in runs]
    values = [float(r["value"]) for r in runs]
    fig = go.Figure(go.Bar(
        y=labels, x=values, orientation="h", name="this run", text=[f"{v:g}" for v in values], textposition="outside",
        marker_color=[run_colour(r, i) for i, r in enumerate(runs)],
        hovertemplate="%{y}: %{x}<extra></extra>",
    ))
    refs = [(r["label"], float(r["reference"])) for r in runs if r.get("reference") is not None]
    if refs:
        fig.add_scatter(y=[r[0] for r in refs], x=[r[1] for r in refs], mode="markers", name=reference_label,
                        marker={"symbol": "diamond", "size": 12, "color": theme.OKABE_ITO["black"]},
                        hovertemplate="%{y}: " + reference_label + " %{x}<extra></extra>")
    fig.update_yaxes(autorange="reversed")
    if title is None:
        best = int(np.argmin(values) if lower_is_better else np.argmax(values))
        title = f"Best: {labels[best]} with {values[best]:g}"
    return theme.apply(fig, title, x_title=value_title, y_title="run", height=max(260, 60 + 45 * len(runs)))
