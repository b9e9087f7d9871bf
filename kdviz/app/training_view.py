"""Charts of student runs, shared by the train and compare pages.

Each chart comes from ``kdviz.figures.training`` (data in, figure out); this module passes each
run's legend label and colour from its ``kdviz.present.RunView`` (the colour is its method's:
``MethodSpec.colour``), thins long loss curves, and draws reopened earlier runs dotted. The captions
of the KD-vs-scratch charts come from ``kdviz.present.story``, fed with what the charts show.
"""
from __future__ import annotations

import time
from collections.abc import Sequence

import plotly.graph_objects as go
import streamlit as st

from ..figures import theme
from ..figures.training import accuracy_comparison, loss_curves, probe_soft_targets
from ..present import RunView
from ..present.distill_configs import TRANSFER_FIELD
from ..present.story import RaceSettings, accuracy_caption, mean_top_probability, probe_caption, probe_distances

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
                   teacher_accuracy: float | None = None, title: str | None = None) -> go.Figure:
    """Test accuracy of the live runs (solid) and of reopened earlier runs (dotted, each in its
    method's colour), with the teacher as a dashed line; ``title`` replaces the default (the gap
    between the two best runs at their own last evaluations)."""
    fig = accuracy_comparison([run_line(v) for v in [*live, *overlays]], teacher_accuracy=teacher_accuracy, title=title)
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


def last_test_accuracy(view: RunView) -> float | None:
    """The run's last evaluated test accuracy read so far (a fraction), or None before the first."""
    values = view.eval_series("test_acc")[1]
    return float(values[-1]) if values else None


def _probe_at(kd: RunView, scratch: RunView, t_index: int):
    """``ProbeDistances`` of the students' latest snapshots at probe temperature ``t_index``, or None."""
    ref = kd.reference()
    if not kd.snapshots or "teacher/soft" not in ref or "probe/temperatures" not in ref:
        return None
    scratch_soft = scratch.snapshots[-1].arrays.get("probe/soft") if scratch.snapshots else None
    return probe_distances(ref["teacher/soft"][t_index], kd.snapshots[-1].arrays["probe/soft"][t_index],
                           None if scratch_soft is None else scratch_soft[t_index],
                           float(ref["probe/temperatures"][t_index]))


def race_settings(kd: RunView, train_size: int | None = None, num_classes: int = 10) -> RaceSettings:
    """The KD student's T and alpha, the labelled images it saw (``train_size``, the training set,
    or its transfer set if smaller), and (from the probe, at T) how sure the teacher is: what
    ``story`` reads its reasons from."""
    seen = [n for n in (train_size, getattr(kd.config, TRANSFER_FIELD, None)) if n]
    train_size = min(seen) if seen else None
    ref = kd.reference()
    temps = [float(t) for t in ref.get("probe/temperatures", [])]
    T = float(kd.config.T)
    top = mean_top_probability(ref["teacher/soft"][temps.index(T)]) if T in temps and "teacher/soft" in ref else None
    return RaceSettings(T=T, alpha=float(kd.config.alpha), train_size=train_size, num_classes=num_classes,
                        teacher_top_prob=top)


def accuracy_story(kd: RunView, scratch: RunView, finished: bool, teacher_accuracy: float | None = None,
                   train_size: int | None = None, num_classes: int = 10) -> str:
    """The test-accuracy chart's caption, written from the two students' last evaluations."""
    return accuracy_caption(last_test_accuracy(kd), last_test_accuracy(scratch),
                            race_settings(kd, train_size, num_classes), finished=finished,
                            teacher_acc=teacher_accuracy, kd_label=kd.label, scratch_label=scratch.label)


def probe_story(kd: RunView, scratch: RunView, t_index: int, finished: bool) -> str:
    """The probe chart's caption, from the students' distances to the teacher over every probe image."""
    distances = _probe_at(kd, scratch, t_index)
    if distances is None:
        return "Blue: the teacher. The students' bars appear with their first snapshot."
    count = len(kd.reference()["probe/labels"])
    return probe_caption(distances, finished=finished, probe_count=count, kd_label=kd.label,
                         scratch_label=scratch.label)
