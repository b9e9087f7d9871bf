"""Charts of a prune-and-fine-tune run over time (the ``prune`` hook's evaluation records).

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
                           epoch: float | None = None, label: str = "pruned + fine-tuned") -> go.Figure:
    """Test accuracy (percent) of a pruning run over epochs, the dense model it started from as a
    dotted line, and an optional dashed vertical line at ``epoch`` (the snapshot being looked at).

    ``records``: the run's metric records; evaluation records carry ``test_acc`` and the hook's
    ``prune/sparsity``. What to notice: the dips where the schedule prunes, the recovery after.
    """
    evals = [r for r in records if r.get("kind") == "eval" and "test_acc" in r]
    title = "No evaluations yet"
    if evals:
        last = evals[-1]
        pruned = f" at {100 * last['prune/sparsity']:.0f}% sparsity" if "prune/sparsity" in last else ""
        title = f"{100 * last['test_acc']:.2f}% test accuracy{pruned}"
    fig = accuracy_comparison([{"label": label, "role": "pruned", "records": list(records)}], title=title)
    if dense_accuracy is not None:
        if not 0.0 <= dense_accuracy <= 1.0:
            raise ValueError(f"dense_accuracy is a fraction in [0, 1], got {dense_accuracy}")
        fig.add_hline(y=100 * dense_accuracy, line={"color": theme.role_color("baseline"), "dash": "dot"},
                      annotation_text=f"dense {100 * dense_accuracy:.2f}%", annotation_position="bottom left")
    if epoch is not None:
        fig.add_vline(x=epoch, line={"color": theme.OKABE_ITO["black"], "width": 1, "dash": "dash"})
    return fig


def wrap_title(fig: go.Figure, max_chars: int = 50) -> go.Figure:
    """Break a ``theme.apply`` title (bold line, optional subtitle) onto two lines when its bold line is
    longer than ``max_chars``, so a half-width chart shows all of it; the top margin grows to fit."""
    text = fig.layout.title.text or ""
    if not text.startswith("<b>") or "</b>" not in text:
        return fig
    head, rest = text[3:].split("</b>", 1)
    if len(head) <= max_chars or " " not in head[:max_chars]:
        return fig
    cut = head.rindex(" ", 0, max_chars + 1)
    fig.update_layout(title_text=f"<b>{head[:cut]}<br>{head[cut + 1:]}</b>{rest}",
                      margin_t=(fig.layout.margin.t or 60) + 20)
    return fig


__all__ = ["accuracy_over_training", "wrap_title"]
