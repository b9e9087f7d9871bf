"""A model's weights as an ordinary model of the same architecture holds them.

A run whose hook reparametrises weights (``torch.nn.utils.parametrize``: k-means codebooks, fake
quantization, pruning masks kept as parametrizations) saves ``fc1.parametrizations.weight.original``
and the parametrization's buffers, not ``fc1.weight``: a plain model built from the run's config
cannot load that, so such a run could not be a teacher, be measured for speed or be compared. The
trainer therefore also saves the *effective* weights (each parametrised tensor evaluated, the
rest as they are) under ``"effective_model"``, and :func:`plain_model_state` picks them. The engine
needs no knowledge of which method parametrised what.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize


def effective_state_dict(model: nn.Module) -> dict[str, torch.Tensor] | None:
    """The state dict an unparametrised copy of ``model`` would have (each parametrised tensor as it is
    computed now), or None when nothing in ``model`` is parametrised."""
    parametrised = [(name, module) for name, module in model.named_modules() if parametrize.is_parametrized(module)]
    if not parametrised:
        return None
    state = {key: value for key, value in model.state_dict().items() if ".parametrizations." not in f".{key}"}
    with torch.no_grad():
        for name, module in parametrised:
            for tensor_name in module.parametrizations:
                key = f"{name}.{tensor_name}" if name else tensor_name
                state[key] = getattr(module, tensor_name).detach().clone()
    return state


def plain_model_state(checkpoint: dict[str, Any], where: str) -> dict[str, torch.Tensor]:
    """The weights a plain model of the run's architecture loads from ``checkpoint``: the effective
    weights where the run was parametrised, else its model state. A parametrised checkpoint saved
    before effective weights were kept gets a ``ValueError`` that says so."""
    if checkpoint.get("effective_model") is not None:
        return checkpoint["effective_model"]
    state = checkpoint["model"]
    if any(".parametrizations." in f".{key}" for key in state):
        raise ValueError(f"the checkpoint of {where} holds reparametrised weights (a quantization or codebook run) "
                         "saved without their effective values; continue the run for a step (it then saves them) "
                         "or load it with the method that trained it")
    return state
