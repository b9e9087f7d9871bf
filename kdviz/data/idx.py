"""Reading IDX files, the format MNIST and Fashion-MNIST ship in (gzip-compressed or raw).

The format (LeCun et al., http://yann.lecun.com/exdb/mnist/, section "File formats"): a 4-byte
magic number ``0x00 0x00 <type> <ndim>``, then ``ndim`` big-endian uint32 sizes, then the values
in C order. MNIST uses type ``0x08`` (unsigned byte), so images have magic ``0x00000803``
(3 dimensions: count, rows, columns) and labels ``0x00000801`` (1 dimension: count).

Parsing is one ``numpy.frombuffer`` over the decompressed bytes, no Python loop per image. Every
problem raises an :class:`IdxFormatError` (a ``ValueError``) that names the file and what is wrong;
a missing folder or file raises :class:`IdxFileNotFound`, which is both a ``FileNotFoundError``
and a ``ValueError``.
"""
from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (count, rows, columns)
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (count)
UBYTE_TYPE = 0x08
GZIP_SIGNATURE = b"\x1f\x8b"


class IdxFormatError(ValueError):
    """A file that is not a well-formed IDX file of the expected kind."""


class IdxFileNotFound(FileNotFoundError, ValueError):
    """A dataset folder or one of its IDX files does not exist."""


def read_file_bytes(path: str | os.PathLike) -> bytes:
    """The decompressed content of ``path``: gunzipped when it starts with the gzip signature
    (whatever its name), as is otherwise. A truncated or corrupt gzip stream raises
    :class:`IdxFormatError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise IdxFileNotFound(f"{path}: file not found")
    data = path.read_bytes()
    if not data.startswith(GZIP_SIGNATURE):
        return data
    try:
        return gzip.decompress(data)
    except EOFError:
        raise IdxFormatError(
            f"{path}: truncated gzip file ({len(data):,} bytes; the compressed stream ends early). "
            "Delete it and download or copy it again."
        ) from None
    except (gzip.BadGzipFile, zlib.error) as err:
        raise IdxFormatError(f"{path}: corrupt gzip file ({err}). Delete it and download or copy it again.") from None


def parse_idx(data: bytes, source: str | os.PathLike, expected_magic: int) -> np.ndarray:
    """Parse IDX ``data`` (already decompressed) into a read-only uint8 array of the header's shape.

    ``source`` only names the file in error messages. Checks the magic number against
    ``expected_magic`` and that the byte count equals header + product of the sizes exactly.
    """
    kind = {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}.get(expected_magic, "IDX")
    if len(data) < 4:
        raise IdxFormatError(f"{source}: truncated IDX file: {len(data)} bytes, too short for the magic number")
    (magic,) = struct.unpack(">I", data[:4])
    if magic != expected_magic:
        hint = ""
        if magic == LABELS_MAGIC and expected_magic == IMAGES_MAGIC:
            hint = " (this looks like a labels file)"
        elif magic == IMAGES_MAGIC and expected_magic == LABELS_MAGIC:
            hint = " (this looks like an images file)"
        raise IdxFormatError(
            f"{source}: wrong magic number 0x{magic:08X}, expected 0x{expected_magic:08X} "
            f"for an IDX {kind} file{hint}"
        )
    ndim = expected_magic & 0xFF
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise IdxFormatError(
            f"{source}: truncated IDX file: {len(data)} bytes, the header alone needs {header_size}"
        )
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    expected_size = header_size + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected_size:
        problem = "truncated" if len(data) < expected_size else "corrupt (extra bytes at the end)"
        raise IdxFormatError(
            f"{source}: {problem} IDX {kind} file: header says shape {shape}, which needs "
            f"{expected_size:,} bytes, but the file has {len(data):,}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def read_idx_images(path: str | os.PathLike) -> np.ndarray:
    """Images of an IDX file (magic 0x00000803), uint8 array of shape (N, rows, columns)."""
    return parse_idx(read_file_bytes(path), path, IMAGES_MAGIC)


def read_idx_labels(path: str | os.PathLike) -> np.ndarray:
    """Labels of an IDX file (magic 0x00000801), uint8 array of shape (N,)."""
    return parse_idx(read_file_bytes(path), path, LABELS_MAGIC)


def find_idx_file(folder: str | os.PathLike, stem: str) -> Path:
    """The path of ``stem`` (e.g. ``"train-images-idx3-ubyte"``) in ``folder``: the raw file when
    present, else ``stem + ".gz"``. A missing folder or file raises :class:`IdxFileNotFound`."""
    folder = Path(folder)
    if not folder.exists():
        raise IdxFileNotFound(f"dataset folder {folder} does not exist")
    if not folder.is_dir():
        raise IdxFileNotFound(f"{folder} is not a folder (expected a folder holding the four IDX files)")
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    present = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    listing = ", ".join(present[:10]) + (", ..." if len(present) > 10 else "") if present else "the folder is empty"
    raise IdxFileNotFound(f"{folder} has no {stem} or {stem}.gz (found: {listing})")


def has_idx_file(folder: str | os.PathLike, stem: str) -> bool:
    """Whether ``folder`` holds ``stem`` raw or gzip-compressed."""
    folder = Path(folder)
    return (folder / stem).is_file() or (folder / f"{stem}.gz").is_file()


def read_image_label_pair(folder: str | os.PathLike, images_stem: str, labels_stem: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, rows, columns) and labels (N,) from two IDX files in ``folder``; the counts must agree."""
    images_path = find_idx_file(folder, images_stem)
    labels_path = find_idx_file(folder, labels_stem)
    images = read_idx_images(images_path)
    labels = read_idx_labels(labels_path)
    if len(images) != len(labels):
        raise IdxFormatError(
            f"count mismatch: {images_path} holds {len(images):,} images but {labels_path} holds "
            f"{len(labels):,} labels"
        )
    return images, labels
