"""The labs' settings and their shared teachers and baselines, in one place for every notebook.

Each lab (``labs/src/NN_topic.py``) opens with one short cell::

    LAB = lab_settings(dataset="digits")  # or dataset="mnist", mnist_root="/path/to/the/four/idx/files"

and asks this module for what several labs train alike, so a run trained by one lab (or by the app,
where the options agree) is found on disk and reused by the next (``engine.train_teacher_cached``
matches a finished run by its config, name and runs folder aside):

* ``lab_teacher``: the MLP teacher of labs 1 and 2. On digits two hidden layers of 256 units with
  dropout; on MNIST Hinton, Vinyals & Dean's (2015, section 3) two layers of 1200 units with dropout
  and inputs jittered by up to 2 pixels.
* ``lab_resnet_teacher``: the ResNet-20 teacher of labs 3 and 7 (He et al. 2016, section 4.2: three
  stages of three basic blocks; channels 8-16-32). On digits it is the app's FSP-page teacher of the
  same depth and channels (same epochs and learning rate), so either reuses the other's run.
* ``lab_baseline``: the LeNet-300-100 baseline of labs 4, 5 and 6 (Han, Pool, Tran & Dally 2015), the
  app's pruning, quantization and Deep Compression baseline: same name, epochs and learning rate.

``$KDVIZ_RUNS`` (default ``runs``) says where run folders go; ``$KDVIZ_LAB_EPOCHS``, when set, makes
every run of a lab train that many epochs (CI sets 2 to run the labs fast).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

import torch

from ..data import DATASETS, DatasetBundle, load_dataset
from ..engine import Job, TrainConfig, train_teacher_cached
from ..engine.setup import dataset_for
from ..models import FeatureModel, build_model
from ..paths import runs_root

RUNS_ENV = "KDVIZ_RUNS"  # read by kdviz.paths.runs_root
EPOCHS_ENV = "KDVIZ_LAB_EPOCHS"
TEACHER_LR = 0.05  # the ResNet teacher and the LeNet baseline (the app's teachers use the same)
# ResNet-20 (He et al. 2016): 3 basic blocks per stage; a student with these channels per stage has
# FSP matrices of the teacher's shape (lab 3).
RESNET20: Mapping[str, tuple[int, ...]] = MappingProxyType({"blocks_per_stage": (3, 3, 3), "channels": (8, 16, 32)})

T = TypeVar("T")


def _lab_epochs(raw: str | None) -> int | None:
    """``$KDVIZ_LAB_EPOCHS`` as a positive whole number, or None when unset or blank."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"${EPOCHS_ENV} must be a positive whole number of epochs (or unset), got {raw!r}")
    return int(text)


@dataclass(frozen=True)
class LabSettings:
    """What every run of a lab shares: the dataset (``data_root`` for the IDX files of MNIST), the
    runs folder, and ``epochs``, the override of every run's epochs (None: each run's own)."""

    dataset: str
    data_root: str | None
    runs: str
    epochs: int | None = None

    @property
    def digits(self) -> bool:
        """True on the bundled 8x8 digits, where every lab runs in a minute or two on a CPU."""
        return self.dataset == "digits"

    def pick(self, digits: T, other: T) -> T:
        """``digits`` on the bundled digits, ``other`` on the 28x28 sets (MNIST, Fashion-MNIST)."""
        return digits if self.digits else other

    def epochs_or(self, default: int) -> int:
        """A run's epochs: the ``$KDVIZ_LAB_EPOCHS`` override if set, else ``default``."""
        return self.epochs if self.epochs is not None else default

    def epochs_for(self, digits: int, other: int) -> int:
        """A run's epochs: the ``$KDVIZ_LAB_EPOCHS`` override if set, else ``pick(digits, other)``."""
        return self.epochs_or(self.pick(digits, other))

    def config(self, **fields: Any) -> TrainConfig:
        """A checked ``TrainConfig`` on this lab's dataset and runs folder, with ``fields`` set."""
        return TrainConfig(dataset=self.dataset, data_root=self.data_root, runs_root=self.runs, **fields).validate()

    def data(self) -> DatasetBundle:
        """The lab's dataset (train and test tensors)."""
        return load_dataset(self.dataset, root=self.data_root)


