"""The ``"hints"`` training hook and method: FitNets (Romero, Ballas, Kahou, Chassang, Gatta, Bengio,
"FitNets: Hints for Thin Deep Nets", ICLR 2015), eq. 3: ``L_HT = 1/2 ||u_h(x) - r(v_g(x))||^2``
between the teacher's hint layer and the student's guided layer through a learned regressor ``r``.

Config entry: ``{"name": "hints", "student_layer": "stage2_out", "teacher_layer": "stage2_out",
"weight": 1.0}``; run it with base loss ``"none"`` as stage 1 of a two-stage student
(``two_stage.hints_stage1_config``), the FitNets alternative to FSP stage 1.
"""
from __future__ import annotations

import torch
from torch import nn

from ..distill.hints import HintRegressor, hint_loss
from ..engine.evaluation import evaluating
from ..engine.hooks import HOOKS, StepBatch, TrainContext, TrainingHook
from ..palette import ROLE_COLORS
from ._features import batch_statistics, probe_images, require_teacher, step_features
from .base import MethodSpec, register_method, uses_hook
from .two_stage import LAYERS, Stage1Method, hints_stage1_from_choice


@HOOKS.register("hints")
class HintsHook(TrainingHook):
    """FitNets (Romero et al. 2015, eq. 3): ``weight * L_HT`` through a learned regressor."""

    needs_features = True

    def __init__(self, student_layer: str, teacher_layer: str, weight: float = 1.0, activation: str = "relu",
                 probe_size: int = 64) -> None:
        if not float(weight) >= 0.0:
            raise ValueError(f"hints: weight must be non-negative, got {weight}")
        self.student_layer, self.teacher_layer = str(student_layer), str(teacher_layer)
        self.weight, self.activation, self.probe_size = float(weight), activation, int(probe_size)
        self.regressor: HintRegressor | None = None
        self._pending_state: dict[str, torch.Tensor] | None = None
        self._probe: torch.Tensor | None = None

    def setup(self, ctx: TrainContext) -> None:
        """Check the layer names and build the regressor from the two layers' feature shapes."""
        teacher = require_teacher(ctx, "hints")
        for who, model, layer in (("student", ctx.model, self.student_layer), ("teacher", teacher, self.teacher_layer)):
            if layer not in model.feature_names:
                raise ValueError(f"hints: the {who} has no feature {layer!r} (it has {list(model.feature_names)})")
        self._probe = probe_images(ctx, self.probe_size)
        with evaluating(ctx.model), evaluating(teacher):
            v = ctx.model.forward_with_features(self._probe[:1])[1][self.student_layer]
            u = teacher.forward_with_features(self._probe[:1])[1][self.teacher_layer]
        self.regressor = HintRegressor(tuple(v.shape[1:]), tuple(u.shape[1:]), self.activation).to(ctx.device)
        if self._pending_state is not None:
            self.regressor.load_state_dict(self._pending_state)
            self._pending_state = None

    def extra_parameters(self) -> list[nn.Parameter]:
        if self.regressor is None:
            raise RuntimeError("hints: setup(ctx) must run before extra_parameters() (the regressor's shape "
                               "depends on the models)")
        return list(self.regressor.parameters())

    def _loss(self, student_features: dict, teacher_features: dict) -> torch.Tensor:
        assert self.regressor is not None
        return hint_loss(teacher_features[self.teacher_layer], self.regressor(student_features[self.student_layer]))

    def loss_terms(self, ctx: TrainContext, batch: StepBatch) -> dict[str, torch.Tensor]:
        if self.regressor is None:
            raise RuntimeError("hints: setup(ctx) must run before training")
        student = step_features(batch.features, "student", "hints")
        teacher = step_features(batch.teacher_features, "teacher", "hints")
        return {"hints": self.weight * self._loss(student, teacher)}

    def metrics(self, ctx: TrainContext) -> dict[str, float]:
        if self.regressor is None or self._probe is None:
            return {}
        assert ctx.teacher is not None
        with batch_statistics(ctx.model), evaluating(ctx.teacher), evaluating(self.regressor):
            s = ctx.model.forward_with_features(self._probe)[1]
            t = ctx.teacher.forward_with_features(self._probe)[1]
            return {"probe_loss": float(self._loss(s, t))}

    def state_dict(self) -> dict[str, torch.Tensor]:
        if self.regressor is None:
            return {}
        return {k: v.detach().cpu() for k, v in self.regressor.state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if not state:
            return
        if self.regressor is None:  # restored before setup: apply once the regressor exists
            self._pending_state = dict(state)
        else:
            self.regressor.load_state_dict(state)


HINTS = register_method(MethodSpec(
    name="hints", label="FitNets stage 1", colour=ROLE_COLORS["fsp student"],
    summary="FitNets hints: regress the teacher's hint layer from the student's guided layer (Romero et al. 2015, eq. 3)",
    hook=HintsHook, loss="none", claims=uses_hook("hints"), priority=40,
    label_run=lambda config: "FitNets stage 1",
    stage1=Stage1Method(
        short="FitNets", title="FitNets hints (Romero et al. 2015)", probe_metric="probe_loss", default_lr=1e-3,
        inputs=LAYERS, build=hints_stage1_from_choice,
        loss_caption="the student's guided layer, through the regressor, is closing in on the teacher's hint layer",
        loss_axis="hint loss ½‖u − r(v)‖² (log scale)",
        note="FitNets regress the student's guided layer onto the teacher's hint layer through a learned 1x1 conv "
             "(eq. 3), so the channel counts may differ. There are no FSP matrices to draw.",
    ),
))
