"""The ``"dml"`` training hook and method: deep mutual learning, Zhang, Xiang, Hospedales, Lu,
"Deep Mutual Learning" (CVPR 2018), eqs. 1-4 (``kdviz.distill.mutual``).

Config entry (plain JSON, see ``kdviz.engine.hooks``)::

    {"name": "dml", "weight": 1.0, "T": 1.0}
    {"name": "dml", "peer_model": "mlp", "peer_model_options": {"hidden": [64]}, "peer_seed": 7}

The engine trains one model per run; this hook owns the second student (the *peer*). It builds it in
``setup`` with ``kdviz.models.build_model`` (default: the run's own model and options; initialised
from ``peer_seed``, default the run's seed + 1, so the two students start apart), returns its
parameters from ``extra_parameters()`` (the run's optimizer, learning-rate schedule and weight decay
train both) and adds to the run's base loss ``"ce"`` (the student's L_C1, eq. 1)::

    {"kl": weight T^2 KL(p_peer || p_student), "peer_ce": L_C2, "peer_kl": weight T^2 KL(p_student || p_peer)}

each KL with the other side detached, so the sum is eq. 3 for the student plus eq. 4 for the peer.
No teacher is needed (a run with one ignores it). At each evaluation the hook logs the peer's test
accuracy and loss on the same test set as the run's own evaluation (``peer_test_acc``,
``peer_test_loss``), the two students' agreement on it (``agreement``: share of test images with the
same predicted class), and on a fixed probe batch (the first ``probe_size`` test images, eval mode)
the unweighted ``probe_kl`` (T^2 KL(p_peer || p_student)) and ``probe_peer_kl`` (the reverse).
Snapshots hold the same per probe image (``DMLSnapshot``). Checkpoints save the peer's weights
(``state_dict``) and the optimizer its moments, so a stopped run resumes with the same peer; a
checkpoint without them is refused rather than resumed beside a fresh peer.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from ..distill.mutual import check_weight, mutual_kl_per_sample, mutual_terms
from ..distill.soft_targets import check_temperature
from ..engine.config import TrainConfig
from ..engine.evaluation import accuracy_and_loss, agreement, evaluating, predict_logits
from ..engine.hooks import HOOKS, StepBatch, TrainContext, TrainingHook, hook_options
from ..models import INIT_LOCK, MODELS, build_model
from ..models.dropout import reseed_dropout
from ..palette import OKABE_ITO
from ._features import probe_images
from .base import MethodSpec, register_method, uses_hook

NAME = "dml"
PEER_PREFIX = "peer/"
# The curves of the live charts, by series name, and the metric each is read from.
SERIES_METRICS = {"peer_acc": "peer_test_acc", "agreement": "agreement", "kl": "probe_kl", "peer_kl": "probe_peer_kl"}


def _whole(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"dml: {name} must be a whole number >= {low}, got {value!r}")
    return value


@HOOKS.register(NAME)
class DMLHook(TrainingHook):
    """Trains a peer network beside the run's model, each distilling from the other (eqs. 3-4)."""

    def __init__(self, weight: float = 1.0, T: float = 1.0, peer_model: str | None = None,
                 peer_model_options: Mapping[str, Any] | None = None, peer_seed: int | None = None,
                 probe_size: int = 64) -> None:
        try:
            self.weight, self.T = check_weight(weight), check_temperature(T)
        except ValueError as exc:
            raise ValueError(f"dml: {exc}") from None
        if peer_model is not None:
            if not isinstance(peer_model, str) or peer_model not in MODELS.names():
                raise ValueError(f"dml: peer_model {peer_model!r} is not a model (known: {', '.join(MODELS.names())})")
        if peer_model_options is not None and (not isinstance(peer_model_options, Mapping)
                                               or not all(isinstance(k, str) for k in peer_model_options)):
            raise ValueError(f"dml: peer_model_options must be a dict of option names to values, "
                             f"got {peer_model_options!r}")
        self.peer_model = peer_model
        self.peer_model_options = None if peer_model_options is None else dict(peer_model_options)
        self.peer_seed = None if peer_seed is None else _whole(peer_seed, "peer_seed", 0)
        self.probe_size = _whole(probe_size, "probe_size (test images measured at each evaluation)", 1)
        self.peer: nn.Module | None = None
        self.seed = 0
        self._pending_state: dict[str, torch.Tensor] | None = None
        self._probe: torch.Tensor | None = None
        self._probe_labels: torch.Tensor | None = None

    def peer_architecture(self, config: Any) -> tuple[str, dict[str, Any]]:
        """(model name, options) of the peer for a run with ``config``: the run's own by default."""
        if self.peer_model is None:
            options = dict(config.model_options) if self.peer_model_options is None else self.peer_model_options
            return config.model, options
        return self.peer_model, dict(self.peer_model_options or {})

    def setup(self, ctx: TrainContext) -> None:
        """Build the peer from its own seed (the global generator is left as it was), then the probe."""
        name, options = self.peer_architecture(ctx.config)
        self.seed = int(ctx.config.seed) + 1 if self.peer_seed is None else self.peer_seed
        try:
            with INIT_LOCK, torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                peer = build_model(name, input_shape=ctx.dataset.input_shape, num_classes=ctx.dataset.num_classes,
                                   **options)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"dml: cannot build the peer model {name!r} with options {options}: {exc}") from None
        self.peer = peer.to(ctx.device).train()
        if self._pending_state is not None:
            self._load_peer(self._pending_state)
            self._pending_state = None
        self._probe = probe_images(ctx, self.probe_size)
        self._probe_labels = torch.as_tensor(ctx.dataset.test_labels[: len(self._probe)], dtype=torch.long,
                                             device=ctx.device)

    def _require_peer(self) -> nn.Module:
        if self.peer is None:
            raise RuntimeError("dml: setup(ctx) must run first (it builds the peer network)")
        return self.peer

    def extra_parameters(self) -> list[nn.Parameter]:
        return [p for p in self._require_peer().parameters() if p.requires_grad]

    def loss_terms(self, ctx: TrainContext, batch: StepBatch) -> dict[str, torch.Tensor]:
        peer = self._require_peer()
        reseed_dropout(peer, self.seed, ctx.step)  # the peer's masks: its own, reproducible per step
        terms = mutual_terms(batch.logits, peer(batch.images), batch.labels, self.weight, self.T)
        return {"kl": terms.kl, "peer_ce": terms.peer_ce, "peer_kl": terms.peer_kl}

    def probe_logits(self, ctx: TrainContext) -> tuple[torch.Tensor, torch.Tensor]:
        """(student, peer) logits on the probe batch in eval mode, as the test accuracy is measured."""
        peer = self._require_peer()
        assert self._probe is not None
        with evaluating(ctx.model), evaluating(peer):
            return ctx.model(self._probe), peer(self._probe)

    def metrics(self, ctx: TrainContext) -> dict[str, float]:
        peer = self._require_peer()
        images, labels = ctx.dataset.test_images, ctx.dataset.test_labels
        peer_logits = predict_logits(peer, images, ctx.device)
        peer_acc, peer_loss = accuracy_and_loss(peer_logits, labels)
        same = agreement(predict_logits(ctx.model, images, ctx.device), peer_logits)
        student, peer_probe = self.probe_logits(ctx)
        return {"peer_test_acc": peer_acc, "peer_test_loss": peer_loss, "agreement": same,
                "probe_kl": float(mutual_kl_per_sample(student, peer_probe, self.T).mean()),
                "probe_peer_kl": float(mutual_kl_per_sample(peer_probe, student, self.T).mean())}

    def snapshot(self, ctx: TrainContext) -> dict[str, np.ndarray]:
        student, peer = self.probe_logits(ctx)
        as_array = lambda t: t.detach().cpu().numpy().astype(np.float32)  # noqa: E731
        assert self._probe_labels is not None
        return {"probs": as_array(torch.softmax(student / self.T, dim=1)),
                "peer_probs": as_array(torch.softmax(peer / self.T, dim=1)),
                "kl": as_array(mutual_kl_per_sample(student, peer, self.T)),
                "peer_kl": as_array(mutual_kl_per_sample(peer, student, self.T)),
                "pred": student.argmax(dim=1).cpu().numpy().astype(np.int64),
                "peer_pred": peer.argmax(dim=1).cpu().numpy().astype(np.int64),
                "labels": self._probe_labels.cpu().numpy().astype(np.int64),
                "T": np.asarray(self.T, dtype=np.float32)}

    # ---- checkpoints: the peer's weights ------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        if self.peer is None:
            return {}
        return {PEER_PREFIX + k: v.detach().cpu() for k, v in self.peer.state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Called only when resuming: the checkpoint must hold the peer, or the run is not resumed."""
        peer_state = {k[len(PEER_PREFIX):]: v for k, v in (state or {}).items() if k.startswith(PEER_PREFIX)}
        if not peer_state:
            raise ValueError("dml: the checkpoint holds no peer network, so resuming would pair the trained student "
                             "with a fresh, untrained peer; the run was not resumed (start a new run instead)")
        if self.peer is None:  # restored before setup: applied once the peer exists
            self._pending_state = peer_state
        else:
            self._load_peer(peer_state)

    def _load_peer(self, peer_state: dict[str, torch.Tensor]) -> None:
        try:
            self._require_peer().load_state_dict(peer_state)
        except RuntimeError as exc:
            first = " ".join(str(exc).split())[:200]
            raise ValueError(f"dml: the checkpoint's peer network does not fit this run's peer model: "
                             f"{first}") from None


@dataclass(frozen=True)
class DMLSnapshot:
    """One snapshot of the ``dml`` hook on the probe batch (n images, K classes): each student's
    softmax at T (``probs``, ``peer_probs``: n x K), the per-image T^2 KL(p_peer || p_student)
    (``kl``) and T^2 KL(p_student || p_peer) (``peer_kl``), predicted classes, labels and T."""

    probs: np.ndarray
    peer_probs: np.ndarray
    kl: np.ndarray
    peer_kl: np.ndarray
    pred: np.ndarray
    peer_pred: np.ndarray
    labels: np.ndarray
    T: float

    @property
    def accuracy(self) -> float:
        return float((self.pred == self.labels).mean())

    @property
    def peer_accuracy(self) -> float:
        return float((self.peer_pred == self.labels).mean())

    @property
    def agreement(self) -> float:
        """Share of probe images on which the two students predict the same class."""
        return float((self.pred == self.peer_pred).mean())


def read_dml_snapshot(arrays: Mapping[str, np.ndarray], label: str) -> DMLSnapshot:
    """The typed reader of the ``dml`` hook's arrays stored under ``label`` (``""``: the hook's own dict)."""
    pre = f"{label}/" if label else ""
    if f"{pre}peer_probs" not in arrays:
        raise ValueError(f"these snapshot arrays have no mutual-learning peer under {pre!r} "
                         f"(was the {NAME!r} hook in the run config?)")
    get = lambda key, kind=np.float64: np.asarray(arrays[f"{pre}{key}"], dtype=kind)  # noqa: E731
    return DMLSnapshot(get("probs"), get("peer_probs"), get("kl"), get("peer_kl"), get("pred", np.int64),
                       get("peer_pred", np.int64), get("labels", np.int64), float(arrays[f"{pre}T"]))


def dml_options(config: Any) -> dict[str, Any]:
    """The ``dml`` hook's options in a run config, defaults filled in (the first use of the hook)."""
    values = {name: option.default for name, option in hook_options(DMLHook).items()}
    entries = [h for h in (getattr(config, "hooks", None) or []) if h.get("name") == NAME]
    if entries:
        values.update({k: v for k, v in entries[0].items() if k != "name"})
    return values


