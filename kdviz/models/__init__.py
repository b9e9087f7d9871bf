"""Model zoo: every model exposes named intermediate features (see ``base.FeatureModel``)."""
from __future__ import annotations

import threading

from . import conv, mlp, projection_net  # noqa: F401  (registers models)
from . import resnet, vit  # noqa: F401
from . import spec, wrapped  # noqa: F401  (the JSON-spec model; wrap() for any nn.Module)
from .base import FeatureModel
from .registry import MODELS
from .summary import count_parameters, layer_table, model_summary


# Initialising weights draws from torch's global random generator, which all threads share. A job
# seeds it and builds its model holding this lock (``engine.setup``); every other construction takes
# it too, so a teacher loaded in one thread never consumes random numbers meant for another job's
# seeded student (two runs with the same seed then start from the same weights).
INIT_LOCK = threading.RLock()


def build_model(name: str, input_shape: tuple[int, int, int] = (1, 8, 8), num_classes: int = 10, **options) -> FeatureModel:
    """Build a registered model for images of ``input_shape`` (C, H, W) and ``num_classes`` classes.

    >>> build_model("lenet300", input_shape=(1, 28, 28)).feature_names
    ('fc1', 'fc2')
    """
    with INIT_LOCK:
        return MODELS.get(name)(tuple(input_shape), int(num_classes), **options)


def list_models() -> list[str]:
    return MODELS.names()


__all__ = ["FeatureModel", "INIT_LOCK", "MODELS", "build_model", "list_models", "count_parameters", "layer_table", "model_summary"]
