"""Yim et al. 2017's two-stage training as two engine configs.

Section 3.3: stage 1 trains the student to minimise the FSP loss against a fixed teacher (no
classification loss); stage 2 starts from the stage-1 weights and trains "the main task" with
cross-entropy. Section 4.1 ("fast optimisation") then compares this against the same student
trained from scratch. In engine terms:

    stage 1: method "none" (hook losses only), hooks += [{"name": "fsp", ...}], teacher = base's
    stage 2: method "ce", init_from = the stage-1 run folder, the fsp hook removed, no teacher

Both start from a ``base`` student config (dataset, model, model options, optimiser, teacher run).
The stage-1 run folder only exists once stage 1 has started, so stage 2 is built from it;
``TwoStageFSP`` starts stage 1 and, when it has finished, stage 2 (``poll()`` for a UI, ``wait()``
for a script).

The FSP loss sums squared differences of products of activations, so on the last sections it
can be 1e4-1e5 where cross-entropy is about 2: stage 1 usually needs a far lower learning rate
than stage 2 (``stage1_lr``); the engine reports a diverged stage 1 with that advice.
"""
from __future__ import annotations

import os
from dataclasses import replace
from typing import Any, Sequence

from ..engine import Job, JobManager, JobStatus, start
from ..engine.config import TrainConfig


def _as_config(base: TrainConfig | dict) -> TrainConfig:
    if isinstance(base, dict):
        return TrainConfig.from_dict(base)
    if not isinstance(base, TrainConfig):
        raise TypeError(f"base must be a TrainConfig or a dict, got {type(base).__name__}")
    return base


def _without_fsp(hooks: Sequence[dict]) -> list[dict]:
    return [dict(h) for h in hooks if h.get("name") != "fsp"]


def fsp_stage1_config(
    base: TrainConfig | dict,
    pairs: str | Sequence[Sequence[str]] = "auto",
    weights: Sequence[float] | None = None,
    max_steps: int | None = None,
    **overrides: Any,
) -> TrainConfig:
    """Stage 1: the FSP loss alone (method ``"none"``) against ``base.teacher``, which must be set."""
    base = _as_config(base)
    if not base.teacher:
        raise ValueError("FSP stage 1 needs a teacher: set teacher to a finished teacher run folder")
    spec: dict[str, Any] = {"name": "fsp", "pairs": pairs if isinstance(pairs, str) else [list(p) for p in pairs]}
    if weights is not None:
        spec["weights"] = [float(w) for w in weights]
    config = replace(
        base,
        method="none",
        hooks=[*_without_fsp(base.hooks), spec],
        max_steps=max_steps if max_steps is not None else base.max_steps,
        name=overrides.pop("name", f"{base.display_name()} fsp stage 1"),
        **overrides,
    )
    return config.validate()


def fsp_stage2_config(
    base: TrainConfig | dict,
    stage1_run: str | os.PathLike,
    max_steps: int | None = None,
    **overrides: Any,
) -> TrainConfig:
    """Stage 2: cross-entropy from the stage-1 weights (``init_from=stage1_run``), no FSP, no teacher."""
    base = _as_config(base)
    config = replace(
        base,
        method="ce",
        teacher=None,
        hooks=_without_fsp(base.hooks),
        init_from=os.fspath(stage1_run),
        max_steps=max_steps if max_steps is not None else base.max_steps,
        name=overrides.pop("name", f"{base.display_name()} fsp stage 2"),
        **overrides,
    )
    return config.validate()


def scratch_config(base: TrainConfig | dict, max_steps: int | None = None, **overrides: Any) -> TrainConfig:
    """The baseline of section 4.1: the same student with cross-entropy from a random start."""
    base = _as_config(base)
    config = replace(
        base, method="ce", teacher=None, hooks=_without_fsp(base.hooks), init_from=None,
        max_steps=max_steps if max_steps is not None else base.max_steps,
        name=overrides.pop("name", f"{base.display_name()} scratch"), **overrides,
    )
    return config.validate()


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


class TwoStageFSP:
    """Stage 1 starts at once; stage 2 starts, from stage 1's weights, once stage 1 has finished.

    ``poll()`` never blocks (a Streamlit rerun or a widget timer calls it); ``wait()`` blocks.
    """

    def __init__(
        self,
        base: TrainConfig | dict,
        pairs: str | Sequence[Sequence[str]] = "auto",
        weights: Sequence[float] | None = None,
        stage1_steps: int | None = None,
        stage2_steps: int | None = None,
        stage1_lr: float | None = None,
        manager: JobManager | None = None,
    ) -> None:
        self.base, self.manager, self.stage2_steps = _as_config(base), manager, stage2_steps
        lr = {} if stage1_lr is None else {"lr": float(stage1_lr)}
        self.stage1: Job = start(fsp_stage1_config(self.base, pairs, weights, stage1_steps, **lr), manager)
        self.stage2: Job | None = None

    def poll(self) -> Job | None:
        """Start stage 2 if stage 1 has just finished; the stage-2 job, or None while there is none.

        A stage 1 that ended any other way (stopped, diverged, failed) starts no stage 2."""
        if self.stage2 is None and self.stage1.done and self.stage1.status().state == "finished":
            self.stage2 = start(fsp_stage2_config(self.base, self.stage1.path, self.stage2_steps), self.manager)
        return self.stage2

    def wait(self, timeout: float | None = None) -> JobStatus:
        """Block until stage 2 ends (``timeout`` applies to each stage); its status."""
        first = self.stage1.wait(timeout)
        if first.state != "finished":
            raise RuntimeError(f"FSP stage 1 ended {first.state!r}: {first.message}")
        second = self.poll()
        assert second is not None
        return second.wait(timeout)
