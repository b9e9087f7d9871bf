"""Charts of a prune-and-fine-tune run over time (the pruning hook's evaluation records).

Han et al. 2015 (section 3.2): after each pruning step the network is retrained with the pruned
weights held at zero, so accuracy dips when the schedule prunes and recovers while fine-tuning;
Zhu & Gupta 2017's cubic schedule prunes much early and ever less towards the end.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from . import theme
from .training import accuracy_comparison


def accuracy_over_training(records: Sequence[Mapping[str, Any]], dense_accuracy: float | None = None,
                           epoch: float | None = None, label: str = "pruned + fine-tuned",
                           sparsity: float | None = None, colour: str = theme.OKABE_ITO["orange"]) -> go.Figure:
    """Test accuracy (percent) of a pruning run over epochs in ``colour`` (the run's), the dense
    model it started from as a dotted line, and an optional dashed vertical line at ``epoch`` (the
    snapshot being looked at).

    ``records``: the run's metric records (evaluation records carry ``test_acc``); ``sparsity``:
    the pruned fraction at the last evaluation, named in the title. What to notice: the dips where
    the schedule prunes, the recovery after.
    """
    evals = [r for r in records if r.get("kind") == "eval" and "test_acc" in r]
    title = "No evaluations yet"
    if evals:
        pruned = f" at {100 * sparsity:.0f}% sparsity" if sparsity is not None else ""
        title = f"{100 * evals[-1]['test_acc']:.2f}% test accuracy{pruned}"
    fig = accuracy_comparison([{"label": label, "colour": colour, "records": list(records)}], title=title)
    fig.data[0].line.color = colour
    if dense_accuracy is not None:
        if not 0.0 <= dense_accuracy <= 1.0:
            raise ValueError(f"dense_accuracy is a fraction in [0, 1], got {dense_accuracy}")
        fig.add_hline(y=100 * dense_accuracy, line={"color": theme.ROLE_COLORS["baseline"], "dash": "dot"},
                      annotation_text=f"dense {100 * dense_accuracy:.2f}%", annotation_position="bottom left")
    if epoch is not None:
        fig.add_vline(x=epoch, line={"color": theme.OKABE_ITO["black"], "width": 1, "dash": "dash"})
    return fig


def wrap_title(fig: go.Figure, max_chars: int = 50) -> go.Figure:
    """Break a ``theme.apply`` title's bold line (``theme.wrap_title``) when it is longer than
    ``max_chars``, so a half-width chart shows all of it; the top margin grows by a line per break."""
    text = fig.layout.title.text or ""
    if not text.startswith("<b>") or "</b>" not in text:
        return fig
    head, rest = text[3:].split("</b>", 1)
    wrapped = theme.wrap_title(head, max_chars)
    if wrapped != head:
        fig.update_layout(title_text=f"<b>{wrapped}</b>{rest}",
                          margin_t=(fig.layout.margin.t or 60) + 20 * wrapped.count("<br>"))
    return fig


__all__ = ["accuracy_over_training", "wrap_title"]
