"""Deep mutual learning as a member of the distillation family (Zhang, Xiang, Hospedales, Lu, "Deep
Mutual Learning", CVPR 2018, eqs. 1-4).

DML needs no teacher: ``configure`` drops the family's teacher and trains the shared student on
cross-entropy plus the ``dml`` hook, which trains a peer of the same architecture (its own seed)
beside it, each pulled towards the other's predictions. Knobs: the KL ``weight`` (the paper: 1) and
the temperature ``T`` (the paper: 1, no temperature). The panel draws, from the run's evaluations,
both students' test accuracy with their agreement, and the two KL terms on the probe batch; captions
are written from those numbers now: which student leads, by how much, how often they agree, and
whether the KL terms grow or shrink.

Measured with the family's digits defaults (MLP-8 students, 100 labelled images, 400 epochs, lr 0.01,
batch 16, seeds 0-2, weight 1, T 1): scratch 85.6 / 86.0 / 79.6 % (mean 83.7), the DML student (same
initial weights as scratch) 85.6 / 85.1 / 80.4 % (mean 83.7), its peer 88.4 / 75.1 / 82.0 %, the two
agreeing on 91 / 83 / 88 % of test images: on students this small no gain shows, and which of the two
leads depends on the seed (the paper's gains are for CIFAR-100 and Market-1501 networks).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..engine import TrainConfig
from ..figures.dkd import metric_series
from ..figures.dml import leader, mutual_accuracy_curve, mutual_kl_curve
from ..methods.dml import DML, dml_config, dml_options, dml_series_keys
from .family import FamilyMember, Knob, PanelFigure, register_member
from .runs import RunView


def configure_dml(base: TrainConfig, values: Mapping[str, Any]) -> TrainConfig:
    """The DML student: ``base`` without its teacher, on cross-entropy plus the hook with the knobs' values."""
    return dml_config(base, weight=float(values["weight"]), T=float(values["T"]))


def dml_curves(evals: Sequence[Mapping[str, Any]], config: Any) -> tuple[list[float], dict[str, list[float]]]:
    """(steps, {"acc", "peer_acc", "agreement", "kl", "peer_kl"}) from a DML run's evaluation records."""
    return metric_series(evals, {"acc": "test_acc", **dml_series_keys(config)})


def accuracy_caption(steps: list[float], series: Mapping[str, list[float]]) -> str:
    """What the accuracy chart shows now: which student leads, by how much, and how often they agree."""
    if not steps:
        return "No evaluation yet."
    acc, peer, same = series["acc"][-1], series["peer_acc"][-1], series["agreement"][-1]
    text = (f"Step {int(steps[-1])}: the {leader(acc, peer, 'run’s student', 'peer')} (test accuracy "
            f"{100 * acc:.1f}% against {100 * peer:.1f}%); they predict the same class for {100 * same:.0f}% of "
            f"test images")
    if len(steps) > 1:
        change = 100 * (same - series["agreement"][0])
        text += f", {'up' if change >= 0 else 'down'} {abs(change):.0f} points since step {int(steps[0])}"
    return text + f". They disagree on {100 * (1.0 - same):.0f}%, where at least one of them is wrong."


def kl_caption(steps: list[float], series: Mapping[str, list[float]], options: Mapping[str, Any]) -> str:
    """What the KL chart shows now: the two terms, which is larger, and their trend."""
    if not steps:
        return "No evaluation yet."
    kl, peer_kl = series["kl"][-1], series["peer_kl"][-1]
    text = (f"Step {int(steps[-1])}, probe batch, T = {float(options['T']):g}: KL(peer ‖ student) = {kl:.4f} pulls "
            f"the student, KL(student ‖ peer) = {peer_kl:.4f} pulls the peer; each is trained with weight "
            f"{float(options['weight']):g}")
    if len(steps) > 1:
        first = series["kl"][0] + series["peer_kl"][0]
        now = kl + peer_kl
        trend = "grew" if now > first else "shrank"
        text += f". Together they {trend} from {first:.4f} at step {int(steps[0])} to {now:.4f}"
    return text + "."


def dml_panel(view: RunView) -> list[PanelFigure]:
    """Both students' test accuracy and agreement, and the two KL terms, over training."""
    steps, series = dml_curves(view.evals, view.config)
    if not steps:
        return []
    options = dml_options(view.config)
    accuracy = mutual_accuracy_curve(steps, series["acc"], series["peer_acc"], series["agreement"],
                                     colour=view.colour, label="student", peer_label="peer")
    kl = mutual_kl_curve(steps, series["kl"], series["peer_kl"], T=float(options["T"]), colour=view.colour)
    return [PanelFigure(accuracy, accuracy_caption(steps, series)), PanelFigure(kl, kl_caption(steps, series, options))]


DML_MEMBER = register_member(FamilyMember(
    spec=DML,
    knobs=(Knob("weight", "weight of the KL terms", 0.0, 10.0, 1.0, 0.5,
                "Zhang et al. 2018, eqs. 3-4: each student's loss is CE + weight · KL(p_other ‖ p_self); "
                "the paper: 1"),
           Knob("T", "temperature T", 1.0, 20.0, 1.0, 0.5,
                "both KLs are T²·KL of softmax(z / T); the paper has no temperature (T = 1)")),
    configure=configure_dml,
    panel=dml_panel,
    order=50,
))

__all__ = ["DML_MEMBER", "accuracy_caption", "configure_dml", "dml_curves", "dml_panel", "kl_caption"]
