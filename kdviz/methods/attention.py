"""The ``"attention"`` training hook and method: Zagoruyko & Komodakis, "Paying More Attention to
Attention: Improving the Performance of Convolutional Neural Networks via Attention Transfer"
(ICLR 2017), activation-based attention transfer (section 3.1, eq. 2).

Config entries (plain JSON, see ``kdviz.engine.hooks``)::

    {"name": "attention", "pairs": "auto", "beta": 2.0}
    {"name": "attention", "pairs": [["stage2_out", "stage2_out"], ["stage3_out", "stage3_out"]], "beta": 2.0}

The hook needs a teacher in the run config and asks the engine for named features
(``needs_features``). It adds ``{"attention": beta/2 * sum_j mean_b ||q_S^j - q_T^j||_2}`` to the
base loss (``kdviz.distill.attention``). The base loss is ``"ce"``: eq. 2 is the usual
cross-entropy L(W_S, x) plus the attention term, and the paper trains the two together from the
start (section 4.1); its "AT+KD" variant is the same hook on the ``"kd"`` base loss, which this
spec still claims. ``beta`` defaults to 2, so beta/2 = 1 and the term is the plain sum of the pairs'
distances between unit vectors (each in [0, sqrt 2]): about 3 at the start for a ResNet's four
auto pairs on digits, beside a cross-entropy of 2.3. On digits (ResNet-20 8-16-32 teacher, ResNet-8
4-8-16 students, 4 epochs, mean of 2 seeds) beta = 0.5, 2 and 8 ended at 91.3, 92.2 and 92.8% test
accuracy against 90.0% for scratch, and their probe distances fell 2.4x, 3.8x and 4.4x. The paper's beta = 1e3 is for the authors' code, which averages squared
differences over the H*W positions instead (the module docstring of ``kdviz.distill.attention``).

Snapshots hold, for a fixed probe batch of test images, each pair's loss and the normalised maps
Q/||Q||_2 (as H x W) of teacher and student on its first ``shown`` images, plus those images.
Probe forwards of the student use ``batch_statistics``, as the FSP hook's (``_features``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from ..distill.attention import at_loss, at_pair_losses, attention_vector, resolve_at_pairs
from ..engine.config import TrainConfig
from ..engine.evaluation import evaluating
from ..engine.hooks import HOOKS, StepBatch, TrainContext, TrainingHook, hook_options
from ..engine.setup import steps_per_epoch
from ..palette import OKABE_ITO
from ._features import batch_statistics, probe_images, probe_metrics, require_teacher, step_features
from .base import MethodSpec, PageSpec, register_method, uses_hook
from .scratch import SCRATCH

NAME = "attention"


def pair_label(pair: Sequence[str]) -> str:
    """``("stage2_out", "stage2_out")`` -> ``"stage2_out"``; ``("a", "b")`` -> ``"a->b"`` (metric names)."""
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}->{pair[1]}"


def _as_maps(vectors: torch.Tensor, feature: torch.Tensor) -> np.ndarray:
    """Rows of unit attention vectors (B, H*W) as (B, H, W) float32 maps."""
    return vectors.reshape(-1, *feature.shape[2:]).cpu().numpy().astype(np.float32)


@HOOKS.register(NAME)
class AttentionHook(TrainingHook):
    """Adds Zagoruyko & Komodakis's attention-transfer term (eq. 2) for chosen layer pairs."""

    needs_features = True

    def __init__(self, pairs: str | Sequence[Sequence[str]] = "auto", beta: float = 2.0, probe_size: int = 64,
                 shown: int = 4) -> None:
        if not (float(beta) >= 0.0 and float(beta) < float("inf")):
            raise ValueError(f"attention: beta must be finite and non-negative, got {beta}")
        if int(probe_size) < 1:
            raise ValueError(f"attention: probe_size must be at least 1, got {probe_size}")
        if not 1 <= int(shown) <= int(probe_size):
            raise ValueError(f"attention: shown (probe images kept in snapshots) must be 1 to probe_size "
                             f"({probe_size}), got {shown}")
        self.requested_pairs, self.beta = pairs, float(beta)
        self.probe_size, self.shown = int(probe_size), int(shown)
        self.pairs: list[tuple[str, str]] = []
        self._probe: torch.Tensor | None = None
        self._teacher_probe: list[torch.Tensor] = []

    def setup(self, ctx: TrainContext) -> None:
        """Resolve the pairs from one probe forward of each model; keep the teacher's probe maps."""
        teacher = require_teacher(ctx, NAME)
        self._probe = probe_images(ctx, self.probe_size)
        with evaluating(teacher), torch.no_grad():
            t_feats = teacher.forward_with_features(self._probe)[1]
        with batch_statistics(ctx.model):
            s_feats = ctx.model.forward_with_features(self._probe)[1]
        self.pairs = resolve_at_pairs(self.requested_pairs, s_feats, t_feats)
        self._teacher_probe = [t_feats[t] for _, t in self.pairs]
        at_pair_losses([s_feats[s] for s, _ in self.pairs], self._teacher_probe)  # a size mismatch fails now

    def _sides(self, student: dict, teacher: dict) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        return [student[s] for s, _ in self.pairs], [teacher[t] for _, t in self.pairs]

    def loss_terms(self, ctx: TrainContext, batch: StepBatch) -> dict[str, torch.Tensor]:
        students, teachers = self._sides(step_features(batch.features, "student", NAME),
                                         step_features(batch.teacher_features, "teacher", NAME))
        return {NAME: at_loss(students, teachers, self.beta)}

    def _student_probe(self, ctx: TrainContext) -> list[torch.Tensor]:
        if self._probe is None:
            raise RuntimeError("attention: setup(ctx) must run before metrics or snapshots")
        with batch_statistics(ctx.model):
            features = ctx.model.forward_with_features(self._probe)[1]
        return [features[s] for s, _ in self.pairs]

    def probe_losses(self, ctx: TrainContext) -> tuple[np.ndarray, float]:
        """Per-pair distances (without beta/2) and the attention term (with it) on the probe batch."""
        student = self._student_probe(ctx)
        per_pair = at_pair_losses(student, self._teacher_probe)
        return per_pair.cpu().numpy().astype(np.float64), float(self.beta / 2.0 * per_pair.sum())

    def metrics(self, ctx: TrainContext) -> dict[str, float]:
        return probe_metrics([pair_label(p) for p in self.pairs], *self.probe_losses(ctx))

    def snapshot(self, ctx: TrainContext) -> dict[str, np.ndarray]:
        student = self._student_probe(ctx)
        per_pair = at_pair_losses(student, self._teacher_probe)
        k = self.shown
        assert self._probe is not None
        out: dict[str, np.ndarray] = {
            "pairs": np.array([pair_label(p) for p in self.pairs]),
            "pair_loss": per_pair.cpu().numpy().astype(np.float32),
            "loss": np.asarray(self.beta / 2.0 * float(per_pair.sum()), dtype=np.float32),
            "images": self._probe[:k].mean(dim=1).cpu().numpy().astype(np.float32),
        }
        for j, (s, t) in enumerate(zip(student, self._teacher_probe)):
            out[f"teacher_{j}"] = _as_maps(attention_vector(t[:k]), t)
            out[f"student_{j}"] = _as_maps(attention_vector(s[:k]), s)
        return out


