"""Charts of specialists (Hinton, Vinyals, Dean 2015, section 5).

* ``confusable_matrix``: the covariance of the generalist's predicted probabilities (section 5.2),
  rows and columns ordered cluster by cluster, each cluster outlined and the clusters that became
  specialists outlined thicker, so the confusable subsets show as bright blocks on the diagonal;
* ``covered_accuracy``: test accuracy on each class the specialists cover, the generalist alone
  beside the generalist combined with its specialists (section 5.3), the gain in points on each bar;
* ``stage_accuracy``: the pipeline's runs as they train: the generalist's K-way test accuracy and
  each specialist's accuracy on its own task (its classes or the dustbin).

Data in, figure out: labels, colours and numbers arrive as arguments.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from . import theme

GENERALIST_COLOUR, COMBINED_COLOUR = theme.OKABE_ITO["blue"], theme.OKABE_ITO["vermillion"]
CLUSTER_LINE, SPECIALIST_LINE = "#999999", "#D55E00"


def _square(name: str, matrix: np.ndarray, size: int) -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (size, size) or not np.isfinite(m).all():
        raise ValueError(f"{name} must be a finite {size} x {size} matrix, got shape {m.shape}")
    return m


def confusable_matrix(covariance: np.ndarray, class_names: Sequence[str], clusters: Sequence[Sequence[int]],
                      specialists: Sequence[Sequence[int]] = (), title: str | None = None) -> go.Figure:
    """The K x K prediction covariance as a heatmap, classes ordered by ``clusters`` (each a tuple
    of class indices; together every class once), a thin box around each cluster and a thick one
    around each of ``specialists`` (the subsets given a specialist)."""
    names = [str(n) for n in class_names]
    cov = _square("covariance", covariance, len(names))
    order = [int(c) for cluster in clusters for c in cluster]
    if sorted(order) != list(range(len(names))):
        raise ValueError(f"clusters must hold every class once, got {[list(c) for c in clusters]}")
    ordered = cov[np.ix_(order, order)]
    off = ordered[~np.eye(len(order), dtype=bool)]
    span = float(np.abs(off).max()) if off.size else 1.0
    labels = [names[c] for c in order]
    fig = go.Figure(go.Heatmap(
        z=ordered, x=labels, y=labels, colorscale=theme.DIVERGING, zmid=0.0, zmin=-span, zmax=span,
        colorbar={"title": {"text": "covariance"}},
        hovertemplate="classes %{y} and %{x}: covariance %{z:.2e}<extra></extra>"))
    chosen = {tuple(sorted(int(c) for c in s)) for s in specialists}
    start = 0
    for cluster in clusters:
        size = len(cluster)
        is_specialist = tuple(sorted(int(c) for c in cluster)) in chosen
        fig.add_shape(type="rect", x0=start - 0.5, x1=start + size - 0.5, y0=start - 0.5, y1=start + size - 0.5,
                      line={"color": SPECIALIST_LINE if is_specialist else CLUSTER_LINE, "width": 4 if is_specialist else 1.5})
        start += size
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category")
    text = title or (f"Classes the generalist predicts together: {len(chosen)} subset(s) get a specialist (thick boxes)"
                     if chosen else "Covariance of the generalist's predictions, clustered")
    return theme.apply(fig, theme.wrap_title(text, 60), "class (ordered by cluster)", "class (ordered by cluster)", height=440,
                       subtitle="off the diagonal: high = often predicted together (diagonal clipped to the same scale)")


def covered_accuracy(class_names: Sequence[str], generalist: Sequence[float], combined: Sequence[float],
                     counts: Sequence[int] | None = None, title: str | None = None) -> go.Figure:
    """Per covered class, test accuracy (fractions) of the generalist alone and combined with the
    specialists, as grouped bars with each class's gain in points written above the pair."""
    g, c = np.asarray(generalist, dtype=np.float64), np.asarray(combined, dtype=np.float64)
    if not (len(class_names) == len(g) == len(c)) or ((g < 0) | (g > 1) | (c < 0) | (c > 1)).any():
        raise ValueError("one accuracy between 0 and 1 per class for the generalist and the combination")
    names = [str(n) for n in class_names]
    hover = [f"{n} test images" for n in counts] if counts is not None else [""] * len(names)
    fig = go.Figure([
        go.Bar(x=names, y=100 * g, name="generalist alone", marker_color=GENERALIST_COLOUR, customdata=hover,
               hovertemplate="class %{x}: %{y:.1f} % (%{customdata})<extra>generalist</extra>"),
        go.Bar(x=names, y=100 * c, name="generalist + specialists", marker_color=COMBINED_COLOUR, customdata=hover,
               hovertemplate="class %{x}: %{y:.1f} % (%{customdata})<extra>combined</extra>"),
    ])
    fig.update_xaxes(type="category")  # class names like "8" are labels, not numbers
    for position, (a, b) in enumerate(zip(g, c)):  # on a category axis a number is the category's index:
        # x="9" put the gain of the 7th class at index 9, off the chart
        fig.add_annotation(x=position, y=100 * max(a, b), text=f"{100 * (b - a):+.1f}", showarrow=False, yshift=12)
    low = float(min([*(100 * g), *(100 * c)], default=0.0))
    fig.update_yaxes(range=[max(0.0, low - 10.0), 104.0])
    gain = 100 * (c.mean() - g.mean()) if len(g) else 0.0
    text = title or f"Accuracy on the classes the specialists cover: {gain:+.1f} points on average"
    fig.update_layout(barmode="group")
    return theme.apply(fig, theme.wrap_title(text, 60), "class covered by a specialist", "test accuracy (%)", height=400)


def stage_accuracy(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], colours: Mapping[str, str],
                   dashes: Mapping[str, str] | None = None, title: str | None = None) -> go.Figure:
    """``{label: (epochs, accuracies)}`` as lines (accuracy in %), each in ``colours[label]`` and
    with the plotly dash ``dashes[label]`` (default solid), so runs of one colour stay apart."""
    fig = go.Figure()
    for label, (x, y) in series.items():
        fig.add_scatter(x=list(x), y=[100 * float(v) for v in y], mode="lines+markers", name=label,
                        line={"color": colours.get(label, theme.SERIES[0]), "dash": (dashes or {}).get(label, "solid")},
                        marker={"size": 5}, hovertemplate=f"{label}: %{{y:.1f}} % at epoch %{{x:.2f}}<extra></extra>")
    text = title or "Test accuracy as the runs train: generalist (all classes), specialists (their classes or dustbin)"
    fig = theme.apply(fig, theme.wrap_title(text, 60), "epoch", "test accuracy (%)", height=380)
    return theme.legend_below(fig)
