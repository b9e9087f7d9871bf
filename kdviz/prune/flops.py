"""Parameter and FLOP counts of Linear and Conv2d layers, dense and after pruning.

We count multiply-accumulates (MACs) of the weight layers for one input image and report
FLOPs = 2 x MACs (one multiply and one add), the convention of Han et al. 2015 (table 1's "FLOP"
column counts the work of the weight layers; bias adds, ReLU and pooling are ignored here too).

* Linear (out x in): MACs = in * out.
* Conv2d: MACs = H_out * W_out * out_channels * (in_channels / groups) * kh * kw.
* Pruned ("nonzero") MACs skip the zero weights: nonzero(W) for Linear and
  nonzero(W) * H_out * W_out for Conv2d, the work a sparse kernel would still do.

Output sizes are measured by running one zero image through the model with forward hooks, so any
architecture built from these layers is counted without hand-written shape rules.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .masks import PRUNABLE_TYPES


@dataclass(frozen=True)
class LayerCost:
    layer: str
    kind: str  # "fc" or "conv"
    weights: int
    nonzero_weights: int
    biases: int
    macs: int
    nonzero_macs: int

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def nonzero_flops(self) -> int:
        return 2 * self.nonzero_macs


def layer_costs(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> list[LayerCost]:
    """One ``LayerCost`` per Linear/Conv2d layer in forward order for a single input of ``input_shape``
    (C, H, W); defaults to ``model.input_shape`` for kdviz models."""
    shape = tuple(input_shape if input_shape is not None else getattr(model, "input_shape", ()))
    if not shape:
        raise ValueError("give input_shape (C, H, W): the model does not carry one")
    costs: list[LayerCost] = []
    names = {m: n for n, m in model.named_modules()}

    def record(module: nn.Module, _inputs, output: torch.Tensor) -> None:
        w = module.weight.detach()
        nz = int((w != 0).sum())
        positions = output.shape[2] * output.shape[3] if isinstance(module, nn.Conv2d) else 1
        per_position = w.numel()  # Linear: in*out; Conv2d: out * in/groups * kh * kw
        costs.append(LayerCost(
            layer=names[module], kind="conv" if isinstance(module, nn.Conv2d) else "fc",
            weights=w.numel(), nonzero_weights=nz, biases=0 if module.bias is None else module.bias.numel(),
            macs=per_position * positions, nonzero_macs=nz * positions,
        ))

    handles = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, PRUNABLE_TYPES)]
    was_training = model.training
    try:
        model.eval()
        param = next(model.parameters())
        with torch.inference_mode():
            model(torch.zeros((1, *shape), dtype=param.dtype, device=param.device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return costs


def count_flops(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> dict[str, int]:
    """Totals over the weight layers: ``flops``, ``nonzero_flops``, ``macs``, ``nonzero_macs``,
    ``weights``, ``nonzero_weights``, and ``parameters`` (every parameter of the model)."""
    costs = layer_costs(model, input_shape)
    return {
        "macs": sum(c.macs for c in costs),
        "nonzero_macs": sum(c.nonzero_macs for c in costs),
        "flops": sum(c.flops for c in costs),
        "nonzero_flops": sum(c.nonzero_flops for c in costs),
        "weights": sum(c.weights for c in costs),
        "nonzero_weights": sum(c.nonzero_weights for c in costs),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
