"""The ``"specialist"`` training hook and method: Hinton, Vinyals, Dean, "Distilling the Knowledge in
a Neural Network" (2015), section 5 (specialists with a dustbin class).

Config entry (plain JSON, see ``kdviz.engine.hooks``)::

    {"name": "specialist", "classes": [3, 5, 8], "enriched_fraction": 0.5}

with ``method="none"`` (the hook's term is the whole loss) and ``init_from`` = the generalist's
finished run folder: "the specialists are initialized with the weights of the generalist model"
(section 5). The model keeps its K logits; the specialist's distribution over its classes plus the
dustbin is the softmax with the other classes' probabilities summed
(``kdviz.distill.specialists.specialist_log_probs``). The loss is the cross-entropy of that
distribution against the labels mapped by ``specialist_label_map`` (every class outside
``classes`` -> the dustbin), each example weighted by ``enrichment_weights`` over the run's whole
training set, so the subset's images carry ``enriched_fraction`` of the weight (the paper: "half its
examples coming from its special subset and half sampled at random from the remainder").

At every evaluation the hook logs, on the test set, with the dustbin's logit corrected for the
enrichment (``dustbin_logit_correction``): ``subset_acc``, the accuracy of the specialist's own task
(its classes or the dustbin) over every test image, and ``special_acc``, the accuracy on the test
images of its classes. The run's ``test_acc`` is the K-way accuracy of the same weights, which the
specialist was not trained for.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..distill.specialists import (
    check_subset, dustbin_logit_correction, enrichment_weights, specialist_label_map, specialist_log_probs,
)
from ..engine.config import TrainConfig
from ..engine.evaluation import predict_logits
from ..engine.hooks import HOOKS, StepBatch, TrainContext, TrainingHook, hook_options
from ..engine.setup import dataset_for
from ..models.device import module_device
from ..palette import ROLE_COLORS
from .base import MethodSpec, PageSpec, register_method, uses_hook

NAME = "specialist"
SUBSET_ACC, SPECIAL_ACC = "subset_acc", "special_acc"  # the metrics the hook logs at every evaluation


@HOOKS.register(NAME)
class SpecialistHook(TrainingHook):
    """Trains the model as a specialist for ``classes`` with a dustbin for every other class."""

    def __init__(self, classes: Sequence[int], enriched_fraction: float = 0.5) -> None:
        if not isinstance(classes, (list, tuple)) or not classes:
            raise ValueError(f"specialist: classes must list the specialist's classes, got {classes!r}")
        if isinstance(enriched_fraction, bool) or not 0.0 < float(enriched_fraction) < 1.0:
            raise ValueError(f"specialist: enriched_fraction (the weight share of its classes' images) must be "
                             f"between 0 and 1 (the paper: 0.5), got {enriched_fraction!r}")
        self.classes, self.enriched_fraction = tuple(classes), float(enriched_fraction)
        self._label_map: torch.Tensor | None = None
        self._weights: torch.Tensor | None = None
        self.dustbin_bias = 0.0

    def setup(self, ctx: TrainContext) -> None:
        """Check the classes against the data; the label map, the per-image weights, the correction."""
        num_classes = ctx.dataset.num_classes
        self.classes = check_subset(self.classes, num_classes)
        labels = ctx.dataset.train_labels
        self._label_map = torch.as_tensor(specialist_label_map(self.classes, num_classes), device=ctx.device)
        self._weights = enrichment_weights(labels, self.classes, self.enriched_fraction).to(ctx.device)
        share = torch.isin(labels, torch.tensor(self.classes)).double().mean().item()
        self.dustbin_bias = dustbin_logit_correction(share, self.enriched_fraction)

    def loss_terms(self, ctx: TrainContext, batch: StepBatch) -> dict[str, torch.Tensor]:
        """``{"dustbin_ce": mean_b w_b CE(y_b mapped, p^m_b)}`` (section 5)."""
        log_p = specialist_log_probs(batch.logits, self.classes)
        targets = self._label_map[batch.labels.to(self._label_map.device)]
        nll = F.nll_loss(log_p, targets.to(log_p.device), reduction="none")
        return {"dustbin_ce": (self._weights[batch.indices.to(self._weights.device)].to(nll.device) * nll).mean()}

    def metrics(self, ctx: TrainContext) -> dict[str, float]:
        """Test accuracy of the specialist's task (``subset_acc``) and on its classes (``special_acc``)."""
        logits = predict_logits(ctx.model, ctx.dataset.test_images, ctx.device)
        pred = specialist_log_probs(logits, self.classes, self.dustbin_bias).argmax(dim=1)
        mapped = self._label_map[ctx.dataset.test_labels.to(self._label_map.device)].to(pred.device)
        inside = mapped < len(self.classes)
        special = float((pred[inside] == mapped[inside]).double().mean()) if inside.any() else float("nan")
        return {SUBSET_ACC: float((pred == mapped).double().mean()), SPECIAL_ACC: special}


