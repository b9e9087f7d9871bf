"""Explicit pruning masks: one boolean mask per weight parameter, saved and restored with the model.

Distiller's design (IntelLabs/distiller, ``ParameterMasker``): a mask is a plain object next to the
model, not a reparametrisation of it. ``True`` means *kept*, ``False`` means *pruned*. After every
optimizer step the masks are re-applied (``masks.apply(model)``), so a pruned weight stays exactly
zero while the others are fine-tuned (Han et al. 2015, section 3.2: "retraining" with the pruned
connections fixed at zero).

We deliberately avoid ``torch.nn.utils.prune``: it replaces ``weight`` by ``weight_orig`` and
``weight_mask`` in the state dict, and users of several tools report pruned models that "un-prune"
after a reload. Here a checkpoint holds the ordinary model state dict plus a dict of bool tensors
(``save_pruned`` / ``load_pruned``), written as a safetensors file (``models.checkpoint_io``: loading
it runs no code); files an older kdviz wrote with ``torch.save`` still load, with
``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..models.checkpoint_io import CheckpointUnreadable, read_state, write_state

# Layers whose ``weight`` is prunable: fully connected and 2-D convolutional layers.
PRUNABLE_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv2d)


def prunable_weights(model: nn.Module, names: Iterable[str] | None = None) -> dict[str, nn.Parameter]:
    """The ``weight`` parameters of the model's Linear and Conv2d layers, keyed by parameter name
    (``"fc1.weight"``), in module order. ``names`` restricts them (each must exist).

    Raises ``TypeError`` for a non-module and ``ValueError`` when nothing is prunable.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(model).__name__}")
    found = {
        f"{module_name}.weight" if module_name else "weight": module.weight
        for module_name, module in model.named_modules()
        if isinstance(module, PRUNABLE_TYPES)
    }
    if not found:
        raise ValueError(
            f"model {type(model).__name__} has no prunable layers (no nn.Linear or nn.Conv2d weights)"
        )
    if names is None:
        return found
    names = list(names)
    unknown = [n for n in names if n not in found]
    if unknown:
        raise ValueError(f"not prunable weights of this model: {unknown} (prunable: {list(found)})")
    return {n: found[n] for n in names}


def layer_name(param_name: str) -> str:
    """``"fc1.weight"`` -> ``"fc1"``: the layer a weight belongs to, for tables and charts."""
    return param_name[: -len(".weight")] if param_name.endswith(".weight") else param_name


