"""The ``"rkd"`` training hook and method: Park, Kim, Lu, Cho, "Relational Knowledge Distillation"
(CVPR 2019), distance-wise and angle-wise potentials (eqs. 3-6) on the embedding before the classifier.

Config entries (plain JSON, see ``kdviz.engine.hooks``)::

    {"name": "rkd", "distance_weight": 25.0, "angle_weight": 50.0}
    {"name": "rkd", "feature": ["fc1", "fc2"], "distance_weight": 25.0, "angle_weight": 0.0}

The hook needs a teacher and asks the engine for named features (``needs_features``). It adds
``{"distance": lambda_D * L_RKD-D, "angle": lambda_A * L_RKD-A}`` (``kdviz.distill.rkd``) to the base
loss ``"ce"`` (the paper trains "RKD + cross-entropy" on its classification tasks, section 4.2); the
engine logs them per step as ``rkd/distance`` and ``rkd/angle``. A zero weight leaves its term out
(neither computed nor logged); both zero is rejected. The default weights are the paper's (section 4).
On digits (MLP 256-256 teacher at 94.9%, MLP 32 students, 20 epochs, lr 0.1, seeds 0-2) with 200
labelled images, scratch ended at 88.7/89.6/88.9% test accuracy and RKD at 25/50 at 91.8/91.8/92.4%
(5/10: 90.0/92.0/90.9; distance only, 25: 89.3/92.7/90.2; angle only, 50: 91.3/92.2/92.9), with the
probe matrices' correlation r near 0.97. With all 1,347 images scratch (95.8/96.0/96.4%) passed this
teacher, and RKD (95.3/95.1/96.0%, r 0.99) copied the weaker teacher's geometry closely and stayed below.

``feature``: ``"auto"`` takes each model's last named feature, which in every kdviz model is the
input of the classifier (an MLP's last hidden layer, the CNN's ``fc1``, the ResNet's ``pool``), so an
MLP teacher and a narrower MLP student (or a CNN teacher and an MLP student) pair up: RKD compares
only distances and angles, never the embeddings themselves. A name picks that feature in both
models; ``[student_name, teacher_name]`` picks one in each. A training batch of fewer than 2 (3)
samples has no pair (triplet): its distance (angle) term is 0.

Each evaluation measures, on a fixed probe batch of the first ``probe_size`` test images, the
unweighted L_RKD-D and L_RKD-A, their weighted sum and the Pearson correlation between the
teacher's and the student's normalised distance matrices psi_D (``distance_corr``). Snapshots hold
both psi_D matrices with the probe images sorted by class, and their labels.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..distill.rkd import (
    distance_matrix_correlation, distance_potentials, rkd_angle_loss, rkd_distance_loss,
)
from ..engine.evaluation import evaluating
from ..engine.hooks import HOOKS, StepBatch, TrainContext, TrainingHook, hook_options
from ..palette import ROLE_COLORS
from ._features import batch_statistics, probe_images, require_teacher, step_features
from .base import MethodSpec, register_method, uses_hook

NAME = "rkd"
MAX_PROBE = 512  # the angle potentials of a probe batch of N images are N^3 numbers
MAX_ANGLE_BATCH = 512  # the same bound for a training batch when the angle term is on


def _check_weight(value: float, name: str) -> float:
    value = float(value)
    if not (0.0 <= value < float("inf")):
        raise ValueError(f"rkd: {name} must be finite and non-negative, got {value}")
    return value


def _check_feature(feature: str | Sequence[str]) -> str | tuple[str, str]:
    if isinstance(feature, str):
        if not feature:
            raise ValueError("rkd: feature must be 'auto', a feature name, or [student_feature, teacher_feature]")
        return feature
    if len(feature) != 2 or not all(isinstance(n, str) and n for n in feature):
        raise ValueError(f"rkd: feature must be 'auto', a feature name, or [student_feature, teacher_feature], "
                         f"got {list(feature)!r}")
    return str(feature[0]), str(feature[1])


def resolve_feature(requested: str | tuple[str, str], student: Mapping[str, torch.Tensor],
                    teacher: Mapping[str, torch.Tensor]) -> tuple[str, str]:
    """(student feature, teacher feature): ``"auto"`` -> each model's last feature (the classifier's
    input in kdviz's models); a name or a pair is checked against both models' features."""
    if requested == "auto":
        if not student or not teacher:
            raise ValueError(f"rkd: the student ({list(student)}) or the teacher ({list(teacher)}) names no feature; "
                             "RKD needs the embedding before the classifier")
        return list(student)[-1], list(teacher)[-1]
    pair = (requested, requested) if isinstance(requested, str) else requested
    for who, name, features in (("student", pair[0], student), ("teacher", pair[1], teacher)):
        if name not in features:
            raise ValueError(f"rkd: the {who} has no feature {name!r} (it has {list(features)})")
    return pair


@HOOKS.register(NAME)
class RKDHook(TrainingHook):
    """Adds Park et al.'s distance-wise and angle-wise RKD terms (eqs. 4 and 6) on the embedding."""

    needs_features = True

    def __init__(self, distance_weight: float = 25.0, angle_weight: float = 50.0,
                 feature: str | Sequence[str] = "auto", probe_size: int = 64) -> None:
        self.distance_weight = _check_weight(distance_weight, "distance_weight")
        self.angle_weight = _check_weight(angle_weight, "angle_weight")
        if self.distance_weight == 0.0 and self.angle_weight == 0.0:
            raise ValueError("rkd: distance_weight and angle_weight are both 0, so the hook would add nothing; "
                             "give at least one a positive weight (the paper: 25 and 50) or train without it")
        self.requested_feature = _check_feature(feature)
        if not 3 <= int(probe_size) <= MAX_PROBE:
            raise ValueError(f"rkd: probe_size must be 3 to {MAX_PROBE} test images (an angle needs 3 samples, "
                             f"and the angles of N images are N^3 numbers), got {probe_size}")
        self.probe_size = int(probe_size)
        self.features: tuple[str, str] = ("", "")
        self._probe: torch.Tensor | None = None
        self._order: torch.Tensor | None = None
        self._teacher_probe: torch.Tensor | None = None
        self._labels = np.zeros(0, dtype=np.int64)

    def setup(self, ctx: TrainContext) -> None:
        """Pick the features from one probe forward of each model; keep the teacher's probe embedding."""
        teacher = require_teacher(ctx, NAME)
        batch_size = getattr(ctx.config, "batch_size", 0) or 0
        if self.angle_weight > 0 and batch_size > MAX_ANGLE_BATCH:
            raise ValueError(f"rkd: the angle term compares every triplet of a batch (N^3 numbers); batch_size "
                             f"{batch_size} is over {MAX_ANGLE_BATCH}: use a smaller batch or angle_weight 0")
        self._probe = probe_images(ctx, self.probe_size)
        if self._probe.shape[0] < 3:
            raise ValueError(f"rkd: the probe batch needs at least 3 test images, the dataset has {self._probe.shape[0]}")
        labels = torch.as_tensor(ctx.dataset.test_labels[: self._probe.shape[0]]).cpu()
        self._order = torch.argsort(labels, stable=True).to(self._probe.device)
        self._labels = labels[self._order.cpu()].numpy().astype(np.int64)
        with evaluating(teacher), torch.no_grad():
            t_feats = teacher.forward_with_features(self._probe)[1]
        with batch_statistics(ctx.model):
            s_feats = ctx.model.forward_with_features(self._probe)[1]
        self.features = resolve_feature(self.requested_feature, s_feats, t_feats)
        self._teacher_probe = t_feats[self.features[1]].flatten(1)

    def loss_terms(self, ctx: TrainContext, batch: StepBatch) -> dict[str, torch.Tensor]:
        student = step_features(batch.features, "student", NAME)[self.features[0]]
        teacher = step_features(batch.teacher_features, "teacher", NAME)[self.features[1]]
        n, terms = student.shape[0], {}
        if self.distance_weight > 0:
            terms["distance"] = (self.distance_weight * rkd_distance_loss(student, teacher) if n >= 2
                                 else student.new_zeros(()))
        if self.angle_weight > 0:
            terms["angle"] = self.angle_weight * rkd_angle_loss(student, teacher) if n >= 3 else student.new_zeros(())
        return terms

    def _student_probe(self, ctx: TrainContext) -> torch.Tensor:
        if self._probe is None:
            raise RuntimeError("rkd: setup(ctx) must run before metrics or snapshots")
        with batch_statistics(ctx.model):
            return ctx.model.forward_with_features(self._probe)[1][self.features[0]].flatten(1)

    def metrics(self, ctx: TrainContext) -> dict[str, float]:
        """On the probe batch: L_RKD-D, L_RKD-A (unweighted), the weighted sum, and the correlation
        of the two psi_D matrices (0 while the student's is constant, e.g. all embeddings equal)."""
        student, teacher = self._student_probe(ctx), self._teacher_probe
        assert teacher is not None
        with torch.no_grad():
            distance, angle = float(rkd_distance_loss(student, teacher)), float(rkd_angle_loss(student, teacher))
            corr = distance_matrix_correlation(distance_potentials(teacher).cpu().numpy(),
                                               distance_potentials(student).cpu().numpy())
        return {"probe_distance": distance, "probe_angle": angle,
                "probe_loss": self.distance_weight * distance + self.angle_weight * angle,
                "distance_corr": corr if math.isfinite(corr) else 0.0}  # a constant matrix: no correlation

    def snapshot(self, ctx: TrainContext) -> dict[str, np.ndarray]:
        student, teacher, order = self._student_probe(ctx), self._teacher_probe, self._order
        assert teacher is not None and order is not None
        with torch.no_grad():
            return {
                "teacher_distances": distance_potentials(teacher[order]).cpu().numpy().astype(np.float32),
                "student_distances": distance_potentials(student[order]).cpu().numpy().astype(np.float32),
                "labels": self._labels.copy(),
                "features": np.array(list(self.features)),
                "distance_loss": np.asarray(float(rkd_distance_loss(student, teacher)), dtype=np.float32),
                "angle_loss": np.asarray(float(rkd_angle_loss(student, teacher)), dtype=np.float32),
            }


