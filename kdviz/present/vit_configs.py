"""Run configs (``TrainConfig`` presets) for the tiny vision transformers of the Transformers page.

Dosovitskiy et al. 2021's ViT (``kdviz.models.vit``) at two sizes, both UIs, the lab and the bench
build their runs from here, so no page holds a patch size, a learning rate or a batch size:

* the **teacher**: 4 pre-norm blocks of 4 heads, width 64 (TinyBERT's teacher/student ratio of
  depth 2:1 and heads 2:1, Jiao et al. 2020, section 4.1, at toy scale);
* the **student**: 2 blocks of 2 heads, width 32; the same patch grid as the teacher, so the two
  have the same tokens and their attention matrices (N x N) and hidden states can be compared
  (TinyBERT eqs. 7-9).

Patches: 2 x 2 on the 8 x 8 digits (16 patches + the class token), 7 x 7 on 28 x 28 MNIST (16 as
well; Dosovitskiy et al.'s 16 x 16 patches on 224 x 224 images give 196). Both train with Adam and
a cosine schedule (transformers do not train well with plain SGD at these sizes). The digits set has
only 1,437 training images, so the digits teacher trains 40 epochs of batches of 32 (measured, one
thread: 96.7 % test accuracy at epoch 25 at lr 0.001; lr 0.003 ended at 93.1 %, and 1-pixel jitter at lr 0.002 held
it at 78 % after 30 epochs: a pixel is an eighth of an 8 x 8 digit). The MNIST teacher ended at
98.21 % after its 12 epochs (97.8 % after 7; 40 s an epoch on one thread of an idle core, 33 minutes on
the shared 2-core VM under a load of 20).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..engine import TrainConfig

VIT_MODEL = "vit"
# Per dataset: the patch size, then the teacher's and the student's training settings.
PATCH = {"digits": 2, "mnist": 7, "fashion_mnist": 7}
TEACHER_OPTIONS = {"dim": 64, "depth": 4, "heads": 4, "mlp_ratio": 2.0}
STUDENT_OPTIONS = {"dim": 32, "depth": 2, "heads": 2, "mlp_ratio": 2.0}
_TRAINING: Mapping[str, Mapping[str, Mapping[str, Any]]] = {
    "digits": {
        "teacher": {"epochs": 40, "lr": 0.001, "batch_size": 32, "jitter_px": 0},
        "student": {"epochs": 30, "lr": 0.003, "batch_size": 64, "jitter_px": 0},
    },
    "mnist": {
        "teacher": {"epochs": 12, "lr": 0.001, "batch_size": 128, "jitter_px": 0},
        "student": {"epochs": 3, "lr": 0.002, "batch_size": 128, "jitter_px": 0},
    },
}


def _training(dataset: str, role: str) -> Mapping[str, Any]:
    return _TRAINING.get(dataset, _TRAINING["mnist"])[role]


def _patch(dataset: str) -> int:
    return PATCH.get(dataset, 7)


def _preset(dataset: str, role: str, options: Mapping[str, Any], overrides: Mapping[str, Any]) -> TrainConfig:
    if not isinstance(dataset, str) or not dataset:
        raise ValueError(f"dataset must be a dataset name such as 'digits' or 'mnist', got {dataset!r}")
    model_options = {"patch": _patch(dataset), **options, **dict(overrides.pop("model_options", {}) or {})}
    base = TrainConfig(dataset=dataset, model=VIT_MODEL, model_options=model_options, method="ce",
                       optimizer="adam", lr_schedule="cosine", weight_decay=0.0, name=f"vit-{role}-{dataset}",
                       **_training(dataset, role))
    try:
        return replace(base, **overrides)
    except TypeError as exc:
        raise ValueError(f"vit {role} preset: {exc}") from None


def teacher_config(dataset: str = "digits", **overrides: Any) -> TrainConfig:
    """The ViT teacher's run on ``dataset`` (``overrides``: any ``TrainConfig`` field;
    ``model_options`` are merged into the preset's). Not validated: call ``.validate()`` or ``start``."""
    return _preset(dataset, "teacher", TEACHER_OPTIONS, dict(overrides))


def student_config(dataset: str = "digits", **overrides: Any) -> TrainConfig:
    """The ViT student's run on ``dataset``, trained alone (cross-entropy); a distilled student
    adds a teacher and the distillation hook (``kdviz.methods.vit_distill``)."""
    return _preset(dataset, "student", STUDENT_OPTIONS, dict(overrides))


# TrainConfig fields of the teacher preset that make a shared run's identity (``present.shared_run``).
TEACHER_RUN_FIELDS = ("model_options", "epochs", "lr", "batch_size", "jitter_px", "optimizer", "lr_schedule",
                      "weight_decay", "method", "name")


def teacher_run_options(dataset: str, data_root: str | None, runs_root: str, epochs: int | None = None) -> dict[str, Any]:
    """The teacher preset as ``shared_run`` options (``dataset``, ``model`` and ``TrainConfig`` fields),
    so every page that needs the ViT teacher trains it once; ``epochs`` overrides the preset's (tests)."""
    config = teacher_config(dataset)
    options: dict[str, Any] = {"dataset": dataset, "model": config.model, "data_root": data_root, "runs_root": runs_root}
    options.update({f: getattr(config, f) for f in TEACHER_RUN_FIELDS})
    options["model_options"] = dict(config.model_options)
    if epochs is not None:
        options["epochs"] = int(epochs)
    return options