def specialist_options(config: Any) -> dict[str, Any]:
    """The ``specialist`` hook's options in a run config, defaults filled in (its first use)."""
    values = {name: option.default for name, option in hook_options(SpecialistHook).items() if not option.required}
    entries = [h for h in (getattr(config, "hooks", None) or []) if h.get("name") == NAME]
    if not entries:
        raise ValueError(f"this run has no {NAME!r} hook in its config: it is not a specialist")
    values.update({k: v for k, v in entries[0].items() if k != "name"})
    return values


def specialist_classes(config: Any) -> tuple[int, ...]:
    """The classes a specialist run covers (its subset S^m)."""
    return tuple(int(c) for c in specialist_options(config)["classes"])


def specialist_dustbin_bias(config: TrainConfig) -> float:
    """The dustbin-logit correction of a specialist run (``dustbin_logit_correction``), from its
    training set's share of its classes and its ``enriched_fraction``."""
    labels = dataset_for(config).train_labels
    share = torch.isin(labels, torch.tensor(specialist_classes(config))).double().mean().item()
    return dustbin_logit_correction(share, float(specialist_options(config)["enriched_fraction"]))


def specialist_probabilities(model: torch.nn.Module, images: torch.Tensor, config: TrainConfig) -> np.ndarray:
    """p^m (N, |S^m|+1): a trained specialist's distribution over its classes and the dustbin (last)
    for ``images``, the dustbin corrected for the enrichment (section 5)."""
    logits = predict_logits(model, images, module_device(model)).double().cpu()
    return specialist_log_probs(logits, specialist_classes(config), specialist_dustbin_bias(config)).exp().numpy()


def specialist_config(generalist: TrainConfig, generalist_run: str, classes: Sequence[int], *,
                      enriched_fraction: float = 0.5, epochs: int | None = None, lr: float | None = None,
                      name: str = "") -> TrainConfig:
    """The config of a specialist for ``classes``: the generalist's model and training data,
    initialised from the finished ``generalist_run``, trained on the dustbin loss alone (base loss
    ``"none"``), no teacher; ``epochs`` and ``lr`` default to the generalist's."""
    hook = {"name": NAME, "classes": [int(c) for c in classes], "enriched_fraction": float(enriched_fraction)}
    return replace(generalist, method="none", teacher=None, init_from=str(generalist_run), hooks=[hook],
                   epochs=generalist.epochs if epochs is None else int(epochs), lr=generalist.lr if lr is None else float(lr),
                   name=name or f"specialist-{'-'.join(str(c) for c in classes)}")


def _label(config: Any) -> str:
    return "specialist " + "/".join(str(c) for c in specialist_classes(config))


# Every Okabe-Ito colour is taken; reddish purple is the FSP student's, never drawn beside a specialist
# (the generalist is a "ce" run, drawn in the scratch student's green).
SPECIALIST = register_method(MethodSpec(
    name=NAME, label="specialist", colour=ROLE_COLORS["specialist"],
    summary="a specialist for confusable classes with a dustbin for the rest, combined with the generalist "
            "by minimising KL(p^g||q) + sum_m KL(p^m||q) (Hinton et al. 2015, section 5)",
    hook=SpecialistHook, loss="none", claims=uses_hook(NAME), priority=40, label_run=_label,
    pages=(PageSpec("specialists", "Specialists", ":material/hub:", order=17),),
    widgets={"SpecialistsMonitor": "specialists"},
))