@dataclass(frozen=True)
class RKDSnapshot:
    """One snapshot of the ``rkd`` hook: the teacher's and the student's normalised pairwise-distance
    matrices psi_D (eq. 3) on the probe batch, rows and columns sorted by class (``labels``), the
    features compared, and the unweighted L_RKD-D and L_RKD-A (eqs. 4, 6) on that batch."""

    teacher: np.ndarray
    student: np.ndarray
    labels: np.ndarray
    student_feature: str
    teacher_feature: str
    distance_loss: float
    angle_loss: float

    @property
    def correlation(self) -> float:
        """Pearson's correlation of the two matrices over the pairs i < j (1: the same geometry)."""
        return distance_matrix_correlation(self.teacher, self.student)


def read_rkd_snapshot(arrays: Mapping[str, np.ndarray], label: str) -> RKDSnapshot:
    """The typed reader of the ``rkd`` hook's arrays stored under ``label`` (``""``: the hook's own
    ``snapshot()`` dict)."""
    pre = f"{label}/" if label else ""
    if f"{pre}teacher_distances" not in arrays:
        raise ValueError(f"these snapshot arrays have no RKD distance matrices under {pre!r} "
                         f"(was the {NAME!r} hook in the run config?)")
    features = [str(f) for f in np.asarray(arrays[f"{pre}features"]).tolist()]
    return RKDSnapshot(np.asarray(arrays[f"{pre}teacher_distances"]), np.asarray(arrays[f"{pre}student_distances"]),
                       np.asarray(arrays[f"{pre}labels"]), features[0], features[1],
                       float(arrays[f"{pre}distance_loss"]), float(arrays[f"{pre}angle_loss"]))


