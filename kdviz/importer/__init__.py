"""Bring your own model: ``.safetensors`` weights imported as a finished kdviz run (``weights.py``)
and the ``kdviz import-model`` command (``cli.py``)."""
from .weights import ImportedRun, import_weights, match_state, read_safetensors, spec_options

__all__ = ["ImportedRun", "import_weights", "match_state", "read_safetensors", "spec_options"]