@dataclass(frozen=True)
class AttentionPair:
    """One layer pair in a snapshot: normalised attention maps (shown images x H x W) and the
    pair's probe-batch distance mean_b ||q_S - q_T||_2 (eq. 2 without beta/2)."""

    label: str
    teacher: np.ndarray
    student: np.ndarray
    loss: float


@dataclass(frozen=True)
class AttentionSnapshot:
    """What one snapshot of the ``attention`` hook holds: the probe images shown (k x H x W), each
    pair's maps and distance, and the attention term beta/2 * sum_j (eq. 2) on the probe batch."""

    images: np.ndarray
    pairs: list[AttentionPair]
    loss: float

    @property
    def labels(self) -> list[str]:
        return [p.label for p in self.pairs]

    def pair(self, label: str) -> AttentionPair:
        for p in self.pairs:
            if p.label == label:
                return p
        raise ValueError(f"no attention pair {label!r} in this snapshot (pairs: {self.labels})")


def read_attention_snapshot(arrays: Mapping[str, np.ndarray], label: str) -> AttentionSnapshot:
    """The typed reader of the ``attention`` hook's arrays stored under ``label`` (``""``: the hook's
    own ``snapshot()`` dict)."""
    pre = f"{label}/" if label else ""
    if f"{pre}pairs" not in arrays:
        raise ValueError(f"these snapshot arrays have no attention maps under {pre!r} "
                         f"(was the {NAME!r} hook in the run config?)")
    losses = np.asarray(arrays[f"{pre}pair_loss"], dtype=np.float64)
    pairs = [AttentionPair(str(name), np.asarray(arrays[f"{pre}teacher_{j}"]), np.asarray(arrays[f"{pre}student_{j}"]),
                           float(losses[j]))
             for j, name in enumerate(np.asarray(arrays[f"{pre}pairs"]).tolist())]
    return AttentionSnapshot(np.asarray(arrays[f"{pre}images"]), pairs, float(arrays[f"{pre}loss"]))


