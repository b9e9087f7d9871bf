"""The ``"fsp"`` training hook and method: Yim, Joo, Bae, Kim, "A Gift from Knowledge Distillation:
Fast Optimization, Network Minimization and Transfer Learning" (CVPR 2017).

Config entries (plain JSON, see ``kdviz.engine.hooks``)::

    {"name": "fsp", "pairs": "auto", "weights": null, "probe_size": 64}
    {"name": "fsp", "pairs": [["stage1_in", "stage1_out"], ["stage3_in", "stage3_out"]], "weights": [1, 0.5]}

The hook needs a teacher in the run config and asks the engine for named features (``needs_features``).
It adds ``{"fsp": L_FSP}`` (eq. 2) to the loss; run it with base loss ``"none"`` for the
paper's stage 1 (see ``two_stage``). Its snapshots hold, per pair, the teacher's, the student's
and the difference (teacher - student) FSP matrices averaged over a fixed probe batch of test
images, and each pair's loss on that batch; the engine stores them under ``"fsp/<key>"`` and
``read_fsp_snapshot`` (the spec's typed reader) reads them back.

Probe forwards of the student use ``batch_statistics``: BatchNorm normalises with the probe
batch's own statistics, as in the training step the FSP loss is optimised in, and its running
statistics are left untouched. In stage 1 the weights move fast and the running averages lag far
behind (we measured the eval-mode probe loss up 670x at step 20 while the training loss fell on
digits), so eval-mode matrices would show a lag artefact rather than the flow being learned.
The teacher is fixed and always runs in eval mode, in training and in probes alike.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from ..distill.fsp import fsp_loss, fsp_matrix, fsp_pair_losses, resolve_pairs
from ..engine.evaluation import evaluating
from ..engine.hooks import HOOKS, StepBatch, TrainContext, TrainingHook
from ..palette import ROLE_COLORS
from ._features import batch_statistics, probe_images, probe_metrics, require_teacher, step_features
from .base import MethodSpec, PageSpec, register_method, uses_hook
from .two_stage import PAIRS, Stage1Method, fsp_stage1_from_choice


def pair_label(pair: Sequence[str]) -> str:
    """``("stage1_in", "stage1_out")`` -> ``"stage1_in->stage1_out"``, the name used in metrics."""
    return f"{pair[0]}->{pair[1]}"


@HOOKS.register("fsp")
class FSPHook(TrainingHook):
    """Adds Yim et al.'s FSP loss between chosen section pairs of the student and the teacher."""

    needs_features = True

    def __init__(self, pairs: str | Sequence[Sequence[str]] = "auto", weights: Sequence[float] | None = None,
                 probe_size: int = 64) -> None:
        if int(probe_size) < 1:
            raise ValueError(f"fsp: probe_size must be at least 1, got {probe_size}")
        self.requested_pairs = pairs
        self.weights = None if weights is None else [float(w) for w in weights]
        self.probe_size = int(probe_size)
        self.pairs: list[tuple[str, str]] = []
        self._probe: torch.Tensor | None = None
        self._teacher_probe: list[torch.Tensor] = []

    def setup(self, ctx: TrainContext) -> None:
        teacher = require_teacher(ctx, "fsp")
        self.pairs = resolve_pairs(self.requested_pairs, ctx.model.feature_names, teacher.feature_names)
        if self.weights is not None and len(self.weights) != len(self.pairs):
            raise ValueError(f"fsp: {len(self.weights)} weights for {len(self.pairs)} pairs {self.pairs}")
        self._probe = probe_images(ctx, self.probe_size)
        with evaluating(teacher):
            self._teacher_probe = self.matrices(teacher.forward_with_features(self._probe)[1])
        self.probe_losses(ctx)  # fails now, with fsp_loss's advice, if a pair's shapes differ

    def matrices(self, features: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """One (B, C1, C2) FSP matrix per configured pair."""
        return [fsp_matrix(features[a], features[b]) for a, b in self.pairs]

    def loss_terms(self, ctx: TrainContext, batch: StepBatch) -> dict[str, torch.Tensor]:
        student = self.matrices(step_features(batch.features, "student", "fsp"))
        with torch.no_grad():
            teacher = self.matrices(step_features(batch.teacher_features, "teacher", "fsp"))
        return {"fsp": fsp_loss(student, teacher, self.weights)}

    def _student_probe(self, ctx: TrainContext) -> list[torch.Tensor]:
        if self._probe is None:
            raise RuntimeError("fsp: setup(ctx) must run before metrics or snapshots")
        with batch_statistics(ctx.model):
            return self.matrices(ctx.model.forward_with_features(self._probe)[1])

    def probe_losses(self, ctx: TrainContext) -> tuple[np.ndarray, float]:
        """Per-pair losses (unweighted) and the weighted total on the probe batch."""
        student = self._student_probe(ctx)
        per_pair = fsp_pair_losses(student, self._teacher_probe)
        total = fsp_loss(student, self._teacher_probe, self.weights)
        return per_pair.cpu().numpy().astype(np.float64), float(total)

    def metrics(self, ctx: TrainContext) -> dict[str, float]:
        return probe_metrics([pair_label(p) for p in self.pairs], *self.probe_losses(ctx))

    def snapshot(self, ctx: TrainContext) -> dict[str, np.ndarray]:
        student = self._student_probe(ctx)
        per_pair = fsp_pair_losses(student, self._teacher_probe)
        out: dict[str, np.ndarray] = {
            "pairs": np.array([pair_label(p) for p in self.pairs]),
            "pair_loss": per_pair.cpu().numpy().astype(np.float32),
            "loss": np.asarray(float(fsp_loss(student, self._teacher_probe, self.weights)), dtype=np.float32),
        }
        for k, (gs, gt) in enumerate(zip(student, self._teacher_probe)):
            s, t = gs.mean(0).cpu().numpy(), gt.mean(0).cpu().numpy()
            out[f"teacher_{k}"] = t.astype(np.float32)
            out[f"student_{k}"] = s.astype(np.float32)
            out[f"difference_{k}"] = (t - s).astype(np.float32)
        return out


def fsp_snapshot_pairs(arrays: Mapping[str, np.ndarray], label: str = "fsp") -> list[dict]:
    """Unpack FSP snapshot arrays: one dict per pair with ``label`` (``"in->out"``), ``teacher``,
    ``student``, ``difference`` (C1 x C2 probe-batch means) and ``loss``.

    ``arrays`` are an engine snapshot's arrays, where the hook's keys sit under ``"<label>/"``
    (``label`` is the hook's name, numbered if a config repeats it), or with ``label=""`` the
    hook's own ``snapshot()`` dict.
    """
    pre = f"{label}/" if label else ""
    if f"{pre}pairs" not in arrays:
        raise ValueError(f"these snapshot arrays have no FSP matrices under {pre!r} (was the 'fsp' hook in the run config?)")
    losses = np.asarray(arrays[f"{pre}pair_loss"])
    return [
        {
            "label": str(name),
            "teacher": np.asarray(arrays[f"{pre}teacher_{k}"]),
            "student": np.asarray(arrays[f"{pre}student_{k}"]),
            "difference": np.asarray(arrays[f"{pre}difference_{k}"]),
            "loss": float(losses[k]),
        }
        for k, name in enumerate(np.asarray(arrays[f"{pre}pairs"]).tolist())
    ]


@dataclass(frozen=True)
class FSPSnapshot:
    """What one snapshot of the ``fsp`` hook holds: per pair (``"in->out"``) the probe-batch mean
    FSP matrices of teacher and student (eq. 1), their difference, and the pair's loss (eq. 2)."""

    pairs: list[dict]

    @property
    def labels(self) -> list[str]:
        return [p["label"] for p in self.pairs]

    def pair(self, label: str) -> dict:
        for p in self.pairs:
            if p["label"] == label:
                return p
        raise ValueError(f"no FSP pair {label!r} in this snapshot (pairs: {self.labels})")


def read_fsp_snapshot(arrays: Mapping[str, np.ndarray], label: str) -> FSPSnapshot:
    """The typed reader of the ``fsp`` hook's snapshot arrays stored under ``label``."""
    return FSPSnapshot(fsp_snapshot_pairs(arrays, label))


FSP = register_method(MethodSpec(
    name="fsp", label="FSP stage 1", colour=ROLE_COLORS["fsp student"],
    summary="FSP matrices: match the flow of solution procedure between sections (Yim et al. 2017, eq. 1-2)",
    hook=FSPHook, loss="none", claims=uses_hook("fsp"), priority=40,
    label_run=lambda config: "FSP stage 1", reader=read_fsp_snapshot,
    pages=(PageSpec("fsp", "FSP matrices", ":material/grid_on:", order=60),),
    widgets={"FSPMonitor": "fsp"},
    # Stage 1 optimises sums of squared products of activations (1e4-1e5 at the start on digits):
    # SGD at lr 1e-2 diverged there, 1e-4 fell steadily (see two_stage).
    stage1=Stage1Method(short="FSP", title="FSP matrices (Yim et al. 2017)", probe_metric="probe_loss",
                        default_lr=1e-4, inputs=PAIRS, build=fsp_stage1_from_choice),
))
