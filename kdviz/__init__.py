"""kdviz: an interactive visual lab for knowledge distillation, pruning and quantization.

Core API (no UI imports here):

    >>> import kdviz
    >>> [round(p, 5) for p in kdviz.soften([2, 7, 10], T=20)]
    [0.26484, 0.34006, 0.3951]

``load_dataset``, ``build_model``, ``soften``, ``entropy`` and ``kd_loss`` load eagerly; the
training engine (``start``, ``open_run``...) and the method packages load on first use.
"""
from __future__ import annotations

import importlib
import os
from typing import Any

# Idle OpenMP threads sleep instead of spinning. kdviz runs training jobs in background threads
# beside a UI; spinning threads made a small model's step 1 ms -> 70 ms on a busy 2-core machine.
# Effective only when kdviz is imported before torch; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .data import load_dataset  # noqa: E402
from .distill import entropy, kd_loss, soften  # noqa: E402
from .models import build_model  # noqa: E402
from .models.wrapped import register_wrapped, wrap  # noqa: E402

__version__ = "0.1.0"

_LAZY = {
    "start": "kdviz.engine",
    "open_run": "kdviz.engine",
    "resume": "kdviz.engine",
    "TrainConfig": "kdviz.engine",
    "fsp_matrix": "kdviz.distill.fsp",
    "fsp_loss": "kdviz.distill.fsp",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kdviz' has no attribute {name!r}")


__all__ = ["load_dataset", "build_model", "wrap", "register_wrapped", "soften", "entropy", "kd_loss", "__version__", *_LAZY]
