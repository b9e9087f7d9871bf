"""Any ``nn.Module`` as a kdviz ``FeatureModel``: named features from forward hooks, layers listed.

``wrap(model, input_shape=(1, 28, 28))`` gives a model every kdviz view accepts: FSP (Yim et al.
2017), FitNets hints (Romero et al. 2015) and attention transfer (Zagoruyko & Komodakis 2017) tap
its ``feature_names`` through ``forward_with_features``; magnitude pruning (Han et al. 2015) and
k-means or uniform quantization (Han et al. 2016) find its Linear and Conv weights by module name.

Why hooks: the user's ``forward`` stays untouched. ``forward_with_features`` registers one forward
hook per named layer for the duration of one call (``torch.nn.Module.register_forward_hook``),
keeps each layer's output, and removes the hooks, so a plain ``forward`` costs nothing extra.

Why the wrapper *adopts* the model's children instead of holding the model as one submodule: the
names stay the user's own (``features.0.weight``, not ``net.features.0.weight``), so a state dict
saved from the bare model (a ``.safetensors`` file, say) loads into the wrapper, and pruning tables
name the layers as the user's code does. The wrapper shares the modules: pruning it prunes the model.

Default features (``layers=None``): the output of every Linear and Conv2d layer, in the order they
run on a traced forward pass, except the layer that produces the logits; outputs that are not
(B, D) or (B, C, H, W) tensors are skipped. ``nn.Dropout`` modules are replaced by kdviz's
``SeededDropout`` (same ``p``, same maths), so a run's dropout masks come from its own generator.

For the engine (which builds a fresh model per run from a name), ``register_wrapped(name, build)``
registers a builder in the model registry: ``TrainConfig(model=name)`` then trains it.
"""
from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .base import FeatureModel
from .dropout import SeededDropout
from .registry import MODELS

FEATURE_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv2d)
_RESERVED = {"inner", "input_shape", "num_classes", "feature_names", "forward", "forward_with_features", "training"}


class WrappedModel(FeatureModel):
    """A user's ``nn.Module`` with named features (see the module docstring). Build with :func:`wrap`."""

    def __init__(self, model: nn.Module, feature_names: Sequence[str], input_shape: tuple[int, int, int],
                 num_classes: int) -> None:
        super().__init__(input_shape, num_classes)
        object.__setattr__(self, "inner", model)  # not a submodule: its children are adopted below
        for name, child in model.named_children():
            if name in _RESERVED or hasattr(FeatureModel, name):
                raise ValueError(f"wrap: the model's submodule is named {name!r}, a name kdviz's FeatureModel uses "
                                 f"itself; rename it (reserved: {', '.join(sorted(_RESERVED))})")
            self.add_module(name, child)
        for name, param in model.named_parameters(recurse=False):
            self.register_parameter(name, param)
        for name, buffer in model.named_buffers(recurse=False):
            self.register_buffer(name, buffer, persistent=name not in model._non_persistent_buffers_set)
        self.feature_names = tuple(feature_names)
        self._feature_modules = {name: model.get_submodule(name) for name in self.feature_names}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits and ``{name: output of that layer}`` in ``feature_names`` order (a layer that runs
        twice gives its last output)."""
        captured: dict[str, torch.Tensor] = {}

        def keeper(name: str):
            def keep(module: nn.Module, inputs: tuple, output) -> None:
                captured[name] = output
            return keep

        handles = [module.register_forward_hook(keeper(name)) for name, module in self._feature_modules.items()]
        try:
            logits = self.inner(x)
        finally:
            for handle in handles:
                handle.remove()
        missing = [name for name in self.feature_names if name not in captured]
        if missing:
            raise ValueError(f"wrapped model: layer(s) {missing} did not run in this forward pass, so they have no feature")
        return logits, {name: _as_feature(name, captured[name]) for name in self.feature_names}

    def train(self, mode: bool = True) -> "WrappedModel":
        super().train(mode)
        self.inner.training = mode  # the model's own flag (its forward may read self.training)
        return self

    def _apply(self, fn, recurse: bool = True):
        super()._apply(fn, recurse)
        # .to()/.cuda() may replace tensors held directly by the model: keep the model's dicts pointing at ours
        for name in self.inner._parameters:
            self.inner._parameters[name] = self._parameters[name]
        for name in self.inner._buffers:
            self.inner._buffers[name] = self._buffers[name]
        return self

    def prunable_layers(self) -> list[str]:
        """The weights magnitude pruning acts on (``kdviz.prune.prunable_weights``), e.g. ``["0.weight"]``."""
        from ..prune.masks import prunable_weights

        return list(prunable_weights(self))

    def quantizable_layers(self) -> list[str]:
        """The layers weight quantization acts on (``kdviz.quant.kmeans.quantizable_layers``)."""
        from ..quant.kmeans import quantizable_layers

        return list(quantizable_layers(self))

    def describe(self) -> str:
        """One paragraph: the features, prunable weights and quantizable layers, for notebooks and logs."""
        return (f"{type(self.inner).__name__} on {'x'.join(map(str, self.input_shape))} images, {self.num_classes} classes. "
                f"Features: {', '.join(self.feature_names) or 'none'}. Prunable weights: {', '.join(self.prunable_layers())}. "
                f"Quantizable layers: {', '.join(self.quantizable_layers())}.")


def _as_feature(name: str, output) -> torch.Tensor:
    if not isinstance(output, torch.Tensor):
        raise ValueError(f"wrapped model: layer {name!r} returns {type(output).__name__}, not a tensor; "
                         "choose a layer whose output is a tensor")
    if output.ndim not in (2, 4):
        raise ValueError(f"wrapped model: layer {name!r} outputs shape {tuple(output.shape)}; kdviz features are "
                         "(B, D) or (B, C, H, W): choose another layer")
    return output


def _seed_dropouts(model: nn.Module) -> int:
    """Replace every ``nn.Dropout`` (1-D use) in ``model`` by ``SeededDropout`` of the same ``p``."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                setattr(parent, name, SeededDropout(child.p))
                replaced += 1
    return replaced


