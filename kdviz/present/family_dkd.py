"""Decoupled KD as a member of the distillation family (Zhao et al., "Decoupled Knowledge Distillation",
CVPR 2022, eqs. 7-8).

Knobs: alpha (weight of TCKD), beta (weight of NCKD), the temperature T and the warm-up epochs;
``configure`` adds the method's hook to the shared student config (base loss cross-entropy, the
teacher kept). Defaults: alpha 1 and T 4 as the paper, no warm-up, and beta 2 rather than the paper's
8 (the hook's default), the value mdistiller uses for its smallest CIFAR-100 pair (ResNet-56 ->
ResNet-20). Measured with the family's digits defaults (MLP 256-256 teacher at 96.0 %, MLP-8
student, 100 labelled images, 400 epochs, lr 0.01, seeds 0-2): scratch 83.7 %, KD (T 4, alpha 0.9)
89.9 %, DKD beta 8: 84.6 %, DKD beta 8 with a 20-epoch warm-up: 88.5 %, DKD beta 2: 90.1 % (above
beta 8 on every seed): beta T^2 NCKD at beta 8 outweighs cross-entropy on this small student. The panel draws, from the run's evaluations, TCKD, NCKD and Hinton's KD on the probe
batch over training, and, from its latest snapshot, each probe image's NCKD weight 1 - p_t^T in KD
against the teacher's confidence. Captions are written from those numbers now: which part is larger,
how eq. 7 adds up, and how much NCKD the teacher's confidence takes out of Hinton's loss.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..engine import TrainConfig
from ..figures.dkd import CONFIDENT, dkd_parts_curve, metric_series, nckd_suppression
from ..methods.dkd import DKD, DKDSnapshot, dkd_config, dkd_options, dkd_series_keys
from .family import FamilyMember, Knob, PanelFigure, register_member
from .runs import RunView

SAME_SIZE = 1.1  # parts within this factor of each other read as "about the same size"


def configure_dkd(base: TrainConfig, values: Mapping[str, Any]) -> TrainConfig:
    """The DKD student: ``base`` (teacher set) on cross-entropy plus the hook with the knobs' values."""
    return dkd_config(base, alpha=float(values["alpha"]), beta=float(values["beta"]), T=float(values["T"]),
                      warmup_epochs=int(values["warmup"]))


def _which_is_larger(tckd: float, nckd: float) -> str:
    if max(tckd, nckd) <= 0:
        return "TCKD and NCKD are both 0: the student matches the teacher on this batch"
    big, small = (("NCKD", nckd), ("TCKD", tckd)) if nckd >= tckd else (("TCKD", tckd), ("NCKD", nckd))
    if small[1] > 0 and big[1] / small[1] < SAME_SIZE:
        return f"TCKD ({tckd:.3f}) and NCKD ({nckd:.3f}) are about the same size"
    ratio = f"{big[1] / small[1]:.2g}x" if small[1] > 0 else "far"
    return f"{big[0]} ({big[1]:.3f}) is {ratio} larger than {small[0]} ({small[1]:.3f})"


def parts_caption(steps: list[float], series: Mapping[str, list[float]], options: Mapping[str, Any]) -> str:
    """What the parts chart shows now: which part is larger, eq. 7's sum, and the trend since the first evaluation."""
    if not steps:
        return "No evaluation yet."
    last = {name: values[-1] for name, values in series.items()}
    text = (f"Step {int(steps[-1])}, probe batch, T = {float(options['T']):g}: "
            f"{_which_is_larger(last['tckd'], last['nckd'])}. Hinton's KD = TCKD + (1 − p_t)·NCKD = "
            f"{last['tckd']:.3f} + {last['nckd_in_kd']:.3f} = {last['hinton']:.3f}")
    if last["nckd"] > 0:
        text += (f": with the teacher's mean target probability at {last['p_t']:.2f}, KD passes on "
                 f"{100 * last['nckd_in_kd'] / last['nckd']:.0f}% of NCKD")
    text += (f", while this student weights TCKD by α = {float(options['alpha']):g} and NCKD by "
             f"β = {float(options['beta']):g} whatever the teacher's confidence.")
    if len(steps) > 1 and series["tckd"][0] > 0 and series["nckd"][0] > 0:
        change = {k: series[k][-1] / series[k][0] for k in ("tckd", "nckd")}
        words = [f"{k.upper()} {'fell to' if v < 1 else 'rose to'} {100 * v:.0f}%" for k, v in change.items()]
        text += f" Since step {int(steps[0])}: {' and '.join(words)} of its first value."
    return text


