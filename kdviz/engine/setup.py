"""Everything a run needs before its first step: device, data, model, teacher, hooks, optimizer."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from ..data import DatasetBundle, load_dataset
from ..data.bundle import balanced_subset
from ..models import INIT_LOCK, build_model
from ..models.device import resolve_device  # noqa: F401  (re-exported: the engine's callers import it from here)
from .config import TrainConfig
from .hooks import TrainContext, TrainingHook, build_hook, hook_labels
from .optim import build_optimizer
from .teacher_cache import load_teacher, load_trained_model

_DATA_LOCK = threading.Lock()
HOOK_SEED_OFFSET = 104_729  # hooks' setup draws start from seed + this (any fixed number apart from 0)


@lru_cache(maxsize=4)
def _load_dataset_cached(name: str, root: str | None) -> DatasetBundle:
    return load_dataset(name, root=root)


def full_dataset(config: TrainConfig) -> DatasetBundle:
    """The run's whole dataset (every class, every image), loaded once per process and shared."""
    root = str(Path(config.data_root).expanduser()) if config.data_root else None
    with _DATA_LOCK:
        return _load_dataset_cached(config.dataset, root)


def dataset_for(config: TrainConfig) -> DatasetBundle:
    """The run's dataset, loaded once per process and shared (read-only) by all jobs; with
    ``train_classes`` set, only those classes' training images (the test set keeps every class);
    with ``train_subset`` set, a class-balanced training subset of those for the run's seed."""
    root = str(Path(config.data_root).expanduser()) if config.data_root else None
    dataset = full_dataset(config)
    where = f" in {root}" if root else ""
    if config.train_classes is not None:
        dataset = dataset.with_train_classes(config.train_classes)
    if config.train_subset is not None:
        dataset = dataset.with_train_subset(balanced_subset(dataset.train_labels, config.train_subset, config.seed))
    for split, labels in (("training", dataset.train_labels), ("test", dataset.test_labels)):
        if len(labels) == 0:
            raise ValueError(f"dataset {config.dataset!r}{where} has no {split} images (its {split} split is empty); "
                             f"a run needs at least one {split} image: check the data files")
    return dataset


def steps_per_epoch(config: TrainConfig, batch_size: int | None = None) -> int:
    """Optimizer steps in one epoch of ``config``'s training set at ``batch_size`` (default: the
    config's); the last batch may be short. The trainer and every config builder count with this."""
    return -(-len(dataset_for(config).train_labels) // (batch_size or config.batch_size))


def build_hooks(specs: list[dict]) -> list[tuple[str, TrainingHook]]:
    """(label, hook) per config entry; the label (``hooks.hook_labels``) is the hook's name,
    numbered if it repeats. Hooks create their extra parameters on ``ctx.device`` in ``setup``."""
    return [(label, build_hook(spec)) for label, spec in zip(hook_labels(specs), specs)]


@dataclass
class RunParts:
    device: torch.device
    dataset: DatasetBundle
    model: nn.Module
    teacher: nn.Module | None
    hooks: list[tuple[str, TrainingHook]]
    optimizer: torch.optim.Optimizer
    ctx: TrainContext


def build_run(config: TrainConfig, total_steps: int, resume_state: dict | None = None) -> RunParts:
    """Build the run's parts in the order ``hooks.py`` documents: model and teacher, the optimizer
    over the model's parameters, ``hook.setup(ctx)`` (``ctx.optimizer`` set, so a hook may add
    parameter groups), then ``hook.extra_parameters()`` (built in setup, e.g. from feature shapes),
    added to the optimizer as one more parameter group.

    Resuming (``resume_state`` is a checkpoint): hooks get their state before ``setup`` (so setup
    rebuilds masks or codebooks from it) and ``ctx.step`` is the checkpoint's step; the model and
    optimizer states are loaded after setup, when the model has the same structure as when saved.
    """
    device = resolve_device(config.device)
    dataset = dataset_for(config)
    with INIT_LOCK:  # the global RNG is shared by threads: seed and initialise in one go
        torch.manual_seed(config.seed)
        model = build_model(config.model, input_shape=dataset.input_shape, num_classes=dataset.num_classes, **config.model_options)
    if config.init_from and resume_state is None:
        model.load_state_dict(load_trained_model(config.init_from).state_dict())
    model.to(device).train()
    teacher = load_teacher(config.teacher, device) if config.teacher else None
    hooks = build_hooks(list(config.hooks))
    ctx = TrainContext(model=model, teacher=teacher, config=config, dataset=dataset, device=device, total_steps=total_steps)
    optimizer = build_optimizer([p for p in model.parameters() if p.requires_grad], config)
    ctx.optimizer = optimizer
    if resume_state is not None:
        ctx.step = int(resume_state["step"])
        for label, hook in hooks:
            hook.load_state_dict(resume_state.get("hooks", {}).get(label, {}))
    # Hooks draw at setup too (a hint regressor's initial weights, a probe batch): under the same lock,
    # from the global generator seeded by the run's seed (offset, so they do not repeat the model's
    # draws) and restored afterwards, so a rerun repeats them however many jobs start at once.
    with INIT_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed + HOOK_SEED_OFFSET)
        for _, hook in hooks:
            hook.setup(ctx)
    present = {id(p) for group in optimizer.param_groups for p in group["params"]}
    extras: list[nn.Parameter] = []
    for label, hook in hooks:
        for p in hook.extra_parameters():
            if not isinstance(p, nn.Parameter):
                raise TypeError(f"hook {label!r}: extra_parameters() must return nn.Parameter objects")
            if id(p) not in present:
                present.add(id(p))
                extras.append(p)
    if extras:
        optimizer.add_param_group({"params": extras})
    if resume_state is not None:
        load_resume_state(model, optimizer, resume_state, config)
    return RunParts(device, dataset, model, teacher, hooks, optimizer, ctx)


def load_resume_state(model: nn.Module, optimizer: torch.optim.Optimizer, state: dict, config: TrainConfig) -> None:
    """Load a checkpoint's model and optimizer states; one that does not fit (another model, other
    options, other hooks) is a ``ValueError`` saying so, not torch's raw ``RuntimeError``."""
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
        first = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise ValueError(f"the checkpoint does not fit this run's model {config.model!r} (options {config.model_options}, "
                         f"{len(config.hooks)} hook(s)): {first}; it was not loaded") from None
