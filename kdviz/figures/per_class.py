"""Per-class test errors as grouped bars: a classifier as trained beside the same one with some
output biases shifted (Hinton, Vinyals, Dean 2015, section 3, the "dark knowledge" experiment)."""
from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from . import theme


def per_class_error_bars(class_names: Sequence[str], before: Sequence[int], after: Sequence[int],
                         before_label: str = "as trained", after_label: str = "bias shifted",
                         colours: Sequence[str] = (theme.OKABE_ITO["grey"], theme.OKABE_ITO["vermillion"]),
                         highlight: Sequence[int] = (), title: str | None = None) -> go.Figure:
    """Two bars per class: test errors ``before`` and ``after`` (counts, one per class, in
    ``class_names`` order); the classes in ``highlight`` (those whose bias moved) get a bold tick
    label. The default title states both totals."""
    if not len(before) == len(after) == len(class_names):
        raise ValueError(f"{len(class_names)} classes but {len(before)} 'before' and {len(after)} 'after' counts")
    names = [f"<b>{name}</b>" if i in set(highlight) else str(name) for i, name in enumerate(class_names)]
    fig = go.Figure()
    for label, values, colour in ((before_label, before, colours[0]), (after_label, after, colours[1])):
        fig.add_trace(go.Bar(x=names, y=list(values), name=f"{label} ({sum(values)} errors)", marker_color=colour,
                             text=[str(v) for v in values], textposition="outside",
                             hovertemplate=f"{label}<br>class %{{x}}: %{{y}} errors<extra></extra>"))
    fig.update_layout(barmode="group", bargap=0.25)
    fig.update_yaxes(rangemode="tozero")
    title = title or f"Test errors per class: {sum(before)} as trained, {sum(after)} with the bias shifted"
    return theme.apply(fig, title, x_title="true class", y_title="test errors (images)")
