"""What a feature-distillation method declares to serve as stage 1 of Yim et al.'s two-stage recipe.

A leaf module (it imports no other method module), so ``base.MethodSpec.stage1`` can name its type
and ``two_stage`` can use it without a cycle. The recipe itself is ``two_stage``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..engine.config import TrainConfig

# What a stage-1 method asks the UIs for (``Stage1Method.inputs``).
PAIRS = "section pairs"  # pairs of feature maps of the same section (FSP matrices, Yim et al. eq. 1)
LAYERS = "guided and hint layers"  # one student layer guided by one teacher layer (FitNets, Romero et al. eq. 3)


@dataclass(frozen=True)
class Stage1Choice:
    """What a UI chose for stage 1: its length and learning rate, and the method's inputs (``pairs``
    for a ``PAIRS`` method, () meaning every section pair; ``layers`` = (student's guided layer,
    teacher's hint layer) for a ``LAYERS`` method)."""

    steps: int
    lr: float
    pairs: tuple[tuple[str, str], ...] = ()
    layers: tuple[str, str] = ("stage2_out", "stage2_out")


@dataclass(frozen=True)
class Stage1Method:
    """How a feature-distillation method serves as stage 1 of the two-stage recipe.

    ``short`` names it in legends ("FSP"); ``title`` in a list of choices; ``probe_metric`` is the
    metric its hook logs on a fixed probe batch (under the hook's label: ``probe_loss_key``);
    ``default_lr`` the stage-1 learning rate that worked on digits; ``inputs`` is ``PAIRS`` or
    ``LAYERS``; ``build(base, choice)`` makes the stage-1 config; ``loss_caption`` (what a falling
    loss means) and ``loss_axis`` (the y-axis title) word its loss chart (None: the FSP chart's own);
    ``note`` is shown beside its inputs. Whether it has matrices to draw is ``spec.reader``.
    """

    short: str
    title: str
    probe_metric: str
    default_lr: float
    inputs: str
    build: Callable[[TrainConfig, Stage1Choice], TrainConfig]
    loss_caption: str | None = None
    loss_axis: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.inputs not in (PAIRS, LAYERS):
            raise ValueError(f"Stage1Method inputs must be {PAIRS!r} or {LAYERS!r}, got {self.inputs!r}")
        if not self.default_lr > 0:
            raise ValueError(f"Stage1Method default_lr must be positive, got {self.default_lr}")
