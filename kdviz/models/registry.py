"""The model registry; model modules register their builders here."""
from ..registry import Registry

MODELS: Registry = Registry("model")
