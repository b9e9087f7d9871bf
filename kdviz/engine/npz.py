"""Reading ``.npz`` snapshot and reference files without trusting them.

``np.load(allow_pickle=False)`` refuses pickled objects, but on its own it passes numpy's unsafe
advice to the user, returns a member that is not an ``.npy`` array as raw bytes, lets
``BadZipFile`` escape, and allocates whatever a member's header claims (8 TiB: ``MemoryError``).
:func:`load_npz` checks every member's header first and turns each of these into one ``ValueError``
naming the file.
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

MAX_NPZ_MEMBER_BYTES = 1 << 30  # one snapshot array above 1 GiB is not something kdviz wrote


def _checked_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> None:
    """Refuse a member that is not a plain ``.npy`` array, holds objects, or declares more bytes
    than it can hold (stored) or than any kdviz array (compressed), before numpy allocates it."""
    where = f"{path}: member {info.filename!r}"
    if not info.filename.endswith(".npy"):
        raise ValueError(f"{where} is not an array (.npy); the file was not loaded")
    with archive.open(info) as member:
        try:
            version = np.lib.format.read_magic(member)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = reader(member)
        except ValueError:
            raise ValueError(f"{where} is not a plain array; the file was not loaded") from None
    if dtype.hasobject:
        raise ValueError(f"{where} holds Python objects, which kdviz never loads; the file was not loaded")
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    limit = info.file_size if info.compress_type == zipfile.ZIP_STORED else MAX_NPZ_MEMBER_BYTES
    if declared > limit:
        raise ValueError(f"{where} declares {declared} bytes, more than it can hold ({limit}); "
                         "the file is damaged and was not loaded")


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file, read with ``allow_pickle=False`` after every member's header
    has been checked (:func:`_checked_member`). Anything else (a pickle, a damaged or truncated
    archive, an object array, a member claiming terabytes) is a ``ValueError`` naming the file."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                _checked_member(archive, info, path)
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: not a readable .npz archive of arrays (damaged, truncated or another "
                         f"kind of file: {type(exc).__name__}); it was not loaded") from None


__all__ = ["MAX_NPZ_MEMBER_BYTES", "load_npz"]
