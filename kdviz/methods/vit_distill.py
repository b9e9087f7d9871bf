"""The ``"vit_distill"`` training hook and method: TinyBERT's layer-wise distillation of a vision
transformer (Jiao et al. 2020, eqs. 7-11; ``kdviz.distill.transformer``) from a ViT teacher into a
smaller ViT student (``kdviz.models.vit``, the same patch grid).

Config entry (plain JSON, see ``kdviz.engine.hooks``)::

    {"name": "vit_distill", "prediction_weight": 1.0, "hidden_weight": 1.0, "attention_weight": 1.0,
     "embedding_weight": 0.0, "T": 1.0, "layer_mapping": "uniform", "attention_kind": "probs",
     "head_matching": "group_mean"}

Each of the four losses is weighted (eq. 11's lambda) and switched off by a weight of 0 (then not
computed); the hook adds ``{"prediction", "hidden", "attention", "embedding"}`` (the enabled ones,
weighted) to the run's base loss, so the engine logs each at every step. The base loss is ``"ce"``
(the labels; TinyBERT's own students see only the teacher, which ``method="none"`` reproduces).
TinyBERT trains the intermediate layers first and the prediction layer after; we train all four
together, one run, so the losses can be watched falling side by side.

``attention_kind`` defaults to ``"probs"``, not TinyBERT's unnormalised ``"scores"``: on digits (one
seed, all training images, 20 epochs) the student distilled on probabilities ended at 94.4 %, on
scores at 91.3 %, alone at 94.2 % (``kdviz.present.vit_story``); the probabilities are the maps the
page draws (so the loss plotted is the distance between the pictures shown) and are bounded, while
scores grow with the logits' scale and d_k. ``"scores"`` is eq. 7 to the letter.

On MNIST (``bench/vit_distill.py``: teacher 98.21 %, students on 3,000 labelled images for 15 epochs)
the student distilled with the attention, hidden-state and prediction losses (T = 4) beat the same
student alone on 3 of 3 seeds, 87.60 % against 85.82 % on average.

The learned projections W_h and W_e (eqs. 8-9, d_S -> d_T) are built in ``setup``, join the run's
optimizer (``extra_parameters``) and travel in the hook's checkpoint state; a checkpoint without
them is refused rather than resumed with fresh projections.

Metrics at each evaluation (a probe batch of the first ``probe_size`` test images, eval mode): the
four losses unweighted, ``probe/<loss>``, whether trained on or not. Snapshots (``ViTDistillSnapshot``)
hold, for the probe digit (test image ``probe_index``), every layer's attention probabilities of
teacher and student per head, the attention rollout of both (Abnar & Zuidema 2020) and the layer pairs.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from ..distill import transformer as tb
from ..distill.soft_targets import check_temperature
from ..engine.config import TrainConfig
from ..engine.evaluation import evaluating
from ..engine.hooks import HOOKS, StepBatch, TrainContext, TrainingHook, hook_options
from ..palette import ROLE_COLORS
from ._features import probe_images, require_teacher, step_features
from .base import MethodSpec, PageSpec, register_method, uses_hook
from .scratch import SCRATCH

NAME = "vit_distill"
LOSSES = ("prediction", "hidden", "attention", "embedding")
ATTENTION_LOSS = "attention"  # the loss the maps show (eq. 7); UIs read it from here
LOSS_LABELS = {"prediction": "prediction (eq. 10)", "hidden": "hidden states (eq. 8)",
               "attention": "attention (eq. 7)", "embedding": "embedding (eq. 9)"}
PROJ_PREFIX = "projections/"


def _weight(value: Any, name: str) -> float:
    weight = float(value)
    if not (0.0 <= weight < float("inf")):
        raise ValueError(f"vit_distill: {name} must be finite and non-negative, got {value!r}")
    return weight


def _vit(model: Any, who: str) -> Any:
    if not hasattr(model, "attention_from_hidden"):
        raise ValueError(f"vit_distill needs a vision transformer (model 'vit') as the {who}, got "
                         f"{type(model).__name__}")
    return model


@HOOKS.register(NAME)
class ViTDistillHook(TrainingHook):
    """Adds TinyBERT's prediction, hidden-state, attention and embedding losses (eqs. 7-10)."""

    needs_features = True

    def __init__(self, prediction_weight: float = 1.0, hidden_weight: float = 1.0, attention_weight: float = 1.0,
                 embedding_weight: float = 0.0, T: float = 1.0, layer_mapping: str | Sequence[Any] = "uniform",
                 attention_kind: str = "probs", head_matching: str = "group_mean", probe_index: int = 0,
                 probe_size: int = 64) -> None:
        self.weights = {name: _weight(value, f"{name}_weight") for name, value in zip(
            LOSSES, (prediction_weight, hidden_weight, attention_weight, embedding_weight))}
        try:
            self.T = check_temperature(T)
        except ValueError as exc:
            raise ValueError(f"vit_distill: {exc}") from None
        if attention_kind not in tb.ATTENTION_KINDS:
            raise ValueError(f"vit_distill: attention_kind must be one of {tb.ATTENTION_KINDS}, got {attention_kind!r}")
        if head_matching not in tb.HEAD_MATCHINGS:
            raise ValueError(f"vit_distill: head_matching must be one of {tb.HEAD_MATCHINGS}, got {head_matching!r}")
        if isinstance(layer_mapping, str) and layer_mapping not in tb.LAYER_MAPPINGS:
            raise ValueError(f"vit_distill: layer_mapping must be one of {tb.LAYER_MAPPINGS} or a list, "
                             f"got {layer_mapping!r}")
        if int(probe_size) < 1 or not 0 <= int(probe_index):
            raise ValueError(f"vit_distill: probe_size must be >= 1 and probe_index >= 0, got {probe_size}, {probe_index}")
        self.layer_mapping, self.attention_kind, self.head_matching = layer_mapping, attention_kind, head_matching
        self.probe_index, self.probe_size = int(probe_index), int(probe_size)
        self.pairs: list[tuple[int, int]] = []
        self.projections: tb.Projections | None = None
        self._pending: dict[str, torch.Tensor] | None = None
        self._probe: torch.Tensor | None = None

    @property
    def enabled(self) -> list[str]:
        return [name for name in LOSSES if self.weights[name] > 0]

    def setup(self, ctx: TrainContext) -> None:
        """Check both models are ViTs on one patch grid, resolve the layer pairs, build W_h and W_e."""
        teacher = _vit(require_teacher(ctx, NAME), "teacher")
        student = _vit(ctx.model, "student")
        self.pairs = tb.layer_pairs(len(student.blocks), len(teacher.blocks), self.layer_mapping)
        if student.grid != teacher.grid:
            raise ValueError(f"vit_distill: student and teacher must cut the image into the same patch grid, got "
                             f"{student.grid} and {teacher.grid} (set the same 'patch' in both model options)")
        self.projections = tb.Projections(student.dim, teacher.dim).to(ctx.device)
        if self._pending is not None:
            self._load(self._pending)
        n = len(ctx.dataset.test_labels)
        if self.probe_index >= n:
            raise ValueError(f"vit_distill: probe_index {self.probe_index} is past the {n} test images")
        self._probe = probe_images(ctx, max(self.probe_size, self.probe_index + 1))
        self.losses(ctx, self._probe, None)  # a mismatch of heads or shapes fails now, before training

    def extra_parameters(self) -> list[torch.nn.Parameter]:
        return list(self._require().parameters())

    def _require(self) -> tb.Projections:
        if self.projections is None:
            raise RuntimeError("vit_distill: setup(ctx) must run before training")
        return self.projections

    def _parts(self, student: Any, teacher: Any, s_feats: Mapping, t_feats: Mapping, s_logits: torch.Tensor,
               t_logits: torch.Tensor, which: Sequence[str]) -> dict[str, torch.Tensor]:
        """The unweighted losses named in ``which`` from both models' features and logits."""
        proj = self._require()
        s_hidden = [s_feats[n] for n in student.feature_names]
        t_hidden = [t_feats[n] for n in teacher.feature_names]
        out: dict[str, torch.Tensor] = {}
        if "prediction" in which:
            out["prediction"] = tb.prediction_loss(s_logits, t_logits.detach(), self.T)
        if "hidden" in which:
            out["hidden"] = tb.hidden_pair_losses(s_hidden, t_hidden, self.pairs, proj.hidden).sum()
        if "attention" in which:
            s_att = student.attention_from_hidden(s_hidden, self.attention_kind)
            with torch.no_grad():
                t_att = teacher.attention_from_hidden(t_hidden, self.attention_kind)
            out["attention"] = tb.attention_pair_losses(s_att, t_att, self.pairs, self.head_matching).sum()
        if "embedding" in which:
            out["embedding"] = tb.embedding_loss(s_hidden[0], t_hidden[0], proj.embedding)
        return out

    def loss_terms(self, ctx: TrainContext, batch: StepBatch) -> dict[str, torch.Tensor]:
        s_feats = step_features(batch.features, "student", NAME)
        t_feats = step_features(batch.teacher_features, "teacher", NAME)
        if batch.teacher_logits is None:
            raise ValueError("vit_distill got no teacher logits; the run needs a teacher")
        parts = self._parts(ctx.model, ctx.teacher, s_feats, t_feats, batch.logits, batch.teacher_logits, self.enabled)
        return {name: self.weights[name] * value for name, value in parts.items()}

    def losses(self, ctx: TrainContext, images: torch.Tensor, which: Sequence[str] | None = None) -> dict[str, float]:
        """All four losses, unweighted, on ``images`` (both models in eval mode, no autograd)."""
        with evaluating(ctx.model), evaluating(ctx.teacher), torch.no_grad():
            s_logits, s_feats = ctx.model.forward_with_features(images)
            t_logits, t_feats = ctx.teacher.forward_with_features(images)
            parts = self._parts(ctx.model, ctx.teacher, s_feats, t_feats, s_logits, t_logits, which or LOSSES)
        return {name: float(value) for name, value in parts.items()}

    def metrics(self, ctx: TrainContext) -> dict[str, float]:
        assert self._probe is not None
        return {f"probe/{name}": value for name, value in self.losses(ctx, self._probe[: self.probe_size]).items()}

    def snapshot(self, ctx: TrainContext) -> dict[str, np.ndarray]:
        """The probe digit's attention probabilities of every layer, both models, and their rollouts."""
        assert self._probe is not None
        image = self._probe[self.probe_index: self.probe_index + 1]
        out: dict[str, np.ndarray] = {"image": image[0].mean(dim=0).cpu().numpy().astype(np.float32),
                                      "grid": np.asarray(ctx.model.grid, dtype=np.int64),
                                      "pairs": np.asarray(self.pairs, dtype=np.int64).reshape(-1, 2)}
        for who, model in (("student", ctx.model), ("teacher", ctx.teacher)):
            with evaluating(model), torch.no_grad():
                attentions = model.forward_detailed(image).attentions
            out[f"{who}_layers"] = np.asarray(len(attentions), dtype=np.int64)
            for layer, probs in enumerate(attentions):
                out[f"{who}_{layer}"] = probs[0].cpu().numpy().astype(np.float32)
            out[f"{who}_rollout"] = tb.attention_rollout(attentions)[0].cpu().numpy().astype(np.float32)
        for name, value in self.losses(ctx, self._probe[: self.probe_size]).items():
            out[f"loss_{name}"] = np.asarray(value, dtype=np.float32)
        return out

    # ---- checkpoints: the projections W_h, W_e ----------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        if self.projections is None:
            return {}
        return {PROJ_PREFIX + k: v.detach().cpu() for k, v in self.projections.state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Called only when resuming: the checkpoint must hold the projections."""
        found = {k[len(PROJ_PREFIX):]: v for k, v in (state or {}).items() if k.startswith(PROJ_PREFIX)}
        if not found:
            raise ValueError("vit_distill: the checkpoint holds no projections W_h, W_e, so resuming would pair the "
                             "trained student with fresh ones; the run was not resumed (start a new run instead)")
        if self.projections is None:
            self._pending = found
        else:
            self._load(found)

    def _load(self, state: dict[str, torch.Tensor]) -> None:
        try:
            self._require().load_state_dict(state)
        except RuntimeError as exc:
            raise ValueError(f"vit_distill: the checkpoint's projections do not fit these models: "
                             f"{' '.join(str(exc).split())[:200]}") from None
        self._pending = None


@dataclass(frozen=True)
class ViTDistillSnapshot:
    """One snapshot of the ``vit_distill`` hook: the probe digit (H x W), the patch grid (rows, cols),
    per layer the attention probabilities of teacher and student (heads x N x N, N = 1 + patches),
    the rollouts (N x N), the layer pairs (student, teacher; 1-based) and the four probe losses."""

    image: np.ndarray
    grid: tuple[int, int]
    teacher: list[np.ndarray]
    student: list[np.ndarray]
    teacher_rollout: np.ndarray
    student_rollout: np.ndarray
    pairs: list[tuple[int, int]]
    losses: dict[str, float]


def read_vit_distill_snapshot(arrays: Mapping[str, np.ndarray], label: str) -> ViTDistillSnapshot:
    """The typed reader of the ``vit_distill`` hook's arrays stored under ``label`` (``""``: its own dict)."""
    pre = f"{label}/" if label else ""
    if f"{pre}student_rollout" not in arrays:
        raise ValueError(f"these snapshot arrays have no transformer attention maps under {pre!r} "
                         f"(was the {NAME!r} hook in the run config?)")
    layers = {who: [np.asarray(arrays[f"{pre}{who}_{i}"]) for i in range(int(arrays[f"{pre}{who}_layers"]))]
              for who in ("teacher", "student")}
    grid = tuple(int(v) for v in np.asarray(arrays[f"{pre}grid"]).tolist())
    pairs = [(int(s), int(t)) for s, t in np.asarray(arrays[f"{pre}pairs"]).reshape(-1, 2).tolist()]
    losses = {name: float(arrays[f"{pre}loss_{name}"]) for name in LOSSES if f"{pre}loss_{name}" in arrays}
    return ViTDistillSnapshot(np.asarray(arrays[f"{pre}image"]), (grid[0], grid[1]), layers["teacher"], layers["student"],
                              np.asarray(arrays[f"{pre}teacher_rollout"]), np.asarray(arrays[f"{pre}student_rollout"]),
                              pairs, losses)


def vit_distill_options(config: Any) -> dict[str, Any]:
    """The hook's options in a run config, defaults filled in (the first use of the hook)."""
    values = {name: option.default for name, option in hook_options(ViTDistillHook).items()}
    entries = [h for h in (getattr(config, "hooks", None) or []) if h.get("name") == NAME]
    if entries:
        values.update({k: v for k, v in entries[0].items() if k != "name"})
    return values


def loss_keys(config: Any) -> dict[str, str]:
    """``{loss: step-record key}`` of the losses a run with ``config`` trains on (``"vit_distill/attention"``)."""
    options = vit_distill_options(config)
    return {name: VIT_DISTILL.metric_key(config, name) for name in LOSSES if float(options[f"{name}_weight"]) > 0}


def vit_distill_configs(student: TrainConfig, teacher: str, **options: Any) -> dict[str, TrainConfig]:
    """A distilled ViT student beside the same student trained alone, validated, by job name (the
    specs' labels). ``student``: the student's config (``present.vit_configs.student_config``);
    ``teacher``: a finished ViT teacher's run folder; ``options``: the hook's options."""
    hook = {"name": NAME, **options}
    distilled = replace(student, method="ce", teacher=str(teacher), hooks=[*student.hooks, hook],
                        name=f"{student.name or 'vit-student'}-distilled")
    alone = replace(student, method=SCRATCH.loss, teacher=None, hooks=list(student.hooks),
                    name=f"{student.name or 'vit-student'}-alone")
    return {VIT_DISTILL.label: distilled.validate(), SCRATCH.label: alone.validate()}


def _label(config: Any) -> str:
    options = vit_distill_options(config)
    short = {"prediction": "pred", "hidden": "hidn", "attention": "attn", "embedding": "embd"}  # TinyBERT's subscripts
    on = [short[name] for name in LOSSES if float(options[f"{name}_weight"]) > 0]
    return f"TinyBERT ({'+'.join(on) or 'no loss'})"


VIT_DISTILL = register_method(MethodSpec(
    name=NAME, label="TinyBERT student", colour=ROLE_COLORS["transformer student"],
    summary="layer-wise transformer distillation: attention-matrix, hidden-state (through W_h), embedding and "
            "prediction losses (TinyBERT, Jiao et al. 2020, eqs. 7-11)",
    hook=ViTDistillHook, loss="ce", claims=uses_hook(NAME), priority=40,
    label_run=_label, reader=read_vit_distill_snapshot,
    pages=(PageSpec("transformers", "Transformers", ":material/view_module:", order=80, section="Distillation"),),
    widgets={"ViTDistillMonitor": "vit"},
))
