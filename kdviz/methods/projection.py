"""The ``"projection"`` training hook and method: Ravi, "ProjectionNet: Learning Efficient On-Device
Deep Networks Using Neural Projections" (arXiv:1708.00630, 2017), the joint objective of eq. 1
(``kdviz.distill.projection``).

Config entry (plain JSON, see ``kdviz.engine.hooks``), on a run whose model is the projection net::

    {"model": "projection_net", "model_options": {"num_hashes": 8, "bits_per_hash": 8}, "method": "none",
     "hooks": [{"name": "projection", "lambda1": 1.0, "lambda2": 1.0, "lambda3": 1.0}]}

The run's model is the projection network h_p (``kdviz.models.projection_net``): it is what is
deployed, evaluated and checkpointed as the run's model. This hook owns the *trainer* network
h_theta, as the DML hook owns its peer: built in ``setup`` from ``trainer_model`` and
``trainer_model_options`` (default an MLP with two hidden layers of 256) and ``trainer_seed``
(default the run's seed + 1), its parameters joined to the run's optimizer through
``extra_parameters()``, its weights saved in the checkpoint. The base loss is ``"none"``: the hook
adds all three terms of eq. 1, ``{"trainer_ce": lambda1 L_theta, "distill": lambda2 L_p, "label":
lambda3 L_p_hat}``, which the engine logs per step under ``projection/``.

At each evaluation the hook logs the trainer's test accuracy and loss and the two networks'
agreement on the test set. Snapshots hold, for the first ``probe_size`` test digits, the bits of
P(x) (fixed: P is not trained), the projection net's and the trainer's softmax (which move), the
probe images and labels, and the unweighted loss parts of every step since the previous snapshot
(``ProjectionSnapshot``).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from ..distill.projection import check_lambda, projection_joint_loss, soft_cross_entropy
from ..engine.config import TrainConfig
from ..engine.evaluation import accuracy_and_loss, agreement, evaluating, predict_logits
from ..engine.hooks import HOOKS, StepBatch, TrainContext, TrainingHook, hook_options
from ..models import INIT_LOCK, MODELS, build_model
from ..models.dropout import reseed_dropout
from ..models.projection_net import ProjectionNet
from ..palette import ROLE_COLORS
from ._features import probe_images
from .base import MethodSpec, PageSpec, register_method, uses_hook

NAME = "projection"
MODEL = "projection_net"  # the model zoo's name of the projection network (the run's model)
TRAINER_PREFIX = "trainer/"
DEFAULT_TRAINER = ("mlp", {"hidden": [256, 256]})
PARTS = ("trainer_ce", "distill", "label")  # the terms of eq. 1, in the order lambda1, lambda2, lambda3


def _whole(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"projection: {name} must be a whole number >= {low}, got {value!r}")
    return value


@HOOKS.register(NAME)
class ProjectionHook(TrainingHook):
    """Trains the trainer network h_theta beside the run's projection net on eq. 1."""

    def __init__(self, lambda1: float = 1.0, lambda2: float = 1.0, lambda3: float = 1.0,
                 trainer_model: str = DEFAULT_TRAINER[0], trainer_model_options: Mapping[str, Any] | None = None,
                 trainer_seed: int | None = None, probe_size: int = 8) -> None:
        self.lambdas = tuple(check_lambda(v, n) for v, n in ((lambda1, "lambda1 (weight of the trainer's loss)"),
                                                              (lambda2, "lambda2 (weight of the distillation loss)"),
                                                              (lambda3, "lambda3 (weight of the projection "
                                                                        "net's label loss)")))
        if sum(self.lambdas[1:]) == 0:
            raise ValueError("projection: lambda2 and lambda3 are both 0, so the projection net (the deployed model) "
                             "would learn nothing; give at least one of them a positive weight")
        if not isinstance(trainer_model, str) or trainer_model not in MODELS.names() or trainer_model == MODEL:
            raise ValueError(f"projection: trainer_model {trainer_model!r} is not a full network of the model zoo "
                             f"(known: {', '.join(n for n in MODELS.names() if n != MODEL)})")
        if trainer_model_options is not None and (not isinstance(trainer_model_options, Mapping)
                                                  or not all(isinstance(k, str) for k in trainer_model_options)):
            raise ValueError(f"projection: trainer_model_options must be a dict of option names to values, "
                             f"got {trainer_model_options!r}")
        self.trainer_model = trainer_model
        if trainer_model_options is None:
            trainer_model_options = DEFAULT_TRAINER[1] if trainer_model == DEFAULT_TRAINER[0] else {}
        self.trainer_model_options = dict(trainer_model_options)
        self.trainer_seed = None if trainer_seed is None else _whole(trainer_seed, "trainer_seed", 0)
        self.probe_size = _whole(probe_size, "probe_size (test digits whose bits are kept)", 1)
        self.trainer: nn.Module | None = None
        self.seed = 0
        self._pending_state: dict[str, torch.Tensor] | None = None
        self._probe: torch.Tensor | None = None
        self._probe_labels: np.ndarray | None = None
        self._steps: list[int] = []
        self._parts: list[list[float]] = []

    def setup(self, ctx: TrainContext) -> None:
        """Check the run's model is a projection net; build the trainer from its own seed."""
        if not isinstance(ctx.model, ProjectionNet):
            raise ValueError(f"projection: the run's model must be {MODEL!r} (the projection network that is "
                             f"deployed), got {ctx.config.model!r}")
        self.seed = int(ctx.config.seed) + 1 if self.trainer_seed is None else self.trainer_seed
        try:
            with INIT_LOCK, torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                trainer = build_model(self.trainer_model, input_shape=ctx.dataset.input_shape,
                                      num_classes=ctx.dataset.num_classes, **self.trainer_model_options)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"projection: cannot build the trainer {self.trainer_model!r} with options "
                             f"{self.trainer_model_options}: {exc}") from None
        self.trainer = trainer.to(ctx.device).train()
        if self._pending_state is not None:
            self._load_trainer(self._pending_state)
            self._pending_state = None
        self._probe = probe_images(ctx, self.probe_size)
        self._probe_labels = np.asarray(ctx.dataset.test_labels[: len(self._probe)], dtype=np.int64)

    def _require_trainer(self) -> nn.Module:
        if self.trainer is None:
            raise RuntimeError("projection: setup(ctx) must run first (it builds the trainer network)")
        return self.trainer

    def extra_parameters(self) -> list[nn.Parameter]:
        return [p for p in self._require_trainer().parameters() if p.requires_grad]

    def loss_terms(self, ctx: TrainContext, batch: StepBatch) -> dict[str, torch.Tensor]:
        trainer = self._require_trainer()
        reseed_dropout(trainer, self.seed, ctx.step)
        parts = projection_joint_loss(trainer(batch.images), batch.logits, batch.labels, *self.lambdas)
        terms = {"trainer_ce": parts.trainer, "distill": parts.distill, "label": parts.label}
        self._steps.append(int(ctx.step))
        self._parts.append([float(terms[k].detach()) for k in PARTS])
        return terms

    def probe_logits(self, ctx: TrainContext) -> tuple[torch.Tensor, torch.Tensor]:
        """(projection net, trainer) logits on the probe digits in eval mode."""
        trainer = self._require_trainer()
        assert self._probe is not None
        with evaluating(ctx.model), evaluating(trainer):
            return ctx.model(self._probe), trainer(self._probe)

    def metrics(self, ctx: TrainContext) -> dict[str, float]:
        trainer = self._require_trainer()
        images, labels = ctx.dataset.test_images, ctx.dataset.test_labels
        trainer_logits = predict_logits(trainer, images, ctx.device)
        projection_logits = predict_logits(ctx.model, images, ctx.device)
        trainer_acc, trainer_loss = accuracy_and_loss(trainer_logits, labels)
        return {"trainer_test_acc": trainer_acc, "trainer_test_loss": trainer_loss,
                "agreement": agreement(projection_logits, trainer_logits),
                "test_distill": float(soft_cross_entropy(projection_logits, trainer_logits))}

    def snapshot(self, ctx: TrainContext) -> dict[str, np.ndarray]:
        projection, trainer = self.probe_logits(ctx)
        assert self._probe is not None and self._probe_labels is not None
        model: ProjectionNet = ctx.model  # type: ignore[assignment]
        with torch.no_grad():
            bits = model.bits(self._probe)
        out = {"bits": bits.cpu().numpy().astype(np.uint8),
               "probs": torch.softmax(projection, dim=1).cpu().numpy().astype(np.float32),
               "trainer_probs": torch.softmax(trainer, dim=1).cpu().numpy().astype(np.float32),
               "images": self._probe.mean(dim=1).cpu().numpy().astype(np.float32),
               "labels": self._probe_labels,
               "shape": np.asarray([model.num_hashes, model.bits_per_hash], dtype=np.int64),
               "lambdas": np.asarray(self.lambdas, dtype=np.float32),
               "loss_steps": np.asarray(self._steps, dtype=np.int64),
               "loss_parts": np.asarray(self._parts, dtype=np.float32).reshape(-1, len(PARTS))}
        self._steps, self._parts = [], []
        return out

    # ---- checkpoints: the trainer's weights ---------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        if self.trainer is None:
            return {}
        return {TRAINER_PREFIX + k: v.detach().cpu() for k, v in self.trainer.state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Called only when resuming: the checkpoint must hold the trainer, or the run is not resumed."""
        trainer_state = {k[len(TRAINER_PREFIX):]: v for k, v in (state or {}).items() if k.startswith(TRAINER_PREFIX)}
        if not trainer_state:
            raise ValueError("projection: the checkpoint holds no trainer network, so resuming would distil from "
                             "a fresh, untrained trainer; the run was not resumed (start a new run instead)")
        if self.trainer is None:
            self._pending_state = trainer_state
        else:
            self._load_trainer(trainer_state)

    def _load_trainer(self, trainer_state: dict[str, torch.Tensor]) -> None:
        try:
            self._require_trainer().load_state_dict(trainer_state)
        except RuntimeError as exc:
            first = " ".join(str(exc).split())[:200]
            raise ValueError(f"projection: the checkpoint's trainer network does not fit this run's trainer "
                             f"model: {first}") from None


@dataclass(frozen=True)
class ProjectionSnapshot:
    """One snapshot of the ``projection`` hook on n probe digits (K classes): the bits of P(x)
    (``bits``: n x T*d, 0/1), T and d, the projection net's and the trainer's softmax (n x K), the
    probe images (n x H x W) and labels, lambda1..3, and the unweighted loss parts L_theta, L_p,
    L_p_hat (``loss_parts``: m x 3) of the m steps ``loss_steps`` since the previous snapshot."""

    bits: np.ndarray
    num_hashes: int
    bits_per_hash: int
    probs: np.ndarray
    trainer_probs: np.ndarray
    images: np.ndarray
    labels: np.ndarray
    lambdas: tuple[float, float, float]
    loss_steps: np.ndarray
    loss_parts: np.ndarray

    @property
    def num_bits(self) -> int:
        return self.num_hashes * self.bits_per_hash

    @property
    def accuracy(self) -> float:
        """The projection net's accuracy on the probe digits."""
        return float((self.probs.argmax(axis=1) == self.labels).mean())

    def hash_codes(self) -> np.ndarray:
        """Each probe digit's T hash codes as integers (n x T): hash k's d bits read as a binary number."""
        grouped = self.bits.reshape(len(self.bits), self.num_hashes, self.bits_per_hash).astype(np.int64)
        return grouped @ (1 << np.arange(self.bits_per_hash - 1, -1, -1, dtype=np.int64))


def read_projection_snapshot(arrays: Mapping[str, np.ndarray], label: str) -> ProjectionSnapshot:
    """The typed reader of the ``projection`` hook's arrays stored under ``label`` (``""``: the hook's own dict)."""
    pre = f"{label}/" if label else ""
    if f"{pre}bits" not in arrays:
        raise ValueError(f"these snapshot arrays have no projection bits under {pre!r} "
                         f"(was the {NAME!r} hook in the run config?)")
    get = lambda key, kind=np.float64: np.asarray(arrays[f"{pre}{key}"], dtype=kind)  # noqa: E731
    t, d = (int(v) for v in get("shape", np.int64))
    lambdas = tuple(float(v) for v in get("lambdas"))
    return ProjectionSnapshot(get("bits", np.uint8), t, d, get("probs"), get("trainer_probs"), get("images"),
                              get("labels", np.int64), lambdas, get("loss_steps", np.int64),  # type: ignore[arg-type]
                              get("loss_parts").reshape(-1, len(PARTS)))


def projection_options(config: Any) -> dict[str, Any]:
    """The ``projection`` hook's options in a run config, defaults filled in."""
    values = {name: option.default for name, option in hook_options(ProjectionHook).items()}
    entries = [h for h in (getattr(config, "hooks", None) or []) if h.get("name") == NAME]
    if entries:
        values.update({k: v for k, v in entries[0].items() if k != "name"})
    return values


def bits_of(config: Any) -> tuple[int, int]:
    """(T, d) of a projection-net run's config, the model's defaults filled in."""
    options = getattr(config, "model_options", None) or {}
    defaults = hook_options(MODELS.get(MODEL))
    return (int(options.get("num_hashes", defaults["num_hashes"].default)),
            int(options.get("bits_per_hash", defaults["bits_per_hash"].default)))


def projection_config(base: TrainConfig, num_hashes: int = 8, bits_per_hash: int = 8,
                      hidden: list[int] | tuple[int, ...] = (128,), projection_seed: int | None = None,
                      lambda1: float = 1.0, lambda2: float = 1.0, lambda3: float = 1.0, **trainer: Any) -> TrainConfig:
    """``base`` as a ProjectionNet run, validated: the projection net (T = ``num_hashes``, d =
    ``bits_per_hash``, P drawn from ``projection_seed``, default the run's seed) as the run's model,
    no base loss, the ``projection`` hook with lambda1..3 and ``trainer``'s options
    (``trainer_model``, ``trainer_model_options``, ``trainer_seed``, ``probe_size``); no teacher."""
    seed = int(base.seed) if projection_seed is None else int(projection_seed)
    hook = {"name": NAME, "lambda1": float(lambda1), "lambda2": float(lambda2), "lambda3": float(lambda3), **trainer}
    options = {"num_hashes": int(num_hashes), "bits_per_hash": int(bits_per_hash), "hidden": [int(h) for h in hidden],
               "projection_seed": seed}
    return replace(base, model=MODEL, model_options=options, method=PROJECTION.loss, teacher=None,
                   hooks=[*[h for h in base.hooks if h.get("name") != NAME], hook]).validate()


def _label(config: Any) -> str:
    t, d = bits_of(config)
    return f"ProjectionNet {t}x{d} bits"


PROJECTION = register_method(MethodSpec(
    name=NAME, label="projection net", colour=ROLE_COLORS["quantized"],
    summary="ProjectionNet: a small net on T x d locality-sensitive hash bits, trained jointly with a full "
            "trainer network on lambda1 L_theta + lambda2 L_p + lambda3 L_p_hat (Ravi 2017, eq. 1)",
    hook=ProjectionHook, loss="none", claims=uses_hook(NAME), priority=40,
    label_run=_label, reader=read_projection_snapshot,
    pages=(PageSpec(NAME, "ProjectionNet", ":material/tag:", order=75),),
    widgets={"ProjectionMonitor": NAME},
))
