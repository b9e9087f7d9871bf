"""Models described by a small JSON spec: a list of layers, registered as the model ``"spec"``.

    [{"conv": 16, "kernel": 3}, {"pool": 2}, {"conv": 32}, {"pool": 2}, {"linear": 64}, {"dropout": 0.2}]

``TrainConfig(model="spec", model_options={"layers": [...]})`` trains it, so a run folder's
config.json alone rebuilds the architecture (no Python file to keep beside it). The classifier
(a Linear layer to the dataset's classes) is added at the end; the input is flattened before the
first ``linear``. Entries:

* ``{"conv": channels, "kernel": 3, "stride": 1, "padding": kernel // 2, "activation": "relu", "batchnorm": false}``
* ``{"pool": size, "kind": "max"}`` (``"max"`` or ``"avg"``)
* ``{"linear": units, "activation": "relu"}``
* ``{"dropout": p}`` (kdviz's ``SeededDropout``)

Activations: ``relu``, ``gelu``, ``tanh``, ``sigmoid``, ``none``. Conv layers are named ``conv1,
conv2...``, dense ones ``fc1, fc2...`` (the classifier is the last ``fc``), and every conv and
hidden dense layer's activated output is a feature, as in the zoo's models (``base.FeatureModel``),
so FSP, hints, attention transfer, pruning and quantization work on a spec model unchanged.
Every mistake is a ``ValueError`` naming the entry (``layer 3``) and the problem.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from .base import FeatureModel
from .dropout import SeededDropout
from .registry import MODELS

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "none": nn.Identity}
KINDS = {"conv": {"conv", "kernel", "stride", "padding", "activation", "batchnorm"},
         "pool": {"pool", "kind"}, "linear": {"linear", "activation"}, "dropout": {"dropout"}}
MAX_UNITS = 65_536


def _int(entry: dict, key: str, where: str, low: int = 1, default: int | None = None) -> int:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low or value > MAX_UNITS:
        raise ValueError(f"{where}: {key!r} must be an integer from {low} to {MAX_UNITS}, got {value!r}")
    return value


def _activation(entry: dict, where: str) -> nn.Module:
    name = entry.get("activation", "relu")
    if name not in ACTIVATIONS:
        raise ValueError(f"{where}: activation {name!r} is unknown (known: {', '.join(ACTIVATIONS)})")
    return ACTIVATIONS[name]()


def kind_of(entry: object, where: str) -> str:
    """Which layer an entry describes (``conv``, ``pool``, ``linear`` or ``dropout``); unknown keys refused."""
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: each layer is a JSON object such as {{\"conv\": 16}}, got {entry!r}")
    kinds = [k for k in KINDS if k in entry]
    if len(kinds) != 1:
        raise ValueError(f"{where}: name exactly one of {', '.join(KINDS)} in {entry!r}")
    unknown = sorted(set(entry) - KINDS[kinds[0]])
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown} for a {kinds[0]} layer (known: {sorted(KINDS[kinds[0]])})")
    return kinds[0]


class SpecModel(FeatureModel):
    """A network built from a layer list (see the module docstring)."""

    def __init__(self, input_shape, num_classes, layers: Sequence[dict]) -> None:
        super().__init__(input_shape, num_classes)
        if not isinstance(layers, (list, tuple)) or not layers:
            raise ValueError("spec: 'layers' must be a non-empty list of layer entries, e.g. [{\"conv\": 16}, {\"linear\": 64}]")
        self.plan: list[tuple[tuple[str, ...], str]] = []  # (module names applied in turn, feature name or "")
        shape = self.input_shape
        counts = {"conv": 0, "fc": 0, "pool": 0, "dropout": 0}
        for index, entry in enumerate(layers, 1):
            shape = self._add(entry, f"layer {index}", shape, counts)
        flat = shape[0] if len(shape) == 1 else shape[0] * shape[1] * shape[2]
        counts["fc"] += 1
        self.classifier_name = f"fc{counts['fc']}"
        self.add_module(self.classifier_name, nn.Linear(flat, num_classes))
        self.feature_names = tuple(name for _, name in self.plan if name)

    def _add(self, entry: object, where: str, shape: tuple, counts: dict) -> tuple:
        kind = kind_of(entry, where)
        if kind == "conv":
            if len(shape) == 1:
                raise ValueError(f"{where}: a conv layer cannot follow a linear layer (the image is flattened by then)")
            out, kernel = _int(entry, "conv", where), _int(entry, "kernel", where, default=3)
            stride = _int(entry, "stride", where, default=1)
            padding = _int(entry, "padding", where, low=0, default=kernel // 2)
            h, w = ((s + 2 * padding - kernel) // stride + 1 for s in shape[1:])
            if h < 1 or w < 1:
                raise ValueError(f"{where}: a {kernel}x{kernel} conv (stride {stride}, padding {padding}) does not fit "
                                 f"a {shape[1]}x{shape[2]} input")
            counts["conv"] += 1
            batchnorm = entry.get("batchnorm", False)
            if not isinstance(batchnorm, bool):
                raise ValueError(f"{where}: 'batchnorm' must be true or false, got {batchnorm!r}")
            name = f"conv{counts['conv']}"
            parts = {name: nn.Conv2d(shape[0], out, kernel, stride=stride, padding=padding)}
            parts.update({f"{name}_bn": nn.BatchNorm2d(out)} if batchnorm else {})
            self._step(name, {**parts, f"{name}_act": _activation(entry, where)})
            return (out, h, w)
        if kind == "pool":
            size = _int(entry, "pool", where)
            pool = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}.get(entry.get("kind", "max"))
            if pool is None:
                raise ValueError(f"{where}: pool kind must be 'max' or 'avg', got {entry.get('kind')!r}")
            if len(shape) == 1 or shape[1] // size < 1 or shape[2] // size < 1:
                raise ValueError(f"{where}: a {size}x{size} pool does not fit the {'x'.join(map(str, shape))} input it gets")
            counts["pool"] += 1
            self._step("", {f"pool{counts['pool']}": pool(size)})
            return (shape[0], shape[1] // size, shape[2] // size)
        if kind == "dropout":
            p = entry["dropout"]
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
                raise ValueError(f"{where}: dropout must be a number in [0, 1), got {p!r}")
            counts["dropout"] += 1
            self._step("", {f"dropout{counts['dropout']}": SeededDropout(float(p))})
            return shape
        units = _int(entry, "linear", where)
        flat = shape[0] if len(shape) == 1 else shape[0] * shape[1] * shape[2]
        counts["fc"] += 1
        name = f"fc{counts['fc']}"
        self._step(name, {f"{name}_flatten": nn.Flatten(), name: nn.Linear(flat, units), f"{name}_act": _activation(entry, where)})
        return (units,)

    def _step(self, feature: str, modules: dict[str, nn.Module]) -> None:
        for name, module in modules.items():
            self.add_module(name, module)
        self.plan.append((tuple(modules), feature))

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        features: dict[str, torch.Tensor] = {}
        for names, feature in self.plan:
            for name in names:
                x = getattr(self, name)(x)
            if feature:
                features[feature] = x
        return getattr(self, self.classifier_name)(x.flatten(1)), features


@MODELS.register("spec")
def build_spec_model(input_shape, num_classes, layers: Sequence[dict] = ()) -> SpecModel:
    """``model_options={"layers": [...]}``: see the module docstring."""
    return SpecModel(input_shape, num_classes, layers)


def read_spec(source: str | os.PathLike | list | dict) -> list[dict]:
    """The layer list of a spec: a JSON file, JSON text, a list, or ``{"layers": [...]}``. Each entry
    is checked (``kind_of``); shapes are checked when the model is built for a dataset."""
    where = "spec"
    data = source
    if isinstance(source, (str, os.PathLike)):
        text = str(source)
        if isinstance(source, os.PathLike) or not text.lstrip().startswith(("[", "{")):
            path = Path(source)
            if not path.is_file():
                raise ValueError(f"spec file {path} does not exist")
            where, text = f"spec file {path.name}", path.read_text(encoding="utf-8", errors="replace")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    if isinstance(data, dict):
        extra = sorted(set(data) - {"layers"})
        if extra:
            raise ValueError(f"{where}: unknown key(s) {extra}; a spec is a layer list or {{\"layers\": [...]}}")
        data = data.get("layers")
    if not isinstance(data, list) or not data:
        raise ValueError(f"{where}: expected a non-empty list of layers, e.g. [{{\"conv\": 16}}, {{\"pool\": 2}}, {{\"linear\": 64}}]")
    for index, entry in enumerate(data, 1):
        kind_of(entry, f"{where}, layer {index}")
    return data


__all__ = ["SpecModel", "build_spec_model", "kind_of", "read_spec"]
