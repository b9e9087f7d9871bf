"""Methods: the one place where a method's name appears (see ``base.MethodSpec``).

Each module registers its base loss or training hook with the engine and its ``MethodSpec`` with
``METHOD_SPECS``; importing this package registers them all (the engine does so on its first
lookup, ``kdviz.engine.plugins``). Adding a method: docs/adding-a-method.md.

>>> from kdviz.methods import get_method, method_of
>>> get_method("kd").label
'KD student'
"""
from . import (  # noqa: F401  (register)
    attention, deep_compression, dkd, dml, fsp, head_prune, hints, kd, logit_matching, lottery, max_norm, movement, n_m, projection, prune,
    qat, quantize, rkd, scratch, specialist, vit_distill,
)
from .base import (
    GENERIC_STUDENT, METHOD_SPECS, MethodSpec, PageSpec, all_methods, get_method, method_of, register_method,
    uses_hook, uses_loss,
)

__all__ = [
    "GENERIC_STUDENT", "METHOD_SPECS", "MethodSpec", "PageSpec", "all_methods", "get_method", "method_of",
    "register_method", "uses_hook", "uses_loss",
]