def suppression_caption(snapshot: DKDSnapshot, step: int, beta: float) -> str:
    """What the suppression chart shows now: confident images, the share of NCKD KD drops, and where."""
    n = snapshot.teacher_target_prob.size
    sure = snapshot.teacher_target_prob > CONFIDENT
    share = snapshot.suppressed_fraction
    text = (f"Step {step}: on {n} probe images at T = {snapshot.T:g}, the teacher gives the right class "
            f"p_t = {snapshot.teacher_target_prob.mean():.2f} on average and is sure (p_t > {CONFIDENT:g}) of "
            f"{int(sure.sum())}. Hinton's KD keeps only 1 − p_t of each image's NCKD, so it drops "
            f"{100 * share:.0f}% of the NCKD on this batch")
    if sure.any() and snapshot.nckd.sum() > 0:
        dropped_there = float((snapshot.teacher_target_prob * snapshot.nckd)[sure].sum())
        dropped = float((snapshot.teacher_target_prob * snapshot.nckd).sum())
        if dropped > 0:
            text += f", {100 * dropped_there / dropped:.0f}% of that on the images the teacher is sure of"
    return text + f". DKD gives every image's NCKD the same weight β = {beta:g} (hollow markers)."


def dkd_panel(view: RunView) -> list[PanelFigure]:
    """The DKD student's parts over training (evaluations) and the NCKD suppression (latest snapshot)."""
    out: list[PanelFigure] = []
    options = dkd_options(view.config)
    steps, series = metric_series(view.evals, dkd_series_keys(view.config))
    if steps:
        figure = dkd_parts_curve(steps, series["tckd"], series["nckd"], series["hinton"], series["nckd_in_kd"],
                                 T=float(options["T"]))
        out.append(PanelFigure(figure, parts_caption(steps, series, options)))
    snap = view.latest_snapshot()
    reading = None
    if snap is not None:
        try:
            reading = view.read(DKD, snap)
        except ValueError:  # a snapshot without the hook's arrays
            reading = None
    if reading is not None:
        figure = nckd_suppression(reading.teacher_target_prob, reading.nckd, T=reading.T)
        out.append(PanelFigure(figure, suppression_caption(reading, snap.step, float(options["beta"]))))
    return out


DKD_MEMBER = register_member(FamilyMember(
    spec=DKD,
    knobs=(Knob("alpha", "alpha (weight of TCKD)", 0.0, 10.0, 1.0, 0.5,
                "Zhao et al. 2022, eq. 8: weight of the target-class part, KL between [p_t, 1 − p_t] of teacher "
                "and student"),
           Knob("beta", "beta (weight of NCKD)", 0.0, 20.0, 2.0, 0.5,
                "eq. 8: weight of the non-target part, KL between the distributions over the wrong classes "
                "(the paper: 8; 2 did better on digits' small students)"),
           Knob("T", "temperature T", 1.0, 20.0, 4.0, 0.5,
                "both parts are T²·KL of softmax(z / T), as Hinton's loss"),
           Knob("warmup", "warm-up epochs", 0, 20, 0, 1,
                "ramp both parts up linearly over this many epochs (mdistiller: 20 of 240); 0: full weight at once",
                integer=True)),
    configure=configure_dkd,
    panel=dkd_panel,
    order=10,
))

__all__ = ["DKD_MEMBER", "configure_dkd", "dkd_panel", "parts_caption", "suppression_caption"]