def _trace(model: nn.Module, input_shape: tuple[int, int, int]) -> tuple[torch.Tensor, list[tuple[str, torch.Tensor]]]:
    """One eval-mode forward pass of zeros (batch 2): the logits and every module's output, in run order."""
    order: list[tuple[str, object]] = []
    handles = [module.register_forward_hook(lambda m, i, o, name=name: order.append((name, o)))
               for name, module in model.named_modules() if name]
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(torch.zeros(2, *input_shape, device=device))
    except Exception as exc:  # the user's forward: any error, said in words
        raise ValueError(f"wrap: the model failed on a batch of shape (2, {', '.join(map(str, input_shape))}): "
                         f"{type(exc).__name__}: {exc}. Is input_shape (C, H, W) right?") from None
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"wrap: the model must return logits of shape (B, classes); it returned {shape}")
    return logits, order


def _default_features(model: nn.Module, order: list[tuple[str, object]], logits: torch.Tensor) -> list[str]:
    names = []
    for name, output in order:
        module = model.get_submodule(name)
        if not isinstance(module, FEATURE_TYPES) or name in names or output is logits:
            continue
        if isinstance(output, torch.Tensor) and output.ndim in (2, 4):
            names.append(name)
    return names


def wrap(model: nn.Module, layers: Sequence[str] | None = None, input_shape: Sequence[int] | None = None,
         num_classes: int | None = None) -> WrappedModel:
    """``model`` as a kdviz ``FeatureModel`` (see the module docstring).

    ``layers``: submodule names whose outputs are the features (``model.named_modules()`` names), in
    forward order; None: every Linear and Conv2d output but the logits. ``input_shape``: (C, H, W) of
    one image (required: one forward pass is traced to check the layers). ``num_classes``: checked
    against the logits' width; None: read from it. A ``FeatureModel`` is returned as it is.
    """
    if isinstance(model, FeatureModel) and layers is None:
        return model  # type: ignore[return-value]
    if not isinstance(model, nn.Module):
        raise TypeError(f"wrap expects a torch.nn.Module, got {type(model).__name__}")
    if input_shape is None:
        raise ValueError("wrap needs input_shape=(C, H, W) of one image, e.g. (1, 28, 28): kdviz runs one forward "
                         "pass to find the features and the number of classes")
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be (C, H, W) with positive sizes, got {tuple(input_shape)}")
    _seed_dropouts(model)
    logits, order = _trace(model, shape)
    classes = int(logits.shape[1])
    if num_classes is not None and int(num_classes) != classes:
        raise ValueError(f"wrap: num_classes={num_classes} but the model outputs {classes} logits per image")
    ran = {name: output for name, output in order}
    if layers is None:
        names = _default_features(model, order, logits)
    else:
        names = [str(n) for n in layers]
        known = [n for n, _ in model.named_modules() if n]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"wrap: no layer named {unknown} in the model (its layers: {', '.join(known)})")
        for name in names:
            if name not in ran:
                raise ValueError(f"wrap: layer {name!r} did not run in the model's forward pass, so it has no output")
            _as_feature(name, ran[name])
    return WrappedModel(model, names, shape, classes)


# ---- builders the engine can name ----------------------------------------------------------------
_BUILDERS: dict[str, tuple[Callable[..., nn.Module], tuple[str, ...] | None]] = {}
_BUILDERS_LOCK = threading.Lock()


def register_wrapped(name: str, build: Callable[..., nn.Module], layers: Sequence[str] | None = None) -> str:
    """Register ``build`` so ``TrainConfig(model=name)`` trains a fresh, wrapped copy per run.

    ``build`` takes no argument or ``(input_shape, num_classes)`` and returns the ``nn.Module``.
    Registering the same name again (a notebook cell run twice) replaces the builder; a zoo name is
    refused. The builder lives in this process only: a CLI or a resumed run in another process needs
    it registered there too (the error then says so). Returns ``name``."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("register_wrapped needs a non-empty model name")
    if not callable(build):
        raise TypeError(f"register_wrapped: build must be callable, got {type(build).__name__}")
    with _BUILDERS_LOCK:
        if name not in _BUILDERS and name in MODELS:
            raise ValueError(f"model name {name!r} is already a kdviz model; choose another name")
        first = name not in _BUILDERS
        _BUILDERS[name] = (build, None if layers is None else tuple(layers))
    if first:
        MODELS.register(name)(lambda input_shape, num_classes, **options: _build_registered(name, input_shape, num_classes, options))
    return name


def registered_wrapped() -> list[str]:
    """The model names registered with :func:`register_wrapped` in this process."""
    with _BUILDERS_LOCK:
        return sorted(_BUILDERS)


def _build_registered(name: str, input_shape, num_classes: int, options: dict) -> WrappedModel:
    if options:
        raise ValueError(f"model {name!r} (registered with register_wrapped) takes no model_options, got {sorted(options)}")
    with _BUILDERS_LOCK:
        build, layers = _BUILDERS[name]
    takes_shape = len(inspect.signature(build).parameters) >= 2
    model = build(tuple(input_shape), int(num_classes)) if takes_shape else build()
    return wrap(model, layers=layers, input_shape=input_shape, num_classes=num_classes)


__all__ = ["WrappedModel", "register_wrapped", "registered_wrapped", "wrap"]
