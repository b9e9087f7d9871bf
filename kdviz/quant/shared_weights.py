"""Fine-tuning the shared centroids of k-means-quantized layers (Han et al. 2016, sec. 3.3).

After clustering, the index of every weight is fixed and only the codebook is trained. The
gradient of centroid C_k is the sum of the gradients of the weights in its cluster (eq. 3):

    dL/dC_k = sum_{i,j} dL/dW_ij * 1(I_ij = k).

We get exactly this from autograd: each layer's ``weight`` becomes a computed tensor,
``W = where(mask, C[I], 0)`` (a ``torch.nn.utils.parametrize`` parametrization). The backward of
the gather ``C[I]`` is a scatter-add of dL/dW into the centroids, which is eq. 3; pruned weights
(mask False) pass no gradient and stay exactly zero. Any optimizer then updates the centroids.

The float weight the layer had is kept by ``parametrize`` as ``parametrizations.weight.original``;
it is frozen (``requires_grad=False``) and unused. ``bake_shared_weights`` turns the layers back
into plain layers whose weights are the current shared values.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from .kmeans import SharedWeights


class SharedWeightParametrization(nn.Module):
    """``weight = where(mask, centroids[indices], 0)`` with trainable ``centroids`` (K,) and fixed
    ``indices`` (int64) and ``mask`` (bool) buffers of the weight's shape."""

    def __init__(self, shared: SharedWeights) -> None:
        super().__init__()
        self.centroids = nn.Parameter(shared.centroids.detach().clone().to(torch.float32))
        self.register_buffer("indices", shared.indices.detach().clone().long())
        self.register_buffer("mask", shared.mask.detach().clone().bool())
        self.bits = int(shared.bits)

    def forward(self, original: torch.Tensor) -> torch.Tensor:  # ``original`` is ignored on purpose
        shared = self.centroids[self.indices]
        return torch.where(self.mask, shared, torch.zeros((), dtype=shared.dtype, device=shared.device))

    def shared_weights(self) -> SharedWeights:
        """The current codebook, indices and mask as a detached ``SharedWeights``."""
        return SharedWeights(self.centroids.detach().clone(), self.indices.clone(), self.mask.clone(), self.bits)


def attach_shared_weights(module: nn.Module, shared: SharedWeights) -> SharedWeightParametrization:
    """Make ``module.weight`` the shared-weight tensor of ``shared``; returns the parametrization
    (whose ``centroids`` is the new trainable parameter). The old float weight is frozen."""
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"{type(module).__name__} has no weight tensor")
    if tuple(weight.shape) != shared.shape:
        raise ValueError(f"codebook indices have shape {shared.shape}, the weight {tuple(weight.shape)}")
    if parametrize.is_parametrized(module, "weight"):
        raise ValueError(f"{type(module).__name__}.weight already has a parametrization; bake or remove it first")
    p = SharedWeightParametrization(shared).to(weight.device)
    parametrize.register_parametrization(module, "weight", p, unsafe=True)
    module.parametrizations.weight.original.requires_grad_(False)
    return p


def attach_shared_model(model: nn.Module, shared: dict[str, SharedWeights]) -> dict[str, SharedWeightParametrization]:
    """``attach_shared_weights`` for each named layer (``{"fc1": SharedWeights, ...}``)."""
    modules = dict(model.named_modules())
    unknown = [n for n in shared if n not in modules]
    if unknown:
        raise ValueError(f"the model has no layers {unknown}")
    return {name: attach_shared_weights(modules[name], sw) for name, sw in shared.items()}


def shared_parametrization(module: nn.Module) -> SharedWeightParametrization | None:
    """The module's shared-weight parametrization, or None when its weight is a plain tensor."""
    if not parametrize.is_parametrized(module, "weight"):
        return None
    found = [p for p in module.parametrizations.weight if isinstance(p, SharedWeightParametrization)]
    return found[0] if found else None


def centroid_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The trainable centroids of every shared-weight layer, in module order."""
    out = []
    for m in model.modules():
        p = shared_parametrization(m)
        if p is not None:
            out.append(p.centroids)
    return out


def bake_shared_weights(model: nn.Module) -> nn.Module:
    """Replace every shared-weight parametrization by a plain ``weight`` parameter holding the
    current shared values (in place; returns ``model``), e.g. before saving a plain state dict."""
    for m in model.modules():
        if shared_parametrization(m) is not None:
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
            m.weight.requires_grad_(True)
    return model
