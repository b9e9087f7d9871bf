"""The dataset registry; each source module registers a loader ``(root, download) -> DatasetBundle``."""
from ..registry import Registry

DATASETS: Registry = Registry("dataset")