def lab_settings(dataset: str = "digits", mnist_root: str | os.PathLike | None = None) -> LabSettings:
    """The settings of a lab on ``dataset`` (``mnist_root``: the folder with the four MNIST IDX files),
    with kdviz's one runs folder (``kdviz.paths.runs_root``: ``$KDVIZ_RUNS`` or the checkout's runs/) and the epochs override from ``$KDVIZ_LAB_EPOCHS``."""
    if not isinstance(dataset, str) or dataset not in DATASETS:
        raise ValueError(f"dataset {dataset!r} is not registered (known: {', '.join(DATASETS.names())})")
    if mnist_root is not None and not isinstance(mnist_root, (str, os.PathLike)):
        raise ValueError(f"mnist_root must be a folder path (or None), got {mnist_root!r}")
    runs = str(runs_root())  # $KDVIZ_RUNS, else the checkout's runs/: the app lists these runs too
    root = os.fspath(mnist_root) if mnist_root is not None else None
    return LabSettings(dataset, root, runs, _lab_epochs(os.environ.get(EPOCHS_ENV)))


def teacher_config(lab: LabSettings) -> TrainConfig:
    """The MLP teacher of labs 1 and 2: 256-256 with dropout 0.2 for 20 epochs on digits; on the 28x28
    sets Hinton et al.'s 1200-1200 with dropout 0.2 and 2-pixel jitter, for 5 epochs."""
    options = lab.pick({"hidden": [256, 256], "dropout": 0.2}, {"hidden": [1200, 1200], "dropout": 0.2})
    return lab.config(model="mlp", model_options=options, jitter_px=lab.pick(0, 2),
                      epochs=lab.epochs_for(digits=20, other=5), name=f"teacher-mlp-{lab.dataset}")


def resnet_teacher_config(lab: LabSettings) -> TrainConfig:
    """The ResNet-20 teacher of labs 3 and 7 (``RESNET20``): 30 epochs with a cosine learning rate on
    digits (a constant rate left it at 90-97 % depending on where it stopped), 1 epoch on the 28x28 sets."""
    return lab.config(model="resnet", model_options={k: list(v) for k, v in RESNET20.items()},
                      epochs=lab.epochs_for(digits=30, other=1), lr=TEACHER_LR,
                      lr_schedule=lab.pick("cosine", "constant"), name="teacher-resnet20")


def baseline_config(lab: LabSettings) -> TrainConfig:
    """The LeNet-300-100 baseline of labs 4, 5 and 6: 20 epochs on digits, 3 on the 28x28 sets."""
    return lab.config(model="lenet300", epochs=lab.epochs_for(digits=20, other=3), lr=TEACHER_LR,
                      name=f"baseline-lenet300-{lab.dataset}")


def cached_run(config: TrainConfig) -> Job:
    """The finished run of ``config`` under its runs folder if there is one, else a job training it."""
    fields = config.to_dict()
    return train_teacher_cached(fields.pop("dataset"), fields.pop("model"), **fields)


def lab_teacher(lab: LabSettings) -> Job:
    """The MLP teacher (``teacher_config``), reused from disk when trained before; ``wait()`` for it."""
    return cached_run(teacher_config(lab))


def lab_resnet_teacher(lab: LabSettings) -> Job:
    """The ResNet-20 teacher (``resnet_teacher_config``), reused from disk when trained before."""
    return cached_run(resnet_teacher_config(lab))


def lab_baseline(lab: LabSettings) -> Job:
    """The LeNet-300-100 baseline (``baseline_config``), reused from disk when trained before."""
    return cached_run(baseline_config(lab))


def untrained_student(teacher: Job, **model_options: Any) -> FeatureModel:
    """A freshly initialised model of the teacher's kind (``teacher.config.model``) for its dataset,
    with ``model_options`` (fewer blocks, fewer channels), in eval mode: a student before training."""
    data = dataset_for(teacher.config)
    return build_model(teacher.config.model, input_shape=data.input_shape, num_classes=data.num_classes,
                       **model_options).eval()


def probe_features(model: FeatureModel, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every named feature map of ``model`` (``forward_with_features``) on ``images``, without gradients."""
    with torch.no_grad():
        return model.forward_with_features(images)[1]


__all__ = [
    "EPOCHS_ENV", "RESNET20", "RUNS_ENV", "TEACHER_LR", "LabSettings", "baseline_config",
    "cached_run", "lab_baseline", "lab_resnet_teacher", "lab_settings", "lab_teacher", "probe_features",
    "resnet_teacher_config", "teacher_config", "untrained_student",
]
