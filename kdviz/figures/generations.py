"""Charts of chains of distillation: born-again generations and teacher assistants.

* ``generation_accuracy``: test accuracy per generation (Furlanello et al., ICML 2018, "Born-Again
  Neural Networks", section 3: generation k distilled from generation k-1 of the same architecture),
  a marker per generation at the mean over seeds, an error bar of one standard deviation, and each
  seed's accuracy as a dot, so a reader sees whether a generation beats the one before it and by
  more than the seed noise;
* ``capacity_gap_accuracy``: test accuracy against the capacity gap (teacher parameters / student
  parameters, log axis) for students distilled directly from the teacher and for the student taught
  via a teacher assistant (Mirzadeh et al., AAAI 2020, figure 1's question: does an assistant of
  intermediate size close the gap?).

Each generation (or run of a chain) has its own colour, named in the legend (``group_styles``: the
palette's series, generation 0 first in the scratch student's green since it learns from the labels
alone, the teacher's blue last since the teacher is drawn as a dashed blue line).

Data in, figure out: accuracies (fractions in [0, 1]), sizes and colours arrive as arguments; this
module knows no method, no engine and no run.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from . import theme

# generation 0 (labels only) green like a scratch student, generation 1 vermillion like a KD student, ...;
# blue, the teacher's dashed line, last
GROUP_COLOURS = tuple(theme.SERIES[i] for i in (2, 1, 3, 4, 5, 6, 7, 0))
GROUP_SYMBOLS = ("diamond", "square", "triangle-up", "star")  # a second round of colours gets a second symbol
# the teacher-assistant chain: the assistant, the student distilled directly (a KD student, not the
# teacher's blue: the teacher is a dashed blue line on the same chart), the student taught via the assistant
ASSISTANT_COLOUR, DIRECT_COLOUR, VIA_COLOUR = theme.OKABE_ITO["reddish purple"], theme.OKABE_ITO["vermillion"], theme.OKABE_ITO["orange"]
MEAN_LINE = "#888888"  # the grey line that joins the generations' means
KEY_GREY = "#333333"  # the legend keys of the mark shapes (mean, one seed)


def group_styles(count: int) -> list[tuple[str, str]]:
    """``(colour, marker symbol)`` for ``count`` generations, every pair different: the colours of
    ``GROUP_COLOURS`` in turn, then again with the next symbol of ``GROUP_SYMBOLS``."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be a whole number >= 0, got {count!r}")
    n = len(GROUP_COLOURS)
    if count > n * len(GROUP_SYMBOLS):
        raise ValueError(f"at most {n * len(GROUP_SYMBOLS)} groups can be told apart, got {count}")
    return [(GROUP_COLOURS[i % n], GROUP_SYMBOLS[i // n]) for i in range(count)]


def _fractions(name: str, values: Sequence[float]) -> np.ndarray:
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.ndim != 1 or ((arr < 0) | (arr > 1)).any() or not np.isfinite(arr).all():
        raise ValueError(f"{name} must be accuracies between 0 and 1, got {list(values)!r}")
    return arr


def _styles(generations: Sequence[str], colours: Sequence[str] | None) -> list[tuple[str, str]]:
    """Each generation's (colour, symbol): ``group_styles`` by default; given ``colours``, a colour
    used again takes the next symbol, so no two generations look alike."""
    if colours is None:
        return group_styles(len(generations))
    if len(colours) != len(generations) or not all(isinstance(c, str) and c for c in colours):
        raise ValueError(f"one colour per generation: {len(generations)} generations, colours {list(colours)!r}")
    return [(c, GROUP_SYMBOLS[list(colours[:i]).count(c) % len(GROUP_SYMBOLS)]) for i, c in enumerate(colours)]


def _legend_key(fig: go.Figure, name: str, colour: str, symbol: str, mode: str = "markers") -> None:
    """A legend entry with no points of its own (plotly lists a trace whose data is empty)."""
    fig.add_scatter(x=[None], y=[None], mode=mode, name=name, hoverinfo="skip", line={"color": MEAN_LINE, "width": 2},
                    marker={"color": colour, "size": 11 if symbol != "circle-open" else 8, "symbol": symbol,
                            "line": {"color": KEY_GREY, "width": 1 if symbol != "circle-open" else 1.5}})


def generation_accuracy(generations: Sequence[str], per_seed: Sequence[Sequence[float]], *,
                        teacher_accuracy: float | None = None, colours: Sequence[str] | None = None,
                        x_title: str = "generation (each distilled from the one before)",
                        title: str | None = None, connect: bool = True) -> go.Figure:
    """The mean test accuracy per generation as markers joined by a grey line (``generations``: their
    names, in order; ``per_seed``: each generation's accuracies, one per seed that has one, possibly
    none yet), error bars of one sample standard deviation where a generation has two seeds or more,
    each seed a dot in its generation's colour; every generation in its own colour (``colours``, one
    per generation; default ``group_styles``), named in the legend; an optional dashed line at the
    teacher's accuracy; ``x_title`` names the groups; ``title`` replaces the default one (the last
    generation's gain over the first); ``connect=False`` draws the means without the line (groups
    that are not a sequence).

    Traces: 0 the means (one point a generation), 1 the seeds' dots, then one legend entry a
    generation and the keys of the two mark shapes."""
    if len(generations) != len(per_seed) or not generations:
        raise ValueError(f"one list of accuracies per generation: {len(generations)} names, {len(per_seed)} lists")
    styles = _styles(generations, colours)
    accs = [_fractions(f"accuracies of {g}", a) for g, a in zip(generations, per_seed)]
    means = [100 * a.mean() if a.size else None for a in accs]
    spreads = [100 * a.std(ddof=1) if a.size > 1 else 0.0 for a in accs]
    fig = go.Figure()
    # markers joined by a line, not bars: the axis is zoomed to the accuracies, and a bar cut off at its
    # foot would make a 0.2-point step look large
    fig.add_scatter(x=list(generations), y=means, name="mean over seeds (± 1 std)", showlegend=False,
                    mode="lines+markers" if connect else "markers", line={"color": MEAN_LINE, "width": 2},
                    marker={"color": [c for c, _ in styles], "symbol": [s for _, s in styles], "size": 12,
                            "line": {"color": KEY_GREY, "width": 1}},
                    error_y={"type": "data", "array": spreads, "visible": True, "color": MEAN_LINE, "thickness": 1.5},
                    hovertemplate="%{x}: %{y:.1f}% (mean)<extra></extra>")
    xs = [g for g, a in zip(generations, accs) for _ in a]
    ys = [100 * v for a in accs for v in a]
    dot_colours = [c for (c, _), a in zip(styles, accs) for _ in a]
    fig.add_scatter(x=xs, y=ys, mode="markers", name="one seed", showlegend=False,
                    marker={"color": dot_colours, "size": 8, "symbol": "circle-open", "line": {"width": 1.5}},
                    hovertemplate="%{x}: %{y:.1f}% (one seed)<extra></extra>")
    for g, (colour, symbol) in zip(generations, styles):
        _legend_key(fig, g, colour, symbol)
    _legend_key(fig, "mean over seeds (± 1 std)", KEY_GREY, "diamond", "lines+markers" if connect else "markers")
    _legend_key(fig, "one seed", KEY_GREY, "circle-open")
    if teacher_accuracy is not None:
        fig.add_hline(y=100 * teacher_accuracy, line={"color": theme.role_color("teacher"), "dash": "dash", "width": 1.5},
                      annotation_text=f"teacher {100 * teacher_accuracy:.1f}%", annotation_position="bottom right")
    known = [(g, m) for g, m in zip(generations, means) if m is not None]
    if len(known) >= 2:
        default_title = f"Does each generation beat the one before? {known[-1][0]}: {known[-1][1] - known[0][1]:+.1f} points against {known[0][0]}"
    else:
        default_title = "Accuracy per generation: waiting for two generations to have an evaluation"
    values = ys + ([100 * teacher_accuracy] if teacher_accuracy is not None else [])
    low = min(values) - 5 if values else 0
    fig.update_yaxes(range=[max(0.0, low), 100.5])
    theme.apply(fig, theme.wrap_title(title or default_title, 70), x_title, "test accuracy (%)")
    # rows counted for a half-width chart (the widget, the assistant chain's two columns): never too few
    return theme.fit_legend(fig, [*generations, "mean over seeds (± 1 std)", "one seed"], width_px=560)


def capacity_gap_accuracy(direct: Sequence[tuple[float, float, float | None, str]],
                          via: Sequence[tuple[float, float, float | None, str]]) -> go.Figure:
    """Test accuracy against the capacity gap (teacher params / model params, log x axis).

    ``direct``: (gap, mean accuracy, spread or None, label) of each model distilled from the teacher
    itself (the assistant, the direct student); ``via``: the same for the student taught by the
    assistant. Error bars: one standard deviation over seeds."""
    fig = go.Figure()
    for name, points, colour, symbol in (("distilled directly from the teacher", direct, DIRECT_COLOUR, "circle"),
                                          ("via the teacher assistant", via, VIA_COLOUR, "diamond")):
        pts = sorted(points)
        if any(g <= 0 for g, *_ in pts):
            raise ValueError(f"capacity gaps must be positive, got {[g for g, *_ in pts]}")
        _fractions(f"accuracies {name}", [a for _, a, _, _ in pts])
        fig.add_scatter(x=[g for g, *_ in pts], y=[100 * a for _, a, _, _ in pts], mode="lines+markers", name=name,
                        text=[label for *_, label in pts], line={"color": colour, "width": 2.5},
                        marker={"size": 11, "symbol": symbol, "line": {"color": "#333", "width": 1}},
                        error_y={"type": "data", "array": [100 * (s or 0.0) for _, _, s, _ in pts], "visible": True},
                        hovertemplate="%{text}: gap %{x:.0f}x, %{y:.1f}%<extra></extra>")
    direct_student = max(direct, default=None)
    via_student = max(via, default=None)
    if direct_student and via_student:
        gap = 100 * (via_student[1] - direct_student[1])
        title = f"At a capacity gap of {direct_student[0]:.0f}x, the assistant path is {gap:+.1f} points against direct"
    else:
        title = "Accuracy against the capacity gap: waiting for both students"
    fig.update_xaxes(type="log")
    theme.apply(fig, theme.wrap_title(title, 70), "capacity gap: teacher parameters / model parameters (log)",
                "test accuracy (%)")
    return fig


__all__ = ["capacity_gap_accuracy", "generation_accuracy", "group_styles"]
