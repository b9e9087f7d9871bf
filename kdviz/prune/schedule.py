"""Sparsity schedules: when to prune, and how much.

Zhu & Gupta, "To prune, or not to prune: exploring the efficacy of pruning for model compression"
(2017), equation 1, the automated gradual pruner (AGP):

    s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt))^3    for t in {t0, t0 + dt, ..., t0 + n*dt}

Sparsity rises from s_i at step t0 to s_f at step t0 + n*dt, pruning every dt steps: fast at first,
while many redundant weights remain, then ever more slowly, giving the network time to recover.
Here ``start_step`` is t0, ``end_step`` is t0 + n*dt and ``frequency`` is dt. Between pruning steps
the target holds at its last value (masks only change on pruning steps); before t0 nothing is
pruned (0.0) and from ``end_step`` on the target is s_f (also when end - start is not a multiple
of dt, so the final sparsity is always reached).

Schedules are registered in ``SCHEDULES`` by name (``"one-shot"``, ``"agp"``) so a training hook
builds one from plain JSON options.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..registry import Registry
from .magnitude import check_sparsity


def agp_sparsity(step: int, initial: float, final: float, start_step: int, end_step: int, frequency: int = 1) -> float:
    """Zhu & Gupta's cubic target at ``step`` (held constant between pruning steps).

    ``initial`` and ``final`` are sparsities in [0, 1) with initial <= final (``check_sparsity``:
    1 would remove every weight); anything else is a ``ValueError`` naming the value."""
    initial = check_sparsity(initial, "initial sparsity")
    final = check_sparsity(final, "final sparsity")
    if initial > final:
        raise ValueError(f"initial sparsity {initial} exceeds final sparsity {final}")
    for name, value in (("step", step), ("start_step", start_step), ("end_step", end_step), ("frequency", frequency)):
        if isinstance(value, bool) or not hasattr(value, "__index__"):
            raise TypeError(f"{name} must be an integer, got {value!r}")
    if end_step <= start_step:
        raise ValueError(f"end_step ({end_step}) must come after start_step ({start_step})")
    if frequency < 1:
        raise ValueError(f"frequency must be at least 1 step, got {frequency}")
    if step < start_step:
        return 0.0
    if step >= end_step:  # also when (end - start) is not a multiple of dt: s_f is reached at the end
        return final
    last_prune = start_step + ((step - start_step) // frequency) * frequency
    progress = (last_prune - start_step) / (end_step - start_step)
    return final + (initial - final) * (1.0 - progress) ** 3


SCHEDULES: Registry = Registry("pruning schedule")


@SCHEDULES.register("agp")
@dataclass(frozen=True)
class AGPSchedule:
    """Gradual pruning from ``initial`` to ``final`` sparsity over [start_step, end_step], every ``frequency`` steps."""

    final: float
    start_step: int = 0
    end_step: int = 1000
    frequency: int = 100
    initial: float = 0.0

    def __post_init__(self) -> None:
        check_sparsity(self.final, "final sparsity")
        check_sparsity(self.initial, "initial sparsity")
        if self.initial > self.final:
            raise ValueError(f"initial sparsity {self.initial} exceeds final sparsity {self.final}")
        agp_sparsity(self.start_step, self.initial, self.final, self.start_step, self.end_step, self.frequency)

    def sparsity_at(self, step: int) -> float:
        return agp_sparsity(step, self.initial, self.final, self.start_step, self.end_step, self.frequency)

    def pruning_steps(self) -> list[int]:
        """t0, t0 + dt, ... up to the end, plus the end step itself (where s_f is reached)."""
        steps = list(range(self.start_step, self.end_step, self.frequency))
        return steps + [self.end_step] if self.sparsity_at(self.end_step) != self.sparsity_at(steps[-1]) else steps


@SCHEDULES.register("one-shot")
@dataclass(frozen=True)
class OneShotSchedule:
    """Prune to ``final`` sparsity once, at ``start_step``, then only fine-tune (Han et al. 2015's
    single prune-retrain cycle)."""

    final: float
    start_step: int = 0
    end_step: int | None = None  # accepted for a uniform config; unused
    frequency: int = 1  # unused
    initial: float = 0.0  # unused

    def __post_init__(self) -> None:
        check_sparsity(self.final, "final sparsity")

    def sparsity_at(self, step: int) -> float:
        return self.final if step >= self.start_step else 0.0

    def pruning_steps(self) -> list[int]:
        return [self.start_step]


def build_schedule(name: str, final: float, **options) -> AGPSchedule | OneShotSchedule:
    """A registered schedule by name, e.g. ``build_schedule("agp", 0.9, start_step=0, end_step=500, frequency=50)``."""
    try:
        return SCHEDULES.get(name)(final=final, **options)
    except TypeError as exc:
        raise ValueError(f"bad options for schedule {name!r}: {exc}") from None
