"""Where tensors live: ``"auto"`` means the GPU when there is one, else the CPU.

Every training path (the engine, the reproductions, the sliders' re-evaluations) resolves a
config's ``device`` here, so ``"auto"`` means the same thing everywhere, and a model, its batches
and its teacher end up on one device. Deployment latency (``kdviz.deploy``) is measured on the CPU
by design: it answers "how fast on the CPU a small model ships to".
"""
from __future__ import annotations

import torch
from torch import nn

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``"auto"``: CUDA when present, else CPU; ``"cuda"`` (or ``"cuda:1"``) without a GPU is a
    ``ValueError`` that says to use ``"cpu"`` or ``"auto"``; a ``torch.device`` is returned as it is."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(name).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was requested but no CUDA GPU is available; use 'cpu' or 'auto'")
    try:
        return torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"device {name!r} is not a device torch knows; use one of {DEVICE_CHOICES}") from None


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (the CPU for a module holding neither)."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")
