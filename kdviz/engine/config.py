"""``TrainConfig``: every option of one training run, as a JSON-serialisable dataclass.

A run folder stores its config as ``config.json``, so a run can be reopened, compared, resumed or
replayed from the file alone. ``validate()`` rejects bad values with a ``ValueError`` naming the
field; unknown keys in ``from_dict`` are rejected too, so a typo never silently does nothing.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..paths import runs_root
from .hooks import validate_hook_spec
from .losses import LOSSES
from .optim import LR_SCHEDULES, OPTIMIZERS

DEVICES = ("auto", "cpu", "cuda")
MAX_JITTER_PX = 2  # Hinton et al. 2015, section 3: "jittered by up to two pixels in any direction"


@dataclass
class TrainConfig:
    """One training run. Steps count optimizer updates; ``0`` in an ``*_every`` field means "per epoch"."""

    dataset: str = "digits"
    data_root: str | None = None
    model: str = "mlp"
    model_options: dict = field(default_factory=dict)
    method: str = "ce"  # the base loss, a name in engine.losses.LOSSES (registered by kdviz.methods)
    teacher: str | None = None  # run folder of a finished teacher run (a loss or hook that needs one)
    cache_teacher_logits: bool = True  # look teacher logits up per image when the data is not augmented
    T: float = 4.0  # distillation temperature
    alpha: float = 0.9  # weight of the soft-target term; 1 - alpha weights the hard-label term
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_schedule: str = "constant"  # "constant", "cosine", "step"
    lr_milestones: list = field(default_factory=lambda: [0.5, 0.75])  # "step": fractions of the run
    lr_gamma: float = 0.1  # "step": factor applied at each milestone
    batch_size: int = 64
    epochs: int = 5
    max_steps: int | None = None  # stop early after this many steps (None: train all epochs)
    train_subset: int | None = None  # train on a class-balanced subset of this many images (None: all)
    train_classes: list | None = None  # train only on images of these classes (None: all); the test set keeps every class
    pace_s: float | None = None  # take at least this many seconds (sleeping between steps), so a class can watch
    seed: int = 0
    device: str = "auto"
    jitter_px: int = 0  # random shifts of up to this many pixels per training image (0..2)
    eval_every: int = 0  # steps between evaluations; 0: at the end of every epoch
    snapshot_every: int = 50  # steps between snapshots; 0: only at the start and the end
    log_every: int = 1  # steps between step-metric records
    checkpoint_every_steps: int | None = None  # a checkpoint every N steps (and at every evaluation); None: every ~5 s of training
    eval_train_samples: int = 10000  # train accuracy is measured on a fixed subset of this size
    probe_count: int = 20
    probe_temperatures: list = field(default_factory=lambda: [1.0, 4.0, 20.0])
    hooks: list = field(default_factory=list)
    init_from: str | None = None  # run folder whose last checkpoint initialises the model
    name: str = ""
    runs_root: str = field(default_factory=lambda: str(runs_root()))  # kdviz.paths: one root for app, labs, CLI

    # ---- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        if not isinstance(data, dict):
            raise TypeError(f"a TrainConfig is built from a dict, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"config is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TrainConfig":
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise ValueError(f"no config file at {path}")
        return cls.from_json(path.read_text())

    def identity(self) -> dict[str, Any]:
        """The fields that decide what is trained (everything but name, runs_root, display options)."""
        ignore = {"name", "runs_root", "snapshot_every", "log_every", "probe_count", "probe_temperatures", "cache_teacher_logits",
                  "checkpoint_every_steps", "pace_s"}
        return {k: v for k, v in self.to_dict().items() if k not in ignore}

    def display_name(self) -> str:
        return self.name or f"{self.method}-{self.model}-{self.dataset}"

    # ---- validation ----------------------------------------------------------------------
    def validate(self) -> "TrainConfig":
        """Check every field; raise ``ValueError``/``TypeError`` naming the first bad one. Returns self."""
        from ..data import DATASETS
        from ..models import MODELS

        _check_type("dataset", self.dataset, str)
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset {self.dataset!r} is not registered (known: {', '.join(DATASETS.names())})")
        _check_type("data_root", self.data_root, (str, type(None)))
        _check_type("model", self.model, str)
        if self.model not in MODELS:
            raise ValueError(f"model {self.model!r} is not registered (known: {', '.join(MODELS.names())})")
        _check_type("model_options", self.model_options, dict)
        _check_choice("method", self.method, LOSSES.names())
        _check_type("teacher", self.teacher, (str, type(None)))
        self._validate_classes()
        if LOSSES.get(self.method).needs_teacher and not self.teacher:
            raise ValueError(f"method {self.method!r} needs a teacher: set teacher to a finished teacher run folder")
        self._validate_training()
        return self

    def _validate_classes(self) -> None:
        """``train_classes`` names classes the dataset has (checked on the loaded data; data that
        cannot be loaded is left for the run to report, as without ``train_classes``)."""
        _check_classes(self.train_classes)
        if self.train_classes is None:
            return
        from ..data.bundle import check_classes
        from .setup import full_dataset

        try:
            dataset = full_dataset(self)
        except (OSError, ValueError):
            return
        check_classes(dataset, self.train_classes)

    def _validate_training(self) -> None:
        """The fields after the method: loss weights, optimiser, schedule, length, logging, hooks."""
        _check_type("cache_teacher_logits", self.cache_teacher_logits, bool)
        _check_number("T", self.T, low=0.0, low_open=True)
        _check_number("alpha", self.alpha, low=0.0, high=1.0)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS.names())
        _check_number("lr", self.lr, low=0.0, low_open=True)
        _check_number("momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        _check_number("weight_decay", self.weight_decay, low=0.0)
        _check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES.names())
        _check_type("lr_milestones", self.lr_milestones, (list, tuple))
        for m in self.lr_milestones:
            _check_number("lr_milestones entry", m, low=0.0, high=1.0)
        _check_number("lr_gamma", self.lr_gamma, low=0.0, low_open=True)
        _check_int("batch_size", self.batch_size, low=1)
        _check_int("epochs", self.epochs, low=1)
        if self.max_steps is not None:
            _check_int("max_steps", self.max_steps, low=1)
        if self.train_subset is not None:
            _check_int("train_subset", self.train_subset, low=1)
        if self.pace_s is not None:
            _check_number("pace_s", self.pace_s, low=0.0, high=86400.0, low_open=True)
        _check_int("seed", self.seed, low=0)
        _check_choice("device", self.device, DEVICES)
        _check_int("jitter_px", self.jitter_px, low=0)
        if self.jitter_px > MAX_JITTER_PX:
            raise ValueError(f"jitter_px must be 0..{MAX_JITTER_PX} (Hinton et al. jitter up to 2 px), got {self.jitter_px}")
        for name in ("eval_every", "snapshot_every"):
            _check_int(name, getattr(self, name), low=0)
        _check_int("log_every", self.log_every, low=1)
        if self.checkpoint_every_steps is not None:
            _check_int("checkpoint_every_steps", self.checkpoint_every_steps, low=1)
        _check_int("eval_train_samples", self.eval_train_samples, low=1)
        _check_int("probe_count", self.probe_count, low=1)
        _check_type("probe_temperatures", self.probe_temperatures, (list, tuple))
        if not self.probe_temperatures:
            raise ValueError("probe_temperatures must list at least one temperature")
        for t in self.probe_temperatures:
            _check_number("probe_temperatures entry", t, low=0.0, low_open=True)
        _check_type("hooks", self.hooks, (list, tuple))
        for spec in self.hooks:
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                raise ValueError(f"each hooks entry must be a dict with a 'name', got {spec!r}")
            validate_hook_spec(spec)
        _check_type("init_from", self.init_from, (str, type(None)))
        _check_type("name", self.name, str)
        _check_type("runs_root", self.runs_root, str)
        try:
            json.dumps(self.to_dict())
        except (TypeError, ValueError) as exc:
            raise TypeError(f"config must be plain JSON (numbers, strings, lists, dicts): {exc}") from None


def _check_classes(classes: Any) -> None:
    """``train_classes``: None, or a non-empty list of distinct class indices >= 0 (whether each
    exists in the dataset is checked on the loaded data: ``TrainConfig._validate_classes``)."""
    if classes is None:
        return
    _check_type("train_classes", classes, (list, tuple))
    if not classes:
        raise ValueError("train_classes must list at least one class to train on (None: every class)")
    for c in classes:
        _check_int("train_classes entry", c, low=0)
    repeated = sorted({c for c in classes if list(classes).count(c) > 1})
    if repeated:
        raise ValueError(f"train_classes lists class(es) {repeated} more than once: {list(classes)}")


def _check_type(name: str, value: Any, kinds: Any) -> None:
    if not isinstance(value, kinds) or isinstance(value, bool) and bool not in _as_tuple(kinds):
        expected = " or ".join(k.__name__ for k in _as_tuple(kinds))
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__} ({value!r})")


def _as_tuple(kinds: Any) -> tuple:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _check_choice(name: str, value: Any, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")


def _check_int(name: str, value: Any, low: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} ({value!r})")
    if low is not None and value < low:
        raise ValueError(f"{name} must be at least {low}, got {value}")


def _check_number(name, value, low=None, high=None, low_open=False, high_open=False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} ({value!r})")
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or low_open and value == low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value > high or high_open and value == high):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value}")
