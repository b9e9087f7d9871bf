"""Training hooks for feature distillation: ``"fsp"`` (Yim et al. 2017) and ``"hints"`` (FitNets).

Config entries (plain JSON, see ``kdviz.engine.hooks``)::

    {"name": "fsp", "pairs": "auto", "weights": null, "probe_size": 64}
    {"name": "fsp", "pairs": [["stage1_in", "stage1_out"], ["stage3_in", "stage3_out"]], "weights": [1, 0.5]}
    {"name": "hints", "student_layer": "stage2_out", "teacher_layer": "stage2_out", "weight": 1.0}

Both need a teacher in the run config and ask the engine for named features (``needs_features``).
The FSP hook adds ``{"fsp": L_FSP}`` (eq. 2) to the loss; run it with method ``"none"`` for the
paper's stage 1 (see ``fsp_stages``). Its snapshots hold, per pair, the teacher's, the student's
and the difference (teacher - student) FSP matrices averaged over a fixed probe batch of test
images, and each pair's loss on that batch; the engine stores them under ``"fsp/<key>"`` and
``fsp_snapshot_pairs`` reads them back.

Probe forwards of the student use ``batch_statistics``: BatchNorm normalises with the probe
batch's own statistics, as in the training step the FSP loss is optimised in, and its running
statistics are left untouched. In stage 1 the weights move fast and the running averages lag far
behind (we measured the eval-mode probe loss up 670x at step 20 while the training loss fell on
digits), so eval-mode matrices would show a lag artefact rather than the flow being learned.
The teacher is fixed and always runs in eval mode, in training and in probes alike.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..engine.evaluation import evaluating
from ..engine.hooks import HOOKS, StepBatch, TrainContext, TrainingHook
from .fsp import fsp_loss, fsp_matrix, fsp_pair_losses, resolve_pairs
from .hints import HintRegressor, hint_loss


@contextlib.contextmanager
def batch_statistics(model: nn.Module) -> Iterator[nn.Module]:
    """No autograd, eval mode (no dropout), but BatchNorm layers use the batch's own statistics
    as in training; their running statistics and the model's train/eval mode are restored."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [{k: b.clone() for k, b in m.named_buffers(recurse=False)} for m in norms]
    was_training = model.training
    model.eval()
    for m in norms:
        m.train()
    try:
        with torch.no_grad():
            yield model
    finally:
        for m, buffers in zip(norms, saved):
            for k, b in buffers.items():
                getattr(m, k).copy_(b)
        model.train(was_training)


def _probe_images(ctx: TrainContext, size: int) -> torch.Tensor:
    """The first ``size`` test images: a fixed batch, so snapshots are comparable over time."""
    return torch.as_tensor(ctx.dataset.test_images[:size], dtype=torch.float32, device=ctx.device)


def _require_teacher(ctx: TrainContext, hook: str) -> nn.Module:
    if ctx.teacher is None:
        raise ValueError(f"the {hook!r} hook needs a teacher: set 'teacher' in the run config")
    return ctx.teacher


def _features(batch_features: dict | None, who: str, hook: str) -> dict[str, torch.Tensor]:
    if batch_features is None:
        raise ValueError(f"the {hook!r} hook got no {who} features; the engine must honour needs_features")
    return batch_features


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
        teacher = _require_teacher(ctx, "fsp")
        self.pairs = resolve_pairs(self.requested_pairs, ctx.model.feature_names, teacher.feature_names)
        if self.weights is not None and len(self.weights) != len(self.pairs):
            raise ValueError(f"fsp: {len(self.weights)} weights for {len(self.pairs)} pairs {self.pairs}")
        self._probe = _probe_images(ctx, self.probe_size)
        with evaluating(teacher):
            self._teacher_probe = self.matrices(teacher.forward_with_features(self._probe)[1])
        self.probe_losses(ctx)  # fails now, with fsp_loss's advice, if a pair's shapes differ

    def matrices(self, features: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """One (B, C1, C2) FSP matrix per configured pair."""
        return [fsp_matrix(features[a], features[b]) for a, b in self.pairs]

    def loss_terms(self, ctx: TrainContext, batch: StepBatch) -> dict[str, torch.Tensor]:
        student = self.matrices(_features(batch.features, "student", "fsp"))
        with torch.no_grad():
            teacher = self.matrices(_features(batch.teacher_features, "teacher", "fsp"))
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
        per_pair, total = self.probe_losses(ctx)
        out = {"probe_loss": total}
        out.update({f"probe_loss/{pair_label(p)}": float(v) for p, v in zip(self.pairs, per_pair)})
        return out

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


def fsp_snapshot_pairs(arrays: dict[str, np.ndarray], label: str = "fsp") -> list[dict]:
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
        teacher = _require_teacher(ctx, "hints")
        for who, model, layer in (("student", ctx.model, self.student_layer), ("teacher", teacher, self.teacher_layer)):
            if layer not in model.feature_names:
                raise ValueError(f"hints: the {who} has no feature {layer!r} (it has {list(model.feature_names)})")
        self._probe = _probe_images(ctx, self.probe_size)
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
        student = _features(batch.features, "student", "hints")
        teacher = _features(batch.teacher_features, "teacher", "hints")
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