def dml_series_keys(config: Any) -> dict[str, str]:
    """``{series: record key}`` of the live charts' curves for a run with ``config`` (``"dml/peer_test_acc"``...)."""
    return {name: DML.metric_key(config, key) for name, key in SERIES_METRICS.items()}


def dml_config(base: TrainConfig, weight: float = 1.0, T: float = 1.0, **peer: Any) -> TrainConfig:
    """``base`` as a DML student: cross-entropy plus the ``dml`` hook, no teacher (DML needs none).
    ``peer``: the hook's ``peer_model``, ``peer_model_options`` or ``peer_seed``."""
    hook = {"name": NAME, "weight": float(weight), "T": float(T), **peer}
    return replace(base, method=DML.loss, teacher=None, T=TrainConfig.T, alpha=TrainConfig.alpha,
                   hooks=[*base.hooks, hook])


def _label(config: Any) -> str:
    options = dml_options(config)
    return f"DML w={float(options['weight']):g} T={float(options['T']):g}"


# Orange is also the pruned runs' (never raced beside the distillation family); every Okabe-Ito colour
# is taken and grey is the baseline's. The peer is drawn dashed in the same colour.
DML = register_method(MethodSpec(
    name=NAME, label="DML student", colour=OKABE_ITO["orange"],
    summary="deep mutual learning: two students trained together, each on CE + KL(p_peer || p_self) "
            "(Zhang et al. 2018, eqs. 1-4)",
    hook=DMLHook, loss="ce", claims=uses_hook(NAME), priority=40,
    label_run=_label, reader=read_dml_snapshot,
    widgets={"DMLMonitor": NAME},
))
