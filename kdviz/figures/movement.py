"""Movement pruning beside magnitude pruning (Sanh, Wolf, Rush, NeurIPS 2020): sparsity and accuracy
live, and which weights each keeps (|W| against the movement score).

Data in, plotly Figure out; labels and colours arrive as arguments.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..palette import OKABE_ITO
from .theme import BOTTOM_LEGEND, apply, wrap_figure_title


@dataclass(frozen=True)
class PruningCurve:
    """One run: its evaluation steps, sparsity and test accuracy at each."""

    label: str
    colour: str
    steps: Sequence[int]
    sparsity: Sequence[float]
    accuracy: Sequence[float]


def movement_progress(curves: Sequence[PruningCurve], dense_accuracy: float | None = None,
                      title: str = "Same sparsity, different weights: accuracy while pruning") -> go.Figure:
    """Sparsity (left) and test accuracy (right) against the training step, one line per run."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("sparsity (% of weights pruned)", "test accuracy (%)"),
                        horizontal_spacing=0.1)
    for c in curves:
        fig.add_trace(go.Scatter(x=list(c.steps), y=[100 * s for s in c.sparsity], mode="lines+markers", name=c.label,
                                 line={"color": c.colour}, legendgroup=c.label), row=1, col=1)
        fig.add_trace(go.Scatter(x=list(c.steps), y=[100 * a for a in c.accuracy], mode="lines+markers", name=c.label,
                                 line={"color": c.colour}, legendgroup=c.label, showlegend=False), row=1, col=2)
    if dense_accuracy is not None:
        fig.add_hline(y=100 * dense_accuracy, line_dash="dot", line_color=OKABE_ITO["grey"], row=1, col=2,
                      annotation_text="dense", annotation_position="bottom right")
    fig.update_xaxes(title_text="training step")
    fig.update_yaxes(range=[0, 100], row=1, col=1)
    apply(fig, title, height=380)
    fig.update_layout(legend=BOTTOM_LEGEND, margin={"b": 90})
    return wrap_figure_title(fig)


CATEGORIES = (
    ("kept by both", OKABE_ITO["bluish green"]),
    ("kept by movement only", OKABE_ITO["reddish purple"]),
    ("kept by magnitude only", OKABE_ITO["orange"]),
    ("pruned by both", OKABE_ITO["grey"]),
)


def movement_scatter(abs_weight: np.ndarray, score: np.ndarray, kept: np.ndarray, magnitude_kept: np.ndarray,
                     layer: str, step: int | None = None) -> go.Figure:
    """|W| against the movement score for a sample of ``layer``'s weights, coloured by which rule keeps
    each: movement keeps high scores (right), magnitude large |W| (top); they disagree off the diagonal."""
    abs_weight, score = np.asarray(abs_weight, dtype=float), np.asarray(score, dtype=float)
    kept, magnitude_kept = np.asarray(kept, dtype=bool), np.asarray(magnitude_kept, dtype=bool)
    if not abs_weight.shape == score.shape == kept.shape == magnitude_kept.shape:
        raise ValueError(f"|W|, score and masks must have one shape, got {abs_weight.shape}, {score.shape}, "
                         f"{kept.shape}, {magnitude_kept.shape}")
    groups = (kept & magnitude_kept, kept & ~magnitude_kept, ~kept & magnitude_kept, ~kept & ~magnitude_kept)
    fig = go.Figure()
    for (name, colour), pick in zip(CATEGORIES, groups):
        fig.add_trace(go.Scattergl(x=score[pick], y=abs_weight[pick], mode="markers", name=f"{name} ({int(pick.sum())})",
                                   marker={"color": colour, "size": 6, "opacity": 0.8},
                                   hovertemplate="score %{x:.3g}, |W| %{y:.3g}<extra></extra>"))
    differ = int((kept != magnitude_kept).sum())
    when = f" at step {step}" if step is not None else ""
    title = f"{layer}{when}: {differ} of {kept.size} sampled weights chosen differently by movement and magnitude"
    apply(fig, title, x_title="movement score S (accumulated -dL/dW · W)", y_title="|W|", height=400)
    fig.update_layout(legend=BOTTOM_LEGEND, margin={"b": 110})
    return wrap_figure_title(fig)
