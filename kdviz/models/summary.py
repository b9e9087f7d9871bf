"""Parameter counts and a readable per-layer summary of a model."""
from __future__ import annotations

from torch import nn


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def layer_table(model: nn.Module) -> list[dict]:
    """One row per leaf module with parameters: name, type, weight shape, parameter count."""
    rows = []
    for name, module in model.named_modules():
        params = list(module.parameters(recurse=False))
        if not params:
            continue
        weight = getattr(module, "weight", None)
        rows.append(
            {
                "layer": name,
                "type": type(module).__name__,
                "weight shape": tuple(weight.shape) if weight is not None else (),
                "parameters": sum(p.numel() for p in params),
            }
        )
    return rows


def model_summary(model: nn.Module) -> str:
    """A fixed-width text table of ``layer_table`` with a total line."""
    rows = layer_table(model)
    lines = [f"{'layer':<16}{'type':<12}{'weight shape':<22}{'parameters':>12}"]
    for r in rows:
        lines.append(f"{r['layer']:<16}{r['type']:<12}{str(r['weight shape']):<22}{r['parameters']:>12,}")
    lines.append(f"{'total':<50}{count_parameters(model):>12,}")
    return "\n".join(lines)
