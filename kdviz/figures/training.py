"""Training charts, drawn from engine records (``store.metrics_since`` / ``RunReader``) and snapshots.

* ``loss_curves``: the total loss and its parts (Hinton et al. 2015, section 2: the soft-target
  term ``alpha * T^2 * KL`` and the hard-label term ``(1 - alpha) * CE``) plus any hook terms.
* ``accuracy_comparison``: test accuracy of several runs over epochs, the teacher as a reference line.
* ``probe_soft_targets``: one probe image's soft targets, student beside teacher, at one temperature.
* ``run_comparison``: final test errors of several runs (optionally beside a paper's numbers).
* ``ema_smooth``: TensorBoard's scalar smoothing (a debiased exponential moving average), which
  ``loss_curves`` and ``accuracy_comparison`` draw over the faint raw curve when ``smoothing > 0``.

Axes fit the data by default (``theme.fitted_range``: a 2-point gap between two students is not
lost on a 0-100 axis); loss curves can use a log axis. Legends sit under the plot
(``theme.fit_legend``), never over the title, and scroll when there are many runs.

Runs are passed as plain dicts ``{"label": ..., "colour": ..., "records": [...]}``: the caller
gives each run's legend label and colour (a method's ``MethodSpec.colour``, via
``kdviz.present.RunView.colour``), so a KD student is the same colour on every chart and this module
never looks a method up. Reference lines (the teacher) and loss parts keep palette defaults, which
callers may override.
"""
from __future__ import annotations

import numbers
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