class PruningMasks:
    """One boolean mask per parameter name (``True`` = kept). Shapes are checked against the model.

    >>> masks = PruningMasks.dense(model)          # nothing pruned yet
    >>> masks.apply(model)                         # zero every pruned weight, in place
    >>> save_pruned(model, masks, "pruned.safetensors")  # weights and plain bool masks
    """

    def __init__(self, masks: Mapping[str, torch.Tensor]) -> None:
        if not isinstance(masks, Mapping):
            raise TypeError(f"masks must be a mapping of parameter name -> bool tensor, got {type(masks).__name__}")
        self._masks: dict[str, torch.Tensor] = {}
        for name, mask in masks.items():
            self._masks[str(name)] = _as_bool_mask(name, mask)

    @classmethod
    def dense(cls, model: nn.Module, names: Iterable[str] | None = None) -> "PruningMasks":
        """All-``True`` masks for the model's prunable weights (or the named ones)."""
        return cls({n: torch.ones_like(p, dtype=torch.bool) for n, p in prunable_weights(model, names).items()})

    # -- mapping-like access -------------------------------------------------------------------
    def __getitem__(self, name: str) -> torch.Tensor:
        return self._masks[name]

    def __contains__(self, name: object) -> bool:
        return name in self._masks

    def __iter__(self) -> Iterator[str]:
        return iter(self._masks)

    def __len__(self) -> int:
        return len(self._masks)

    def names(self) -> list[str]:
        return list(self._masks)

    def items(self):
        return self._masks.items()

    def copy(self) -> "PruningMasks":
        return PruningMasks({n: m.clone() for n, m in self._masks.items()})

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}: {s:.1%}" for n, s in self.sparsity().items())
        return f"PruningMasks({parts}; overall {self.overall_sparsity():.1%} pruned)"

    # -- the model ---------------------------------------------------------------------------
    def validate(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """Check every mask names a parameter of ``model`` with the same shape; return those parameters."""
        params = dict(model.named_parameters())
        for name, mask in self._masks.items():
            if name not in params:
                raise ValueError(f"mask for {name!r} matches no parameter of {type(model).__name__} (parameters: {list(params)})")
            if tuple(mask.shape) != tuple(params[name].shape):
                raise ValueError(
                    f"mask for {name!r} has shape {tuple(mask.shape)} but the model's parameter has shape "
                    f"{tuple(params[name].shape)}"
                )
        return {n: params[n] for n in self._masks}

    def apply(self, model: nn.Module) -> nn.Module:
        """Zero every pruned weight of ``model`` in place (and return it). Call after each optimizer step."""
        params = self.validate(model)
        with torch.no_grad():
            for name, param in params.items():
                param.masked_fill_(~self._masks[name].to(param.device), 0.0)
        return model

    # -- statistics ----------------------------------------------------------------------------
    def kept(self) -> dict[str, int]:
        return {n: int(m.sum()) for n, m in self._masks.items()}

    def sparsity(self) -> dict[str, float]:
        """Fraction of pruned weights per parameter."""
        return {n: 1.0 - int(m.sum()) / m.numel() for n, m in self._masks.items()}

    def overall_sparsity(self) -> float:
        """Fraction of pruned weights over all masked parameters together."""
        total = sum(m.numel() for m in self._masks.values())
        return 1.0 - sum(int(m.sum()) for m in self._masks.values()) / total if total else 0.0

    # -- persistence ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Plain bool tensors (safe for ``torch.load(..., weights_only=True)``)."""
        return {n: m.clone() for n, m in self._masks.items()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Replace the masks by ``state``; names and shapes must match the current masks."""
        incoming = PruningMasks(state)
        if set(incoming.names()) != set(self._masks):
            raise ValueError(f"mask names differ: have {sorted(self._masks)}, got {sorted(incoming.names())}")
        for name, mask in incoming.items():
            if mask.shape != self._masks[name].shape:
                raise ValueError(
                    f"mask for {name!r} has shape {tuple(mask.shape)} but the current mask has shape "
                    f"{tuple(self._masks[name].shape)}"
                )
        self._masks = dict(incoming.items())


def _as_bool_mask(name: object, mask: object) -> torch.Tensor:
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask for {name!r} must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dtype == torch.bool:
        return mask.detach().clone()
    if mask.is_floating_point() or mask.is_complex() or not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError(f"mask for {name!r} must be bool (or integer 0/1), got dtype {mask.dtype}")
    return mask.detach().to(torch.bool)


def save_pruned(model: nn.Module, masks: PruningMasks, path: str | os.PathLike) -> Path:
    """Write the model's weights and its masks to ``path`` as a safetensors file (atomically: temp
    file, then rename); ``.safetensors`` is the usual suffix.

    The file holds ``{"model": state_dict, "masks": {name: bool tensor}}``, tensors only (tensors
    named ``model/<param>`` and ``masks/<param>``; tied weights are stored once each).
    """
    masks.validate(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_state(path, {"model": model.state_dict(), "masks": masks.state_dict()})


def load_pruned(model: nn.Module, path: str | os.PathLike) -> PruningMasks:
    """Load weights and masks saved by ``save_pruned`` into ``model``, re-apply the masks, return them.

    The masks are re-applied on load, so even a file whose weights were edited after pruning
    comes back pruned; keep the returned masks and call ``masks.apply(model)`` after each
    optimizer step to keep it that way.

    Only plain tensors are read (a safetensors file, or an older ``torch.save`` file with
    ``weights_only=True``): a file holding anything else, such as a pickle that would run code, is a
    ``ValueError`` "<file> is not a plain-tensor checkpoint and was not loaded", and nothing in it runs.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        saved = read_state(path, map_location="cpu")
    except CheckpointUnreadable as err:  # never torch's text, which suggests weights_only=False
        if err.kind == "code":
            raise ValueError(f"{path} is not a plain-tensor checkpoint and was not loaded") from None
        raise ValueError(f"{path} is not a readable checkpoint (damaged or truncated) and was not loaded "
                         f"({err.kind})") from None
    if not isinstance(saved, dict) or set(saved) != {"model", "masks"}:
        raise ValueError(f"{path} is not a kdviz pruned checkpoint (expected keys 'model' and 'masks')")
    masks = PruningMasks(saved["masks"])
    masks.validate(model)
    model.load_state_dict(saved["model"])
    masks.apply(model)
    return masks


def downsample_mask(mask: np.ndarray, max_side: int) -> tuple[np.ndarray, tuple[int, int]]:
    """A 2-D bool mask as uint8 percent kept per cell, block-averaged to at most ``max_side`` per axis.

    Returns the grid and the block size (rows, columns); a block at the edge may be smaller and its
    percentage is over its own cells."""
    if isinstance(max_side, bool) or not isinstance(max_side, (int, np.integer)) or max_side < 1:
        raise ValueError(f"max_side must be a positive integer (cells per axis), got {max_side!r}")
    m = np.asarray(mask, dtype=np.float64)
    m = m.reshape(m.shape[0], -1)
    br, bc = max(1, math.ceil(m.shape[0] / max_side)), max(1, math.ceil(m.shape[1] / max_side))
    rows, cols = np.arange(0, m.shape[0], br), np.arange(0, m.shape[1], bc)
    sums = np.add.reduceat(np.add.reduceat(m, rows, axis=0), cols, axis=1)
    counts = np.outer(np.diff(np.append(rows, m.shape[0])), np.diff(np.append(cols, m.shape[1])))
    return np.rint(100.0 * sums / counts).astype(np.uint8), (br, bc)
