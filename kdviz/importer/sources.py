"""Where the Your model page puts what a user hands it: uploaded weights and dataset descriptions.

An uploaded ``.safetensors`` file is kept under the cache folder (``kdviz.paths.cache_root()``,
``uploads/``), in a folder named by its SHA-256, so the run that imports it names a file that stays. A dataset
with options (an image size, a CSV's shape) is described by a small JSON file under ``datasets/``
in the cache folder, also named by its content: the run's ``data_root`` is that file, so the run
reloads the same data with the same options (``kdviz.data.image_folder``, ``kdviz.data.csv_pixels``).
Both folders lie in an allowed root, so the app's path checks (``kdviz.paths.confine``) accept them.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..data import load_dataset
from ..engine.run_folder import atomic_write_bytes
from ..paths import cache_root

MAX_UPLOAD_BYTES = 512 * 1024 * 1024


def save_upload(name: str, data: bytes) -> Path:
    """Keep uploaded weights as ``<cache>/uploads/<sha256 prefix>/<name>`` (the run is named after the
    file's own name); returns the path."""
    if not str(name).lower().endswith(".safetensors"):
        raise ValueError(f"{name}: upload a .safetensors file (kdviz never loads pickles such as .pt or .pth files)")
    if not data:
        raise ValueError(f"{name} is empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValueError(f"{name} is larger than {MAX_UPLOAD_BYTES // 2**20} MiB")
    folder = cache_root() / "uploads" / hashlib.sha256(data).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in Path(name).name)
    path = folder / safe
    if not path.is_file():
        atomic_write_bytes(path, data)
    return path


def describe_dataset(kind: str, path: Path, options: dict[str, Any]) -> str:
    """The ``data_root`` for ``kind`` (``"image-folder"`` or ``"csv-pixels"``) at ``path``: the path
    itself when ``options`` is empty, else a JSON description with them. The data is loaded once
    here, so a bad folder or file is reported now (``ValueError`` naming it)."""
    clean = {k: v for k, v in options.items() if v is not None}
    root = str(path)
    if clean:
        text = json.dumps({"path": str(path), **clean}, sort_keys=True)
        folder = cache_root() / "datasets"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:16]}.json"
        if not target.is_file():
            atomic_write_bytes(target, text.encode())
        root = str(target)
    load_dataset(kind, root=root)
    return root


__all__ = ["describe_dataset", "save_upload"]
