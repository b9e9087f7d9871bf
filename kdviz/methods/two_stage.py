"""Yim et al. 2017's two-stage training as two engine configs.

Section 3.3: stage 1 trains the student to minimise the FSP loss against a fixed teacher (no
classification loss); stage 2 starts from the stage-1 weights and trains "the main task" with
cross-entropy. Section 4.1 ("fast optimisation") then compares this against the same student
trained from scratch. In engine terms:

    stage 1: method "none" (hook losses only), hooks += [{"name": "fsp", ...}], teacher = base's
    stage 2: method "ce", init_from = the stage-1 run folder, the fsp hook removed, no teacher

Both start from a ``base`` student config (dataset, model, model options, optimiser, teacher run).
The stage-1 run folder only exists once stage 1 has started, so stage 2 is built from it;
``TwoStageFSP`` (an ``Experiment``) starts stage 1 and, when it has finished, stage 2 (``poll()``
for a UI, ``wait()`` for a script).

With ``max_steps`` (``stage1_steps``, ``stage2_steps``), a stage's ``epochs`` become the epochs
that cover exactly that many steps: a stage never stops short because the base config has fewer
epochs than it asks for.

FitNets hints (Romero et al. 2015, section 2.2: the student up to its guided layer trained on the
hint loss alone) can replace the FSP loss in stage 1 (``hints_stage1_config``).

A method that can be stage 1 says so on its spec (``MethodSpec.stage1``, a ``Stage1Method``: its
short name, the metric its hook logs on the probe batch, the wording of its loss chart, its default
learning rate, which inputs it needs and how to build its config from a ``Stage1Choice``). The UIs
list ``stage1_methods()`` and tell the runs apart with ``role_of`` (from ``method_of``), so a new
stage-1 method shows up in both without a change there.

The FSP loss sums squared differences of products of activations, so on the last sections it
can be 1e4-1e5 where cross-entropy is about 2: stage 1 usually needs a far lower learning rate
than stage 2 (``stage1_lr``); the engine reports a diverged stage 1 with that advice.
"""
from __future__ import annotations

import os
from dataclasses import replace
from typing import Any, Sequence

from ..engine import Job, JobManager, JobStatus
from ..engine.config import TrainConfig
from ..engine.experiment import Experiment
from ..engine.setup import steps_per_epoch
from .base import MethodSpec, all_methods, get_method, method_of
from .stage1 import LAYERS, PAIRS, Stage1Choice, Stage1Method  # noqa: F401  (re-exported)


# The runs of the recipe (``role_of``).
STAGE1, STAGE2, SCRATCH = "stage 1", "stage 2", "scratch"
ROLES = (STAGE1, STAGE2, SCRATCH)


def _as_config(base: TrainConfig | dict) -> TrainConfig:
    if isinstance(base, dict):
        return TrainConfig.from_dict(base)
    if not isinstance(base, TrainConfig):
        raise TypeError(f"base must be a TrainConfig or a dict, got {type(base).__name__}")
    return base


def _without_fsp(hooks: Sequence[dict]) -> list[dict]:
    """``hooks`` without any stage-1 method's hook (fsp, hints, or another ``stage1_methods()``)."""
    stage1 = {spec.name for spec in stage1_methods()}
    return [dict(h) for h in hooks if h.get("name") not in stage1]


