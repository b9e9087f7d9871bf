"""Training hooks: how a method plugs into the one training engine without touching its loop.

A hook is named in the run config (``hooks=[{"name": <hook>, <option>: <value>}]``) and built from
the ``HOOKS`` registry, so configs stay plain JSON and a run folder can be replayed. The engine
calls, in order, for every run:

    load_state_dict(state)           when resuming, before setup
    setup(ctx)                       once, after the model, teacher and optimizer exist
    extra_parameters()               once, after setup: trainable extras (adapters, built in setup),
                                     added to the optimizer as one more parameter group
    per step:  loss_terms(ctx, batch) -> {name: 0-d tensor}, each added to the total loss and logged
               after_step(ctx)       after optimizer.step() (e.g. re-apply pruning masks)
    per evaluation: metrics(ctx) -> {name: float}, logged with the evaluation
    per snapshot:   snapshot(ctx) -> {name: numpy array}, stored with the snapshot
    checkpoints:    state_dict() / load_state_dict(state): tensors and plain values (the tensors go in the
                                     run's safetensors checkpoint, the rest in its JSON metadata)

If ``needs_features`` is true, the engine runs the student (and teacher, if any) with
``forward_with_features`` and passes the named features in the ``StepBatch``.

Options are typed by the hook's ``__init__`` signature: ``hook_options(cls)`` lists each option's
name, type and default, and ``validate_hook_spec`` (called by ``TrainConfig.validate``, so by
``start()`` before any run folder is written) rejects an unknown or misspelt option, a missing
required one and a value of the wrong type with a ``ValueError`` naming it, then builds the hook
once so its own range checks run too. The hooks themselves live in ``kdviz.methods``; ``HOOKS``
loads them on first lookup (``kdviz.engine.plugins``).
"""
from __future__ import annotations

import collections.abc as cabc
import inspect
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..registry import Registry
from .plugins import load_plugins


@dataclass
class TrainContext:
    """What a hook may read (and, for the model, change) during training."""

    model: nn.Module
    teacher: nn.Module | None
    config: Any  # TrainConfig
    dataset: Any  # DatasetBundle
    device: torch.device
    optimizer: torch.optim.Optimizer | None = None
    step: int = 0
    epoch: int = 0
    total_steps: int = 0


@dataclass
class StepBatch:
    """One training step's inputs and the student's (and teacher's) outputs."""

    images: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor
    logits: torch.Tensor
    features: dict[str, torch.Tensor] | None = None
    teacher_logits: torch.Tensor | None = None
    teacher_features: dict[str, torch.Tensor] | None = field(default=None)


class TrainingHook:
    """Base class: every method is optional; override what the method needs."""

    needs_features: bool = False

    def setup(self, ctx: TrainContext) -> None:
        pass

    def extra_parameters(self) -> list[nn.Parameter]:
        return []

    def loss_terms(self, ctx: TrainContext, batch: StepBatch) -> dict[str, torch.Tensor]:
        return {}

    def after_step(self, ctx: TrainContext) -> None:
        pass

    def metrics(self, ctx: TrainContext) -> dict[str, float]:
        return {}

    def snapshot(self, ctx: TrainContext) -> dict[str, np.ndarray]:
        return {}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        pass


HOOKS: Registry = Registry("training hook", discover=load_plugins)


@dataclass(frozen=True)
class HookOption:
    """One option of a hook, read from its ``__init__`` signature."""

    name: str
    annotation: Any  # a type, a Union/Optional, or Any
    default: Any = inspect.Parameter.empty

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty

    @property
    def type_name(self) -> str:
        """The annotation as a reader writes it (``float | Mapping[str, float]``)."""
        return _type_name(self.annotation)

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` (plain JSON) fits the annotation; ints count as floats, bools only as bools."""
        return _fits(value, self.annotation)


def _signature_target(cls: Any) -> Any:
    return cls.__init__ if isinstance(cls, type) else cls


def hook_options(cls: Any) -> dict[str, HookOption]:
    """The typed options of a hook class (or factory), from its ``__init__`` signature, in order."""
    target = _signature_target(cls)
    hints = typing.get_type_hints(target)
    out = {}
    for name, param in inspect.signature(target).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        out[name] = HookOption(name, hints.get(name, Any), param.default)
    return out


def _takes_any_option(cls: Any) -> bool:
    params = inspect.signature(_signature_target(cls)).parameters.values()
    return any(p.kind is p.VAR_KEYWORD for p in params)


def _fits(value: Any, annotation: Any) -> bool:
    if annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    kind = origin or annotation
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in (list, tuple, cabc.Sequence):
        return isinstance(value, (list, tuple))
    if kind in (dict, cabc.Mapping):
        return isinstance(value, dict)
    return isinstance(value, kind) if isinstance(kind, type) else True


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("collections.abc.", "").replace("NoneType", "None")


def check_hook_options(name: str, options: dict[str, Any]) -> type:
    """The hook class registered as ``name``, after checking ``options`` against its typed options:
    a ``ValueError`` names an unknown key (with the known ones), a missing required option or a
    value of the wrong type."""
    cls = HOOKS.get(name)
    known = hook_options(cls)
    unknown = [] if _takes_any_option(cls) else sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"hook {name!r} has no option(s) {', '.join(map(repr, unknown))} "
                         f"(known: {', '.join(known) or 'none'})")
    missing = [o.name for o in known.values() if o.required and o.name not in options]
    if missing:
        raise ValueError(f"hook {name!r} needs the option(s) {', '.join(map(repr, missing))}")
    for key, value in options.items():
        if key in known and not known[key].accepts(value):
            raise ValueError(f"hook {name!r}: option {key!r} must be {_type_name(known[key].annotation)}, "
                             f"got {type(value).__name__} ({value!r})")
    return cls


def build_hook(spec: dict) -> TrainingHook:
    """Build a hook from its config entry ``{"name": ..., **options}`` (options checked first)."""
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ValueError(f"a hook entry must be a dict with a 'name', got {spec!r}")
    options = {k: v for k, v in spec.items() if k != "name"}
    cls = check_hook_options(spec["name"], options)
    try:
        return cls(**options)
    except TypeError as exc:
        raise ValueError(f"bad options for hook {spec['name']!r}: {exc}") from None


def validate_hook_spec(spec: dict) -> None:
    """Check a config's hook entry as ``start()`` must: typed options, then the hook's own checks."""
    build_hook(spec)


def hook_labels(specs: list[dict]) -> list[str]:
    """The label of each hook entry: its name, or ``name<i>`` (``i`` its index in the list) when the
    list names that hook more than once. Metrics and snapshot arrays are stored under
    ``"<label>/<key>"``; readers find a hook's label here instead of guessing it."""
    names = [spec.get("name") for spec in specs]
    return [n if names.count(n) == 1 else f"{n}{i}" for i, n in enumerate(names)]


def labels_of_hook(specs: list[dict], name: str) -> list[str]:
    """The labels under which the hook ``name`` stores its data in a run with these hook entries."""
    return [label for label, spec in zip(hook_labels(specs), specs) if spec.get("name") == name]
