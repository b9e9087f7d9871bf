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
    """A fixed-width text table of ``layer_table`` with a total line; columns fit the longest entry."""
    rows = layer_table(model)
    name_w = max([len("layer"), *(len(r["layer"]) for r in rows)]) + 2
    type_w = max([len("type"), *(len(r["type"]) for r in rows)]) + 2
    shape_w = max([len("weight shape"), *(len(str(r["weight shape"])) for r in rows)]) + 2
    lines = [f"{'layer':<{name_w}}{'type':<{type_w}}{'weight shape':<{shape_w}}{'parameters':>12}"]
    for r in rows:
        lines.append(f"{r['layer']:<{name_w}}{r['type']:<{type_w}}{str(r['weight shape']):<{shape_w}}{r['parameters']:>12,}")
    lines.append(f"{'total':<{name_w + type_w + shape_w}}{count_parameters(model):>12,}")
    return "\n".join(lines)
