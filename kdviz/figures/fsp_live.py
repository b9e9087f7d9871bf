"""FSP charts of live runs: a two-stage run's snapshots and records in, figures out.

The Streamlit page and the Jupyter monitor both read three runs of Yim et al. 2017 ("A Gift from
Knowledge Distillation", CVPR 2017): stage 1 (the FSP loss of eq. 2 alone, against a fixed
teacher, section 3.3), stage 2 (cross-entropy from the stage-1 weights) and the same student from
scratch (section 4.1). This module turns what they read into the charts of ``kdviz.figures.fsp``,
so both UIs draw the same thing from the same data:

* ``heatmaps_from_pairs``: teacher, student and difference FSP matrices of one pair (eq. 1), from
  the pairs the ``fsp`` method's snapshot reader returns;
* ``loss_curve_from_records``: the probe-batch loss per pair and in total against steps;
* ``fast_optimisation_from_records``: test accuracy against iterations, stage 1 + 2 vs scratch.

With FitNets hints (Romero et al. 2015, eq. 3) instead of FSP, stage 1 minimises the hint loss and
there are no FSP matrices; the caller passes the stage-1 method's name, metric key and wording as
data (this module knows no method).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from .fsp import fast_optimisation, fsp_heatmaps, fsp_loss_curve
from .theme import compact


def heatmaps_from_pairs(pairs: Sequence[Mapping[str, Any]], pair: str | None = None) -> go.Figure:
    """Teacher, student and difference FSP heatmaps of ``pair`` (default: the first) among ``pairs``
    (dicts with ``label``, ``teacher``, ``student``, ``difference``)."""
    labels = [p["label"] for p in pairs]
    if not labels:
        raise ValueError("no FSP pairs to draw")
    if pair is None:
        pair = labels[0]
    if pair not in labels:
        raise ValueError(f"no FSP pair {pair!r} in this snapshot (pairs: {', '.join(labels)})")
    p = pairs[labels.index(pair)]
    return fsp_heatmaps(p["teacher"], p["student"], p["difference"], pair=p["label"])


def _evals(records: Sequence[Mapping[str, Any]], key: str) -> list[Mapping[str, Any]]:
    return [r for r in records if r.get("kind") == "eval" and key in r]


def loss_series(records: Sequence[Mapping[str, Any]], loss_key: str) -> tuple[list[float], list[float], dict[str, list[float]]]:
    """(steps, total, {pair: values}) of a probe-batch loss in a run's evaluation records.

    ``loss_key`` is the metric (the ``fsp`` hook logs ``fsp/probe_loss``, eq. 2 over a fixed batch
    of test images, and one ``fsp/probe_loss/<in->out>`` per pair; ``hints`` logs ``hints/probe_loss``).
    """
    evals = _evals(records, loss_key)
    prefix = loss_key + "/"
    names = [k[len(prefix):] for k in (evals[0] if evals else {}) if k.startswith(prefix)]
    per_pair = {n: [float(r.get(prefix + n, float("nan"))) for r in evals] for n in names}
    return [float(r["step"]) for r in evals], [float(r[loss_key]) for r in evals], per_pair


def loss_curve_from_records(records: Sequence[Mapping[str, Any]], loss_key: str, name: str = "FSP",
                            fall_caption: str | None = None, y_title: str | None = None) -> go.Figure | None:
    """The stage-1 loss on the probe batch against steps (log y), or None before the first evaluation.

    ``name`` labels the total; with ``fall_caption`` the title says how many times the loss fell
    and then ``fall_caption`` (what that means for this method); ``y_title`` replaces the axis title."""
    steps, total, per_pair = loss_series(records, loss_key)
    if not steps:
        return None
    fig = fsp_loss_curve(steps, total, per_pair or None)
    if fall_caption is not None:
        positive = [v for v in total if v > 0]
        change = positive[0] / positive[-1] if len(positive) >= 2 and positive[-1] > 0 else 1.0
        fig.layout.title.text = (f"<b>{name} loss fell {change:.3g}x: {fall_caption}</b>" if change > 1 else
                                 f"<b>{name} loss on a fixed probe batch</b>")
    if y_title is not None:
        fig.update_yaxes(title_text=y_title)
    fig.data[0].name = f"total ({name}, probe batch)"
    return compact(fig)


def accuracy_series(records: Sequence[Mapping[str, Any]]) -> tuple[list[float], list[float]]:
    """(steps, test accuracies as fractions) of a run's evaluation records."""
    evals = _evals(records, "test_acc")
    return [float(r["step"]) for r in evals], [float(r["test_acc"]) for r in evals]


def fast_optimisation_from_records(
    scratch_records: Sequence[Mapping[str, Any]], stage2_records: Sequence[Mapping[str, Any]],
    stage1_records: Sequence[Mapping[str, Any]], stage1_steps: int, name: str = "FSP", count_stage1: bool = True,
) -> go.Figure | None:
    """Test accuracy against iterations for stage 1 + stage 2 and for scratch (Yim et al., section
    4.1); None until the scratch student and stage 2 have one evaluation each. ``name`` is the
    stage-1 method's display name ("FSP", "FitNets")."""
    sx, sy = accuracy_series(scratch_records)
    fx, fy = accuracy_series(stage2_records)
    if not sx or not fx:
        return None
    ax, ay = accuracy_series(stage1_records)
    fig = fast_optimisation(sx, sy, fx, fy, int(stage1_steps), stage1_iters=ax or None, stage1_accuracy=ay or None,
                            count_stage1=count_stage1, name=name)
    return compact(fig)


__all__ = ["heatmaps_from_pairs", "loss_series", "loss_curve_from_records", "accuracy_series",
           "fast_optimisation_from_records"]
