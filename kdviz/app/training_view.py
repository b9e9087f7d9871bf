"""Charts and status rows for student runs, shared by the train and compare pages.

Each chart comes from ``kdviz.figures.training`` (data in, figure out); this module only picks
the runs, the colours by role (``theme.ROLE_COLORS``) and the line style (earlier runs dotted).
"""
from __future__ import annotations

import time
from collections.abc import Sequence

import plotly.graph_objects as go
import streamlit as st

from ..engine import Job
from ..figures import theme
from ..figures.training import accuracy_comparison, loss_curves, probe_soft_targets
from .live import RunView

STATE_ICONS = {"queued": ":material/hourglass_top:", "running": ":material/model_training:",
               "paused": ":material/pause_circle:", "finished": ":material/check_circle:",
               "stopped": ":material/stop_circle:", "diverged": ":material/warning:", "failed": ":material/error:",
               "unknown": ":material/help:"}
BOTTOM_LEGEND = {"orientation": "h", "yanchor": "top", "y": -0.28, "xanchor": "left", "x": 0.0}


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


def role_of(config) -> str:
    """The colour role of a run from its ``TrainConfig``: teacher, kd student or scratch student."""
    if config.name.startswith("teacher"):
        return "teacher"
    return {"kd": "kd student", "ce": "scratch student"}.get(config.method, "student")


def accuracy_chart(live: Sequence[tuple[RunView, str]], overlays: Sequence[RunView] = (),
                   teacher_accuracy: float | None = None) -> go.Figure:
    """Test accuracy of the live runs (solid) and of reopened earlier runs (dotted, same colour
    for the same role), with the teacher as a dashed line."""
    runs = [{"label": v.label, "role": role, "records": v.evals} for v, role in live]
    runs += [{"label": v.label, "role": role_of(v.source.config), "records": v.evals}
             for v in overlays]
    fig = accuracy_comparison(runs, teacher_accuracy=teacher_accuracy)
    for trace in fig.data[len(live):]:
        trace.update(line={"dash": "dot", "width": 1.5}, marker={"size": 3}, opacity=0.75)
    fig.update_yaxes(range=[0, 100])
    return fig


def loss_chart(view: RunView, who: str) -> go.Figure | None:
    """The run's loss and its soft and hard parts, or None before its first step."""
    if not view.steps:
        return None
    stride = -(-len(view.steps) // MAX_LINE_POINTS)
    steps = view.steps[::stride] if view.steps[-1] is view.steps[::stride][-1] else [*view.steps[::stride], view.steps[-1]]
    fig = loss_curves(steps)
    last = view.steps[-1]
    fig.layout.title.text = f"<b>{who}: loss {last['loss']:.3g} at step {last['step']}</b>"
    fig.update_layout(legend=BOTTOM_LEGEND, margin={"b": 110})
    return fig


def probe_chart(kd: RunView, scratch: RunView, class_names: Sequence[str], sample: int, t_index: int) -> go.Figure | None:
    """One probe image's soft targets: teacher, KD student and scratch student side by side."""
    ref = kd.reference()
    if not kd.snapshots or "teacher/soft" not in ref:
        return None
    temps = ref["probe/temperatures"]
    T = float(temps[t_index])
    teacher = ref["teacher/soft"][t_index, sample]
    kd_probs = kd.snapshots[-1].arrays["probe/soft"][t_index, sample]
    fig = probe_soft_targets(kd_probs, teacher, class_names, T, int(ref["probe/labels"][sample]))
    fig.data[1].name = "KD student"
    if scratch.snapshots:
        fig.add_bar(x=[str(c) for c in class_names], y=scratch.snapshots[-1].arrays["probe/soft"][t_index, sample],
                    name="scratch student", marker_color=theme.ROLE_COLORS["scratch student"],
                    hovertemplate="class %{x}: %{y:.4f}<extra>scratch student</extra>")
    tv = 0.5 * float(abs(kd_probs - teacher).sum())
    fig.layout.title.text = (f"<b>Probe #{sample} at T = {T:g}, step {kd.snapshots[-1].step}</b><br>"
                             f"<span style='font-size:12px;color:#555'>a {class_names[int(ref['probe/labels'][sample])]}; "
                             f"the KD student is {tv:.2f} from the teacher (total variation)</span>")
    fig.update_layout(legend=BOTTOM_LEGEND, margin={"t": 80, "b": 110}, height=420)
    return fig


def status_row(job: Job, label: str) -> None:
    """One line per job: state, progress bar, queue place or ETA, last test accuracy."""
    s = job.status()
    icon = STATE_ICONS.get(s.state, STATE_ICONS["unknown"])
    if s.state == "queued":
        detail = f"waiting in the queue, place {s.queue_position or '?'} (at most {job.manager.max_concurrent if job.manager else '?'} runs at once)"
    elif s.state in ("running", "paused"):
        detail = f"epoch {s.epoch + 1}/{job.config.epochs} · step {s.step}/{s.total_steps}"
        detail += f" · about {s.eta_s:.0f} s left" if s.eta_s and s.state == "running" else ""
    elif s.state == "finished":
        detail = f"{s.total_steps} steps in {s.elapsed_s:.0f} s"
    else:
        detail = s.message
    acc = f" · test accuracy **{s.test_acc:.1%}**" if s.test_acc is not None else ""
    st.markdown(f"{icon} **{label}** · {s.state}{acc} · {detail}")
    st.progress(min(1.0, s.step / s.total_steps) if s.total_steps else 0.0)