def _beta(config: Any) -> float:
    entries = [h for h in (getattr(config, "hooks", None) or []) if h.get("name") == NAME]
    default = hook_options(AttentionHook)["beta"].default
    return float(entries[0].get("beta", default)) if entries else float(default)


def attention_configs(base: TrainConfig, beta: float = 2.0, pairs: str | Sequence[Sequence[str]] = "auto",
                      evals_per_epoch: int = 4) -> dict[str, TrainConfig]:
    """An AT student beside a scratch student, validated, by job name (the specs' labels).

    ``base`` is the student's config with ``teacher`` set; both runs share its model, seed, data and
    batches, and evaluate and snapshot about ``evals_per_epoch`` times per epoch. The AT student adds
    the ``attention`` hook to cross-entropy (eq. 2); the scratch student drops the teacher."""
    if base.teacher is None:
        raise ValueError("attention transfer needs a teacher: set 'teacher' in the base config")
    if int(evals_per_epoch) < 1:
        raise ValueError(f"evals_per_epoch must be at least 1, got {evals_per_epoch}")
    every = max(1, steps_per_epoch(base) // int(evals_per_epoch))
    hook = {"name": NAME, "pairs": pairs if isinstance(pairs, str) else [list(p) for p in pairs], "beta": float(beta)}
    student = replace(base, method=ATTENTION.loss, hooks=[*base.hooks, hook], name="at-student",
                      eval_every=every, snapshot_every=every)
    scratch = replace(base, method=SCRATCH.loss, teacher=None, hooks=[], name="at-scratch-student",
                      eval_every=every, snapshot_every=every)
    return {ATTENTION.label: student.validate(), SCRATCH.label: scratch.validate()}


ATTENTION = register_method(MethodSpec(
    name=NAME, label="AT student", colour=OKABE_ITO["black"],
    summary="attention transfer: match the teacher's normalised spatial attention maps sum_c |A_c|^2 "
            "(Zagoruyko & Komodakis 2017, eq. 2)",
    hook=AttentionHook, loss="ce", claims=uses_hook(NAME), priority=40,
    label_run=lambda config: f"AT β={_beta(config):g}", reader=read_attention_snapshot,
    pages=(PageSpec(NAME, "Attention transfer", ":material/visibility:", order=70),),
    widgets={"AttentionMonitor": NAME},
))
