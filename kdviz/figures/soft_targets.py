"""Charts of temperature-softened distributions (Hinton, Vinyals, Dean 2015, eq. 1)."""
from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from ..distill.soft_targets import entropy, soften
from . import theme

TEACHER_COLOUR = theme.ROLE_COLORS["teacher"]  # a teacher's soft targets and entropy curve (default)
MARKER_COLOUR = theme.ROLE_COLORS["kd student"]  # the current-T marker: the T a student would learn at


def sample_image(image: np.ndarray, caption: str = "") -> go.Figure:
    """A greyscale picture of one input image, shape (H, W) or (1, H, W), values in [0, 1]."""
    image = np.asarray(image).squeeze()
    fig = go.Figure(go.Heatmap(z=image[::-1], colorscale="Greys", zmin=0, zmax=1, showscale=False, hoverinfo="skip"))
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, scaleanchor="x")
    theme.apply(fig, caption or "Input image", height=260)
    fig.update_layout(margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def bars_title(probs: Sequence[float], T: float, class_names: Sequence[str]) -> tuple[str, str]:
    """(title, subtitle) of ``probability_bars`` at T: the entropy of the soft targets and the
    runner-up class's probability (the "dark knowledge" a reader should look for)."""
    probs = np.asarray(probs, dtype=np.float64)
    runner_up = int(np.argsort(probs)[-2])
    return (f"Soft targets at T = {T:g}: entropy {entropy(probs.tolist()):.2f} nats",
            f"runner-up class {class_names[runner_up]} gets {probs[runner_up]:.1%}")


def probability_bars(
    logits: Sequence[float], T: float, class_names: Sequence[str], reference_T: float | None = 1.0,
    colour: str = TEACHER_COLOUR,
) -> go.Figure:
    """Bars of softmax(logits / T) per class in ``colour``, with the T = ``reference_T`` distribution
    as outlines (drawn only when ``reference_T`` differs from T).

    What to notice: raising T lifts the small probabilities, revealing which wrong classes the
    model finds similar ("dark knowledge").
    """
    probs = np.asarray(soften(np.asarray(logits, dtype=np.float64), T))
    fig = go.Figure()
    fig.add_bar(
        x=list(class_names), y=probs, name=f"T = {T:g}", marker_color=colour,
        hovertemplate="class %{x}: %{y:.4f}<extra></extra>",
    )
    if reference_T is not None and reference_T != T:
        ref = np.asarray(soften(np.asarray(logits, dtype=np.float64), reference_T))
        fig.add_bar(
            x=list(class_names), y=ref, name=f"T = {reference_T:g}", marker={"color": "rgba(0,0,0,0)",
            "line": {"color": theme.OKABE_ITO["black"], "width": 1.5}}, hovertemplate="class %{x}: %{y:.4f}<extra></extra>",
        )
    fig.update_layout(barmode="overlay", bargap=0.25)
    fig.update_yaxes(range=[0, 1.02])
    title, subtitle = bars_title(probs, T, class_names)
    return theme.apply(fig, title, x_title="class", y_title="probability", subtitle=subtitle)


def soft_target_frames(
    logits: Sequence[float], temperatures: Sequence[float], class_names: Sequence[str], reference_T: float = 1.0,
) -> list[dict]:
    """What changes in ``probability_bars`` and ``entropy_curve`` when only T changes, one plain dict
    per temperature, for a browser to apply without a server (``Plotly.animate``/``relayout``).

    Each frame holds ``T``; ``bars``: trace 0's ``y`` (softmax(z / T), Hinton et al. 2015, eq. 1)
    and ``name``, whether the T = ``reference_T`` outline trace shows (``reference_visible``) and
    the title HTML (``theme.apply``'s format); ``marker``: the entropy curve's last trace (``x``,
    ``y``, ``name``). Applied to figures drawn at another T (with the outline trace), a frame gives
    what the figure functions draw at its T (``tests/figures`` checks it).
    """
    z = np.asarray(logits, dtype=np.float64)
    temps = np.asarray(temperatures, dtype=np.float64)
    probs = np.asarray(soften(z[None, :] / temps[:, None], 1.0))  # one row per temperature, vectorised
    entropies = np.asarray(entropy(probs), dtype=np.float64).reshape(-1)
    template = theme_title(_TITLE, _SUBTITLE)
    frames = []
    for T, p, h in zip(temps.tolist(), probs, entropies.tolist()):
        title, subtitle = bars_title(p, T, class_names)
        frames.append({
            "T": T,
            "bars": {"y": p.tolist(), "name": f"T = {T:g}", "reference_visible": T != reference_T,
                     "title": template.replace(_TITLE, title).replace(_SUBTITLE, subtitle)},
            "marker": {"x": [T], "y": [h], "name": f"T = {T:g}"},
        })
    return frames


_TITLE, _SUBTITLE = "\x00title\x00", "\x00subtitle\x00"  # placeholders: never in a real title


@functools.lru_cache(maxsize=8)
def theme_title(title: str, subtitle: str | None = None) -> str:
    """The title HTML ``theme.apply`` writes for ``title`` and ``subtitle`` (read back from it)."""
    return theme.apply(go.Figure(), title, subtitle=subtitle, height=None).layout.title.text


def entropy_curve(logits: Sequence[float], T: float, t_min: float = 0.1, t_max: float = 100.0,
                  colour: str = TEACHER_COLOUR, marker_colour: str = MARKER_COLOUR) -> go.Figure:
    """Entropy of softmax(logits / T) against T on a log axis (in ``colour``), with a marker at the
    current T (in ``marker_colour``).

    What to notice: entropy rises from near 0 (one-hot) towards ln(K) (uniform) as T grows.
    """
    temps = np.logspace(np.log10(t_min), np.log10(t_max), 200)
    z = np.asarray(logits, dtype=np.float64)
    h = np.asarray([entropy(soften(z, float(t))) for t in temps])  # soften divides stably (max first)
    h_now = float(entropy(soften(z, T)))
    fig = go.Figure()
    fig.add_scatter(x=temps, y=h, mode="lines", name="entropy", line={"color": colour, "width": 2.5},
                    hovertemplate="T = %{x:.3g}: %{y:.3f} nats<extra></extra>")
    # The label sits above the line at the left, where the curve is far below it (it nears the line
    # only at high T, on the right), with headroom so it never touches the curve or the frame.
    uniform = float(np.log(len(z)))
    fig.add_hline(y=uniform, line={"dash": "dot", "color": theme.OKABE_ITO["grey"]},
                  annotation_text=f"uniform: ln {len(z)} = {uniform:.2f}", annotation_position="top left")
    fig.add_scatter(x=[T], y=[h_now], mode="markers", name=f"T = {T:g}",
                    marker={"size": 13, "color": marker_colour, "line": {"width": 2, "color": "white"}},
                    hovertemplate="T = %{x:.3g}: %{y:.3f} nats<extra></extra>")
    fig.update_xaxes(type="log")
    fig.update_yaxes(range=[0, 1.15 * uniform])
    return theme.apply(fig, "Higher temperature, flatter distribution", x_title="temperature T (log scale)",
                       y_title="entropy (nats)")


def softmax_curves(
    temperatures: Sequence[float] = (1, 2, 5, 10, 20), num_logits: int = 10, seed: int = 0, low: float = -10.0, high: float = 10.0
) -> go.Figure:
    """Softmax of the same random logits, uniform in (low, high), at several temperatures.

    Logits are sorted so each line reads left to right from least to most likely class. What to
    notice: at T = 1 nearly all mass sits on the largest logit; high T spreads it out.
    """
    rng = np.random.default_rng(seed)
    z = np.sort(rng.uniform(low, high, size=num_logits))
    fig = go.Figure()
    for i, T in enumerate(temperatures):
        fig.add_scatter(x=z, y=np.asarray(soften(z, T)), mode="lines+markers", name=f"T = {T:g}",
                        line={"color": theme.SERIES[i % len(theme.SERIES)], "width": 2},
                        hovertemplate=f"T = {T:g}<br>logit %{{x:.2f}}: %{{y:.4f}}<extra></extra>")
    return theme.apply(fig, f"The same {num_logits} random logits, softened at {len(temperatures)} temperatures",
                       x_title="logit z (sorted)", y_title="softmax probability")
