"""Charts of student runs, shared by the train and compare pages.

Each chart comes from ``kdviz.figures.training`` (data in, figure out); this module passes each
run's legend label and colour from its ``kdviz.present.RunView`` (the colour is its method's:
``MethodSpec.colour``), thins long loss curves, and draws reopened earlier runs dotted.
"""
from __future__ import annotations

import time
from collections.abc import Sequence

import plotly.graph_objects as go
import streamlit as st

from ..figures import theme
from ..figures.training import accuracy_comparison, loss_curves, probe_soft_targets
from ..present import RunView

MAX_LINE_POINTS = 400  # a loss curve of a long run is drawn from at most this many steps


def cached_figure(key: str, version: tuple, build, min_interval_s: float = 0.0):
    """``build()``'s figure, rebuilt only when ``version`` changes and at most every
    ``min_interval_s`` seconds: a live refresh redraws the previous figure instead of rebuilding it
    (a plotly figure costs 50 to 500 ms to build here, time the training threads also need)."""
    cache = st.session_state.setdefault("kdviz_figure_cache", {})
    hit = cache.get(key)
    now = time.monotonic()
    if hit is not None and (hit[0] == version or now - hit[2] < min_interval_s):
        return hit[1]
    fig = build()
    cache[key] = (version, fig, now)
    return fig


def run_line(view: RunView) -> dict:
    """A run as ``accuracy_comparison`` and ``run_comparison`` take it: label, colour, evaluations."""
    return {"label": view.label, "colour": view.colour, "records": view.evals}


def accuracy_chart(live: Sequence[RunView], overlays: Sequence[RunView] = (),
                   teacher_accuracy: float | None = None) -> go.Figure:
    """Test accuracy of the live runs (solid) and of reopened earlier runs (dotted, each in its
    method's colour), with the teacher as a dashed line."""
    fig = accuracy_comparison([run_line(v) for v in [*live, *overlays]], teacher_accuracy=teacher_accuracy)
    for trace in fig.data[len(live):]:
        trace.update(line={"dash": "dot", "width": 1.5}, marker={"size": 3}, opacity=0.75)
    fig.update_yaxes(range=[0, 100])
    return fig


def loss_chart(view: RunView, who: str | None = None) -> go.Figure | None:
    """The run's loss and its soft and hard parts (titled with ``who``, default the run's label),
    or None before its first step."""
    if not view.steps:
        return None
    stride = -(-len(view.steps) // MAX_LINE_POINTS)
    steps = view.steps[::stride] if view.steps[-1] is view.steps[::stride][-1] else [*view.steps[::stride], view.steps[-1]]
    fig = loss_curves(steps)
    last = view.steps[-1]
    fig.layout.title.text = f"<b>{who or view.label}: loss {last['loss']:.3g} at step {last['step']}</b>"
    return theme.legend_below(fig)


def probe_chart(student: RunView, baseline: RunView, class_names: Sequence[str], sample: int, t_index: int) -> go.Figure | None:
    """One probe image's soft targets: the teacher, the distilled ``student`` and the label-only
    ``baseline`` side by side, each run in its own colour; None before the student's first snapshot."""
    ref = student.reference()
    if not student.snapshots or "teacher/soft" not in ref:
        return None
    T = float(ref["probe/temperatures"][t_index])
    teacher = ref["teacher/soft"][t_index, sample]
    probs = student.snapshots[-1].arrays["probe/soft"][t_index, sample]
    true_class = int(ref["probe/labels"][sample])
    fig = probe_soft_targets(probs, teacher, class_names, T, true_class,
                             student_label=student.label, student_colour=student.colour)
    if baseline.snapshots:
        fig.add_bar(x=[str(c) for c in class_names], y=baseline.snapshots[-1].arrays["probe/soft"][t_index, sample],
                    name=baseline.label, marker_color=baseline.colour,
                    hovertemplate=f"class %{{x}}: %{{y:.4f}}<extra>{baseline.label}</extra>")
    tv = 0.5 * float(abs(probs - teacher).sum())
    fig.layout.title.text = (f"<b>Probe #{sample} at T = {T:g}, step {student.snapshots[-1].step}</b><br>"
                             f"<span style='font-size:12px;color:#555'>a {class_names[true_class]}; "
                             f"the {student.label} is {tv:.2f} from the teacher (total variation)</span>")
    fig.update_layout(margin={"t": 80}, height=420)
    return theme.legend_below(fig)