def _number(value: Any) -> bool:
    """A real number (bools and strings are not): what a chart can draw."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def ema_smooth(values: Sequence[float | None], weight: float) -> list[float | None]:
    """TensorBoard's scalar smoothing: ``s_t = w s_(t-1) + (1 - w) v_t`` divided by ``1 - w^n``
    (the debiasing of Kingma & Ba 2015, Adam, section 3, so the curve does not start at 0), ``n``
    counting the finite values so far. Non-finite values and None stay gaps and do not move the
    average. ``weight`` in [0, 1): 0 returns the values, 0.99 is very smooth."""
    if not _number(weight) or not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight!r}")
    out: list[float | None] = []
    last, count = 0.0, 0
    for value in values:
        if not _number(value) or not np.isfinite(value):
            out.append(None)
            continue
        last, count = weight * last + (1.0 - weight) * float(value), count + 1
        out.append(last / (1.0 - weight ** count))
    return out


def _add_line(fig: go.Figure, x: list, y: list, name: str, colour: str, smoothing: float, width: float,
              hover: str, markers: bool = False) -> None:
    """One series: the raw values, or (``smoothing > 0``) the raw values faint and their EMA bold."""
    mode = "lines+markers" if markers else "lines"
    style = {"color": colour, "width": width}
    if smoothing <= 0:
        fig.add_scatter(x=x, y=y, mode=mode, name=name, line=style, marker={"size": 5}, hovertemplate=hover + name + "</extra>")
        return
    fig.add_scatter(x=x, y=y, mode=mode, name=f"{name} (raw)", line={**style, "width": 1}, opacity=0.3, legendgroup=name,
                    showlegend=False, marker={"size": 3}, hovertemplate=hover + name + " (raw)</extra>")
    fig.add_scatter(x=x, y=ema_smooth(y, smoothing), mode="lines", name=name, line=style, legendgroup=name,
                    hovertemplate=hover + name + f" (smoothed {smoothing:g})</extra>")


def _step_records(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    if isinstance(records, (str, bytes)) or not isinstance(records, Sequence):
        raise TypeError(f"records must be a list of metric dicts, got {type(records).__name__}")
    return [r for r in records if r.get("kind") == "step"]


def loss_curves(records: Sequence[Mapping[str, Any]], log_y: bool = False, title: str | None = None,
                smoothing: float = 0.0) -> go.Figure:
    """Total, soft and hard loss (and hook terms) per training step.

    ``records``: metric records; only ``kind == "step"`` ones with a numeric ``step`` and ``loss``
    are drawn. Parts that are zero throughout (the soft part of a cross-entropy run) are left out.
    ``log_y``: a log loss axis (a loss falls over decades); ``smoothing``: the EMA weight of
    ``ema_smooth`` (TensorBoard's slider), the raw curve kept faint beneath.
    """
    steps = [r for r in _step_records(records) if _number(r.get("step")) and _number(r.get("loss"))]
    if not steps:
        raise ValueError("no step records to draw (has the run taken a step yet?)")
    x = [r["step"] for r in steps]
    hook_keys = sorted({k for r in steps for k in r if k not in _STEP_KEYS and _number(r[k])})
    fig = go.Figure()
    for i, key in enumerate([*BASE_PARTS, *hook_keys]):
        y = [r.get(key) if _number(r.get(key)) else None for r in steps]
        if key != "loss" and all(v in (None, 0, 0.0) for v in y):
            continue
        colour = PART_COLOURS.get(key, theme.SERIES[(i + 3) % len(theme.SERIES)])
        _add_line(fig, x, y, BASE_PARTS.get(key, key), colour, smoothing, 2.2 if key == "loss" else 1.5, "step %{x}: %{y:.4f}<extra>")
    if log_y:
        fig.update_yaxes(type="log")
    losses = [float(r["loss"]) for r in steps]
    first, last = float(np.nanmean(losses[:10])), float(np.nanmean(losses[-10:]))
    default = f"Training loss fell from {first:.3g} to {last:.3g}" if last < first else f"Training loss has not fallen yet ({first:.3g} -> {last:.3g})"
    theme.apply(fig, title or default, x_title="training step (optimizer updates)",
                y_title="loss (nats per sample, log scale)" if log_y else "loss (nats per sample)")
    return theme.fit_legend(fig, [t.name for t in fig.data if t.showlegend is not False])


def _eval_series(records: Sequence[Mapping[str, Any]], metric: str) -> tuple[list[float], list[float]]:
    evals = [r for r in records if r.get("kind") == "eval" and _number(r.get(metric)) and _number(r.get("epoch"))]
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
    title: str | None = None, teacher_colour: str = TEACHER_COLOUR, zoom: bool = True, smoothing: float = 0.0,
) -> go.Figure:
    """Accuracy (percent) over epochs for several runs, with the teacher as a dashed horizontal line.

    ``runs``: dicts with ``label``, ``colour`` (the run's line colour) and ``records`` (metric
    records with ``kind == "eval"``; one without a numeric ``metric`` is not drawn).
    ``teacher_accuracy`` is a fraction in [0, 1]. ``zoom``: the accuracy axis fits the curves and
    the teacher line (``theme.fitted_range``) instead of 0-100; ``smoothing``: ``ema_smooth``'s weight.
    """
    if not runs and teacher_accuracy is None:
        raise ValueError("nothing to compare: give at least one run or a teacher accuracy")
    fig = go.Figure()
    finals: list[tuple[str, float]] = []
    shown: list[float] = []
    for i, run in enumerate(runs):
        if not {"label", "records"} <= set(run):
            raise ValueError(f"each run needs 'label' and 'records' (and a 'colour'), got keys {sorted(run)}")
        x, y = _eval_series(run["records"], metric)
        _add_line(fig, x, y, str(run["label"]), run_colour(run, i), smoothing, 2, "epoch %{x:.2f}: %{y:.2f}%<extra>", markers=True)
        shown += y
        if y:
            finals.append((run["label"], y[-1]))
    if teacher_accuracy is not None:
        if not 0.0 <= teacher_accuracy <= 1.0:
            raise ValueError(f"teacher_accuracy is a fraction in [0, 1], got {teacher_accuracy}")
        shown.append(100.0 * teacher_accuracy)
        fig.add_hline(y=100.0 * teacher_accuracy, line={"color": teacher_colour, "dash": "dash", "width": 2},
                      annotation_text=f"teacher {100 * teacher_accuracy:.2f}%", annotation_position="bottom right")
    fig.update_yaxes(range=(theme.fitted_range(shown, bounds=(0.0, 100.0)) if zoom else None) or [0, 100])
    name = {"test_acc": "test accuracy", "train_acc": "train accuracy", "agreement_test": "agreement with the teacher"}.get(metric, metric)
    theme.apply(fig, title or _accuracy_title(finals), x_title="epoch", y_title=f"{name} (%)")
    theme.wrap_figure_title(fig)
    return theme.fit_legend(fig, [t.name for t in fig.data if t.showlegend is not False])


def _accuracy_title(finals: list[tuple[str, float]]) -> str:
    """What to notice: the gap between the two best runs at their last evaluation."""
    if len(finals) >= 2:
        best, second = sorted(finals, key=lambda f: -f[1])[:2]
        return f"{best[0]} is {best[1] - second[1]:.2f} points above {second[0]} at the last evaluation"
    if finals:
        return f"{finals[0][0]} reaches {finals[0][1]:.2f}%"
    return "No evaluations yet"


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
                   value_title: str = "test errors (count)", lower_is_better: bool = True,
                   value_bounds: tuple[float, float] | None = None) -> go.Figure:
    """One final number per run (e.g. MNIST test errors), each run in its own colour, with an
    optional ``reference`` value per run drawn as a black diamond (a paper's result).

    ``runs``: dicts with ``label``, ``colour``, ``value`` and optionally ``reference``. Without
    ``value_bounds`` each run is a horizontal bar from 0. With ``value_bounds`` (e.g. ``(0, 100)``
    for a percentage) each run is a dot and the value axis fits the values inside those bounds
    (``theme.fitted_range``): 95.1 % against 92.9 % is a visible gap, and the axis never runs past 100.
    """
    if not runs:
        raise ValueError("run_comparison needs at least one run")
    labels = [str(r["label"]) for r in runs]
    values = [float(r["value"]) for r in runs]
    colours = [run_colour(r, i) for i, r in enumerate(runs)]
    if value_bounds is None:
        fig = go.Figure(go.Bar(y=labels, x=values, orientation="h", name="this run", text=[f"{v:g}" for v in values],
                               textposition="outside", cliponaxis=False, marker_color=colours,
                               hovertemplate="%{y}: %{x}<extra></extra>"))
    else:
        fig = go.Figure(go.Scatter(y=labels, x=values, mode="markers+text", name="this run", text=[f"{v:g}" for v in values],
                                   textposition="middle right", cliponaxis=False,
                                   marker={"color": colours, "size": 14, "line": {"width": 1, "color": "#ffffff"}},
                                   hovertemplate="%{y}: %{x}<extra></extra>"))
    refs = [(r["label"], float(r["reference"])) for r in runs if r.get("reference") is not None]
    if refs:
        fig.add_scatter(y=[r[0] for r in refs], x=[r[1] for r in refs], mode="markers", name=reference_label,
                        marker={"symbol": "diamond", "size": 12, "color": theme.OKABE_ITO["black"]},
                        hovertemplate="%{y}: " + reference_label + " %{x}<extra></extra>")
    every = values + [r[1] for r in refs]
    if value_bounds is not None:
        fig.update_xaxes(range=theme.fitted_range(every, bounds=value_bounds, pad=0.15))
    else:  # room for the numbers printed beside the bars, and no further
        fig.update_xaxes(range=[1.15 * min(min(every), 0.0), 1.15 * max(max(every), 0.0) or 1.0])
    fig.update_yaxes(autorange="reversed")
    if title is None:
        best = int(np.argmin(values) if lower_is_better else np.argmax(values))
        title = f"Best {value_title}: {labels[best]} with {values[best]:g}"  # the number says what it counts
    theme.apply(fig, title, x_title=value_title, y_title="run", height=max(260, 60 + 45 * len(runs)))
    return theme.wrap_figure_title(fig)