def rkd_weights(config: Any) -> tuple[float, float]:
    """(distance_weight, angle_weight) of the first ``rkd`` hook in a run's config (defaults if absent)."""
    entries = [h for h in (getattr(config, "hooks", None) or []) if h.get("name") == NAME]
    options = hook_options(RKDHook)
    entry = entries[0] if entries else {}
    return (float(entry.get("distance_weight", options["distance_weight"].default)),
            float(entry.get("angle_weight", options["angle_weight"].default)))


def rkd_hook_entry(distance_weight: float, angle_weight: float) -> dict[str, Any]:
    """The config entry of the hook with these weights (for presenters building configs)."""
    return {"name": NAME, "distance_weight": float(distance_weight), "angle_weight": float(angle_weight)}


def _label_run(config: Any) -> str:
    w_d, w_a = rkd_weights(config)
    return f"RKD D={w_d:g} A={w_a:g}"


RKD = register_method(MethodSpec(
    name=NAME, label="RKD student", colour=ROLE_COLORS["relational"],
    # is otherwise only the quantization methods', which never train beside a distillation family
    summary="relational KD: match the teacher's normalised pairwise distances and triplet angles of the "
            "embedding, with Huber losses (Park et al. 2019, eqs. 3-6)",
    hook=RKDHook, loss="ce", claims=uses_hook(NAME), priority=40,
    label_run=_label_run, reader=read_rkd_snapshot,
    widgets={"RKDMonitor": NAME},
))