def _length(base: TrainConfig, max_steps: int | None) -> dict[str, Any]:
    """``max_steps`` and the epochs that cover it (the base's epochs when no step count is given)."""
    if max_steps is None:
        return {"max_steps": base.max_steps}
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"a stage's max_steps must be a positive whole number of steps, got {max_steps!r}")
    return {"max_steps": max_steps, "epochs": -(-max_steps // steps_per_epoch(base))}


def fsp_stage1_config(
    base: TrainConfig | dict,
    pairs: str | Sequence[Sequence[str]] = "auto",
    weights: Sequence[float] | None = None,
    max_steps: int | None = None,
    **overrides: Any,
) -> TrainConfig:
    """Stage 1: the FSP loss alone (method ``"none"``) against ``base.teacher``, which must be set."""
    spec: dict[str, Any] = {"name": "fsp", "pairs": pairs if isinstance(pairs, str) else [list(p) for p in pairs]}
    if weights is not None:
        spec["weights"] = [float(w) for w in weights]
    return _stage1(base, spec, "fsp", max_steps, overrides)


def _derived(base: TrainConfig, suffix: str, max_steps: int | None, overrides: dict, **fields: Any) -> TrainConfig:
    """``base`` with ``fields``, the length of ``max_steps`` and ``overrides``, named "<base> <suffix>"."""
    name = overrides.pop("name", f"{base.display_name()} {suffix}")
    return replace(base, **fields, **{**_length(base, max_steps), **overrides}, name=name).validate()


def _stage1(base: TrainConfig | dict, hook: dict, what: str, max_steps: int | None, overrides: dict) -> TrainConfig:
    """Method ``"none"`` with ``hook`` as the only loss (any earlier fsp/hints hook removed)."""
    base = _as_config(base)
    if not base.teacher:
        label = "FSP" if what == "fsp" else what
        raise ValueError(f"{label} stage 1 needs a teacher: set teacher to a finished teacher run folder")
    return _derived(base, f"{what} stage 1", max_steps, overrides, method="none", hooks=[*_without_fsp(base.hooks), hook])


def hints_stage1_config(
    base: TrainConfig | dict,
    student_layer: str,
    teacher_layer: str,
    max_steps: int | None = None,
    **overrides: Any,
) -> TrainConfig:
    """Stage 1 with FitNets hints instead of FSP (Romero et al. 2015, eq. 3): the hint loss alone
    (method ``"none"``) between the student's guided layer, through a learned regressor, and the
    teacher's hint layer. ``base.teacher`` must be set."""
    hint = {"name": "hints", "student_layer": str(student_layer), "teacher_layer": str(teacher_layer)}
    return _stage1(base, hint, "hints", max_steps, overrides)


def fsp_stage2_config(
    base: TrainConfig | dict,
    stage1_run: str | os.PathLike,
    max_steps: int | None = None,
    **overrides: Any,
) -> TrainConfig:
    """Stage 2: cross-entropy from the stage-1 weights (``init_from=stage1_run``), no FSP, no teacher."""
    base = _as_config(base)
    return _derived(base, "fsp stage 2", max_steps, overrides, method="ce", teacher=None,
                    hooks=_without_fsp(base.hooks), init_from=os.fspath(stage1_run))


def scratch_config(base: TrainConfig | dict, max_steps: int | None = None, **overrides: Any) -> TrainConfig:
    """The baseline of section 4.1: the same student with cross-entropy from a random start."""
    base = _as_config(base)
    return _derived(base, "scratch", max_steps, overrides, method="ce", teacher=None,
                    hooks=_without_fsp(base.hooks), init_from=None)


def two_stage_configs(
    base: TrainConfig | dict,
    stage1_run: str | os.PathLike,
    pairs: str | Sequence[Sequence[str]] = "auto",
    weights: Sequence[float] | None = None,
    stage1_steps: int | None = None,
    stage2_steps: int | None = None,
) -> tuple[TrainConfig, TrainConfig]:
    """(stage-1 config, stage-2 config) for a stage-1 run that will live (or lives) at ``stage1_run``."""
    return (
        fsp_stage1_config(base, pairs=pairs, weights=weights, max_steps=stage1_steps),
        fsp_stage2_config(base, stage1_run, max_steps=stage2_steps),
    )


class TwoStageFSP(Experiment):
    """Stage 1 starts at once; stage 2 starts, from stage 1's weights, once stage 1 has finished.

    An ``Experiment`` with the jobs "stage 1" and "stage 2" (add a scratch student with
    ``start("scratch", scratch_config(base))``). Stage 1 is ``fsp_stage1_config(base, pairs,
    weights, stage1_steps)`` (at ``stage1_lr``), or a ready config given as ``stage1`` (for example
    ``hints_stage1_config``). ``poll()`` never blocks and starts exactly one stage 2, from any
    number of threads; ``wait()`` blocks until both stages (and any other job) have ended.
    """

    TITLE = "two-stage training (Yim et al. 2017, section 3.3)"

    def __init__(
        self,
        base: TrainConfig | dict,
        pairs: str | Sequence[Sequence[str]] = "auto",
        weights: Sequence[float] | None = None,
        stage1_steps: int | None = None,
        stage2_steps: int | None = None,
        stage1_lr: float | None = None,
        manager: JobManager | None = None,
        stage1: TrainConfig | None = None,
    ) -> None:
        super().__init__(manager, title=self.TITLE)
        self.base, self.stage2_steps = _as_config(base), stage2_steps
        if stage1 is None:
            lr = {} if stage1_lr is None else {"lr": float(stage1_lr)}
            stage1 = fsp_stage1_config(self.base, pairs, weights, stage1_steps, **lr)
        elif not isinstance(stage1, TrainConfig) or stage1.method != "none":
            raise ValueError("stage1 must be a stage-1 TrainConfig (method 'none' with the fsp or hints hook), "
                             "as fsp_stage1_config or hints_stage1_config make")
        self.start(STAGE1, stage1)
        self.then(STAGE2, STAGE1, lambda jobs: fsp_stage2_config(self.base, jobs[STAGE1].path, self.stage2_steps))

    @property
    def stage1(self) -> Job:
        return self.jobs[STAGE1]

    @property
    def stage2(self) -> Job | None:
        """The stage-2 job once it has started (call ``poll()`` to start it when its turn comes)."""
        return self.jobs.get(STAGE2)

    def wait_stage2(self, timeout: float | None = None) -> JobStatus:
        """Block until stage 2 ends (``timeout`` applies to each stage); its status."""
        first = self.stage1.wait(timeout)
        if first.state != "finished":
            raise RuntimeError(f"FSP stage 1 ended {first.state!r}: {first.message}")
        self.poll()
        assert self.stage2 is not None
        return self.stage2.wait(timeout)


def fsp_stage1_from_choice(base: TrainConfig, choice: Stage1Choice) -> TrainConfig:
    """``fsp_stage1_config`` for a UI's ``choice`` (its pairs, or "auto" when none is given)."""
    pairs = [list(p) for p in choice.pairs] if choice.pairs else "auto"
    return fsp_stage1_config(base, pairs=pairs, max_steps=int(choice.steps), lr=float(choice.lr))


def hints_stage1_from_choice(base: TrainConfig, choice: Stage1Choice) -> TrainConfig:
    """``hints_stage1_config`` for a UI's ``choice`` (its guided and hint layers)."""
    return hints_stage1_config(base, *choice.layers, max_steps=int(choice.steps), lr=float(choice.lr))


def stage1_methods() -> list[MethodSpec]:
    """The specs that can be stage 1 (a ``stage1`` field), in registration order."""
    return [spec for spec in all_methods() if spec.stage1 is not None]


def stage1_method_of(config: Any) -> MethodSpec | None:
    """The stage-1 method of a stage-1 config, else None: the highest-priority stage-1 spec that
    claims it (its hook is in the config) and whose base loss it uses ("none"). Another method's
    hook beside it (a prune hook, which ``method_of`` would rank first) does not hide it."""
    claiming = [spec for spec in stage1_methods()
                if spec.claims(config) and getattr(config, "method", None) == spec.loss]
    return max(claiming, key=lambda spec: spec.priority) if claiming else None


def role_of(config: Any) -> str:
    """Which run of the recipe a config is, from its method (``method_of``): ``STAGE1`` (a stage-1
    method), ``STAGE2`` (the fine-tuned student) or ``SCRATCH``; a ``ValueError`` otherwise."""
    if stage1_method_of(config) is not None:
        return STAGE1
    method = method_of(config)
    for role, name in ((STAGE2, "fine_tune"), (SCRATCH, "scratch")):
        if method is get_method(name):
            return role
    hooks = ", ".join(spec.name for spec in stage1_methods())
    raise ValueError(f"run {getattr(config, 'name', '?')!r} ({method.label}, base loss {getattr(config, 'method', '?')!r}) "
                     f"is not a stage 1 (base loss 'none' with one of the hooks {hooks}), a stage 2 (cross-entropy "
                     "from init_from) or a scratch run (cross-entropy from a random start)")


def probe_loss_key(method: MethodSpec, config: Any) -> str:
    """The metric key of ``method``'s probe-batch loss in a run with ``config`` ("fsp/probe_loss")."""
    if method.stage1 is None:
        raise ValueError(f"method {method.name!r} is not a stage-1 method")
    labels = method.hook_labels(config)
    if not labels:
        raise ValueError(f"this run has no {method.name!r} hook in its config")
    return f"{labels[0]}/{method.stage1.probe_metric}"


def latest_reading(snapshots: Sequence[Any], method: MethodSpec, config: Any) -> tuple[Any, Any] | None:
    """(snapshot, typed reading) of the latest snapshot that holds ``method``'s arrays, or None
    (no reader, or no such snapshot yet)."""
    if method.reader is None:
        return None
    for snap in reversed(list(snapshots)):
        try:
            return snap, method.read_snapshot(snap.arrays, config)
        except ValueError:
            continue
    return None
