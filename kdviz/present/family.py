"""The distillation family side by side: which members exist, their knobs, their configs, their panels.

"Which distillation?" (issue 16) trains several students on the same teacher, student, data, seed
and batches, each with one method of the family (Hinton's KD, decoupled KD, relational KD, logit
matching...), beside a scratch student. Each method registers a ``FamilyMember`` here from its own
presentation module (``kdviz/present/family_<method>.py``, imported on the first lookup), so the page, the widget and the lab list
the members from this registry and never compare a method's name:

* ``spec``: the method's ``MethodSpec`` (label, colour, summary);
* ``knobs``: the settings a user can change (``Knob``: name, label, range, default, help);
* ``configure(base, values)``: the member's student ``TrainConfig`` from the shared base config (the
  scratch student's, with ``teacher`` set) and the knobs' values;
* ``panel(view)``: the member's own live figures from its run (``RunView``), each with a caption
  that describes what the figure shows now; ``()`` while there is nothing to draw yet.

``family_configs`` builds the experiment: the scratch student plus every chosen member, validated.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import plotly.graph_objects as go

from ..engine import TrainConfig
from ..methods.base import MethodSpec
from ..methods.kd import KD
from ..methods.scratch import SCRATCH
from ..registry import Registry
from .distill_configs import run_name
from .runs import RunView


@dataclass(frozen=True)
class Knob:
    """One setting of a family member: ``name`` (the key in ``values``), a ``label`` for the control,
    the closed range ``low..high``, the ``default``, the control's ``step`` and a one-line ``help``.
    ``integer`` knobs take whole numbers."""

    name: str
    label: str
    low: float
    high: float
    default: float
    step: float
    help: str = ""
    integer: bool = False

    def check(self, value: Any) -> float | int:
        """``value`` as a number in range; a ``ValueError`` naming the knob and the range otherwise."""
        ok_type = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok_type or not self.low <= float(value) <= self.high or (self.integer and float(value) != int(value)):
            kind = "a whole number" if self.integer else "a number"
            raise ValueError(f"{self.label} must be {kind} from {self.low:g} to {self.high:g}, got {value!r}")
        return int(value) if self.integer else float(value)


@dataclass(frozen=True)
class PanelFigure:
    """One live figure of a member's panel and the caption that goes beside it."""

    figure: go.Figure
    caption: str = ""


@dataclass(frozen=True)
class FamilyMember:
    """A method of the distillation family as the side-by-side experiment uses it."""

    spec: MethodSpec
    knobs: tuple[Knob, ...]
    configure: Callable[[TrainConfig, Mapping[str, Any]], TrainConfig]
    panel: Callable[[RunView], Sequence[PanelFigure]] | None = None
    order: int = 100

    @property
    def name(self) -> str:
        return self.spec.name

    def defaults(self) -> dict[str, float | int]:
        return {knob.name: knob.default for knob in self.knobs}

    def checked(self, values: Mapping[str, Any] | None) -> dict[str, float | int]:
        """Every knob's value (a missing one at its default), checked; an unknown key is a ``ValueError``."""
        values = dict(values or {})
        unknown = sorted(set(values) - {knob.name for knob in self.knobs})
        if unknown:
            raise ValueError(f"{self.spec.label} has no setting(s) {unknown}; it has {[k.name for k in self.knobs]}")
        return {knob.name: knob.check(values.get(knob.name, knob.default)) for knob in self.knobs}


def _discover() -> None:
    """Import every ``kdviz/present/family_<method>.py`` (each registers its member when imported)."""
    import importlib
    import pkgutil

    from .. import present

    for info in pkgutil.iter_modules(present.__path__):
        if info.name.startswith("family_"):
            importlib.import_module(f"{present.__name__}.{info.name}")


FAMILY: Registry[FamilyMember] = Registry("distillation family member", discover=_discover)


def register_member(member: FamilyMember) -> FamilyMember:
    """Add ``member`` under its method's name (a second one of the same name is a ``ValueError``)."""
    return FAMILY.register(member.name)(member)


def family_members() -> list[FamilyMember]:
    """Every registered member, in ``order`` (then name)."""
    return sorted((member for _, member in FAMILY.items()), key=lambda m: (m.order, m.name))


def family_member(name: str) -> FamilyMember:
    """The member registered as ``name``; a ``ValueError`` lists the known members otherwise."""
    return FAMILY.get(name)


def family_configs(base: TrainConfig, chosen: Mapping[str, Mapping[str, Any] | None]) -> dict[str, TrainConfig]:
    """``{label: config}`` for the scratch student and each chosen member, validated.

    ``base`` is the shared student config with ``teacher`` set (its base loss is ignored);
    ``chosen`` maps member names to their knob values (None: defaults). Every config shares the
    model, seed, data, batches and schedule of ``base``; only the method's fields differ."""
    if not base.teacher:
        raise ValueError("the distillation family needs a teacher: set 'teacher' in the base config")
    if not chosen:
        raise ValueError("choose at least one method to train beside the scratch student")
    scratch = replace(base, method=SCRATCH.loss, teacher=None, hooks=[], T=TrainConfig.T, alpha=TrainConfig.alpha,
                      name=run_name(SCRATCH.label))
    out = {SCRATCH.label: scratch.validate()}
    for name, values in chosen.items():
        member = family_member(name)
        config = member.configure(replace(base, hooks=list(base.hooks)), member.checked(values))
        out[member.spec.label] = replace(config, name=run_name(member.spec.label)).validate()
    return out


def _configure_kd(base: TrainConfig, values: Mapping[str, Any]) -> TrainConfig:
    return replace(base, method=KD.loss, T=float(values["T"]), alpha=float(values["alpha"]))


KD_MEMBER = register_member(FamilyMember(
    spec=KD,
    knobs=(Knob("T", "temperature T", 1.0, 50.0, 4.0, 0.5, "Hinton et al. 2015, eq. 1: higher T, softer targets"),
           Knob("alpha", "alpha (weight of the soft loss)", 0.0, 1.0, 0.9, 0.05,
                "alpha * T^2 * KL(p_T || q_T) + (1 - alpha) * CE")),
    configure=_configure_kd,
    order=0,
))

__all__ = ["FAMILY", "FamilyMember", "Knob", "PanelFigure", "family_configs", "family_member", "family_members",
           "register_member"]
