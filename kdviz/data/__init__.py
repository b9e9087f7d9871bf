"""Datasets as typed bundles: ``load_dataset(name, root=None, download=False)``."""
from __future__ import annotations

import os
from pathlib import Path

from . import digits, synthetic  # noqa: F401  (register loaders)
from . import mnist  # noqa: F401
from . import csv_pixels, image_folder  # noqa: F401  (your own data: CSV of pixels, image folder)
from .bundle import DatasetBundle
from .registry import DATASETS
from .torch_dataset import bundle_from_torch, register_torch_dataset


def load_dataset(name: str = "digits", root: str | os.PathLike | None = None, download: bool = False) -> DatasetBundle:
    """Load a registered dataset.

    ``"digits"`` (bundled, offline default) and ``"synthetic"`` ignore ``root``. ``"mnist"`` and
    ``"fashion-mnist"`` read the four IDX files from ``root`` (gzip or raw), or with ``download=True``
    fetch them into the cache folder (``$KDVIZ_CACHE`` or ``~/.cache/kdviz``).
    """
    return DATASETS.get(name)(root=Path(root) if root is not None else None, download=download)


def list_datasets() -> list[str]:
    return DATASETS.names()


__all__ = ["DatasetBundle", "DATASETS", "bundle_from_torch", "load_dataset", "list_datasets", "register_torch_dataset"]
