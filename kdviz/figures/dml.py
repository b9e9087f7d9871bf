"""Charts of deep mutual learning (Zhang, Xiang, Hospedales, Lu, "Deep Mutual Learning", CVPR 2018).

Two students train together, each on its cross-entropy plus KL(p_other || p_self) (eqs. 3-4):

* ``mutual_accuracy_curve``: both students' test accuracy against training steps on one chart (the
  run's model solid, its peer dashed, in the run's colour), with their agreement on the test set
  dotted; the title says which student leads now;
* ``mutual_kl_curve``: the two KL terms on a fixed probe batch, KL(p_peer || p_student) (what the
  student is pulled by) and KL(p_student || p_peer) (what the peer is pulled by).

Data in, figure out: values are plain sequences, labels and colours arrive as arguments (this module
knows no method and no engine). Accuracies are fractions in [0, 1], drawn as percent; KLs are
T^2 KL in nats, as trained.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from . import theme

AGREEMENT_COLOUR = theme.OKABE_ITO["grey"]
LEVEL = 0.005  # accuracies within half a percentage point read as level


def _series(name: str, values: Sequence[float], steps: np.ndarray) -> np.ndarray:
    y = np.asarray(values, dtype=np.float64)
    if y.shape != steps.shape:
        raise ValueError(f"{name}: {y.size} values for {steps.size} steps")
    return y


def _titled(fig: go.Figure, headline: str, explanation: str, **axes: str) -> go.Figure:
    return theme.compact(theme.apply(fig, theme.wrap_title(headline, 46), subtitle=theme.wrap_title(explanation, 70),
                                     **axes))


def leader(accuracy: float, peer_accuracy: float, label: str = "student", peer_label: str = "peer") -> str:
    """Which student leads at these test accuracies (fractions), in words: "peer leads by 2.4 points"."""
    gap = float(peer_accuracy) - float(accuracy)
    if abs(gap) < LEVEL:
        return f"{label} and {peer_label} are level"
    who = peer_label if gap > 0 else label
    return f"{who} leads by {100 * abs(gap):.1f} points"


def mutual_accuracy_curve(steps: Sequence[float], accuracy: Sequence[float], peer_accuracy: Sequence[float],
                          agreement: Sequence[float] | None = None, colour: str = theme.OKABE_ITO["orange"],
                          label: str = "student", peer_label: str = "peer") -> go.Figure:
    """Test accuracy (percent) of both students against training steps; ``agreement`` (optional,
    fractions) is the share of test images on which they predict the same class, dotted grey."""
    x = np.asarray(steps, dtype=np.float64)
    acc, peer_acc = _series(label, accuracy, x), _series(peer_label, peer_accuracy, x)
    fig = go.Figure()
    lines = [(label, acc, colour, "solid"), (peer_label, peer_acc, colour, "dash")]
    if agreement is not None:
        lines.append(("agreement of the two", _series("agreement", agreement, x), AGREEMENT_COLOUR, "dot"))
    for name, y, line_colour, dash in lines:
        fig.add_scatter(x=x, y=100 * y, mode="lines+markers", name=name, marker={"size": 5},
                        line={"color": line_colour, "width": 2, "dash": dash},
                        hovertemplate="step %{x}: %{y:.1f}%<extra>" + name + "</extra>")
    if x.size:
        words = leader(acc[-1], peer_acc[-1], label, peer_label)
        headline = words[0].upper() + words[1:]
        explanation = f"test accuracy {100 * acc[-1]:.1f}% and {100 * peer_acc[-1]:.1f}% at step {x[-1]:g}"
        if agreement is not None:
            explanation += f"; they agree on {100 * float(np.asarray(agreement)[-1]):.0f}% of test images"
    else:
        headline, explanation = "Two students learning together", "no evaluation yet"
    fig.update_yaxes(range=[0, 101])
    return _titled(fig, headline, explanation, x_title="training step (optimizer updates)", y_title="test accuracy (%)")


def mutual_kl_curve(steps: Sequence[float], kl: Sequence[float], peer_kl: Sequence[float], T: float | None = None,
                    colour: str = theme.OKABE_ITO["orange"], label: str = "student",
                    peer_label: str = "peer") -> go.Figure:
    """The two mimicry terms on a probe batch against training steps: T^2 KL(p_peer || p_student)
    (solid, pulls the student) and T^2 KL(p_student || p_peer) (dashed, pulls the peer)."""
    x = np.asarray(steps, dtype=np.float64)
    to_student, to_peer = _series("kl", kl, x), _series("peer_kl", peer_kl, x)
    fig = go.Figure()
    for name, y, dash in ((f"KL({peer_label} ‖ {label}): pulls the {label}", to_student, "solid"),
                          (f"KL({label} ‖ {peer_label}): pulls the {peer_label}", to_peer, "dash")):
        fig.add_scatter(x=x, y=y, mode="lines+markers", name=name, marker={"size": 5},
                        line={"color": colour, "width": 2, "dash": dash},
                        hovertemplate="step %{x}: %{y:.4f}<extra>" + name + "</extra>")
    at = f" at T = {T:g}" if T is not None else ""
    if x.size:
        peak = int(np.argmax(to_student + to_peer))
        headline = f"The students' predictions differ by KL {to_student[-1]:.3f} / {to_peer[-1]:.3f} now"
        explanation = (f"largest at step {x[peak]:g} ({to_student[peak]:.3f} / {to_peer[peak]:.3f}); probe batch{at}, "
                       f"KL is not symmetric")
    else:
        headline, explanation = "How far apart the two students' predictions are", f"no evaluation yet{at}"
    fig.update_yaxes(rangemode="tozero")
    return _titled(fig, headline, explanation, x_title="training step (optimizer updates)", y_title="T²·KL (nats)")


__all__ = ["leader", "mutual_accuracy_curve", "mutual_kl_curve"]
