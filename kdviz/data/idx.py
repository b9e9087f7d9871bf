"""Reading IDX files, the format MNIST and Fashion-MNIST ship in (gzip-compressed or raw).

The format (LeCun et al., http://yann.lecun.com/exdb/mnist/, section "File formats"): a 4-byte
magic number ``0x00 0x00 <type> <ndim>``, then ``ndim`` big-endian uint32 sizes, then the values
in C order. MNIST uses type ``0x08`` (unsigned byte), so images have magic ``0x00000803``
(3 dimensions: count, rows, columns) and labels ``0x00000801`` (1 dimension: count).

A file is never trusted to be what it says. The header is read and checked first (magic number,
declared size against :data:`MAX_IDX_BYTES` and against what a file of this length can hold: deflate
expands at most ~1032:1), then exactly the declared number of bytes is streamed into one buffer
allocated from the header, then one more byte is asked for: anything there is refused. A gzip bomb
(a few MB that inflate to GB) therefore costs at most the declared size, never the inflated size.

Every problem raises an :class:`IdxFormatError` (a ``ValueError``) that names the file and what is
wrong; a missing folder or file raises :class:`IdxFileNotFound`, both a ``FileNotFoundError`` and a
``ValueError``. Messages name the expected files, never what else a folder holds.
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (count, rows, columns)
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (count)
UBYTE_TYPE = 0x08
GZIP_SIGNATURE = b"\x1f\x8b"
MAX_IDX_BYTES = 256 << 20  # one IDX file's values: MNIST's largest holds 47 MB
MAX_DEFLATE_RATIO = 1032  # zlib's best case: one compressed byte never inflates to more (RFC 1951)
READ_CHUNK_BYTES = 1 << 20


class IdxFormatError(ValueError):
    """A file that is not a well-formed IDX file of the expected kind."""


class IdxFileNotFound(FileNotFoundError, ValueError):
    """A dataset folder or one of its IDX files does not exist."""


@dataclass(frozen=True)
class IdxHeader:
    """What an IDX file's header declares: its magic number and shape (values are unsigned bytes)."""

    magic: int
    shape: tuple[int, ...]

    @property
    def header_bytes(self) -> int:
        return 4 + 4 * len(self.shape)

    @property
    def payload_bytes(self) -> int:
        return math.prod(self.shape)  # Python ints: four uint32 sizes would overflow int64


def _kind(expected_magic: int) -> str:
    return {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}.get(expected_magic, "IDX")


def _gzip_error(path: Path, err: BaseException) -> IdxFormatError:
    if isinstance(err, EOFError):
        return IdxFormatError(f"{path}: truncated gzip file (the compressed stream ends early). "
                              "Delete it and download or copy it again.")
    return IdxFormatError(f"{path}: corrupt gzip file ({err}). Delete it and download or copy it again.")


def _read_up_to(stream: BinaryIO, path: Path, size: int) -> bytes:
    """At most ``size`` bytes from ``stream``; gzip damage becomes an :class:`IdxFormatError`."""
    try:
        return stream.read(size)
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise _gzip_error(path, err) from None


def _read_header(stream: BinaryIO, path: Path, expected_magic: int) -> IdxHeader:
    kind = _kind(expected_magic)
    head = _read_up_to(stream, path, 4)
    if len(head) < 4:
        raise IdxFormatError(f"{path}: truncated IDX file: {len(head)} bytes, too short for the magic number")
    (magic,) = struct.unpack(">I", head)
    if magic != expected_magic:
        hint = ""
        if magic == LABELS_MAGIC and expected_magic == IMAGES_MAGIC:
            hint = " (this looks like a labels file: are the images and labels files swapped?)"
        elif magic == IMAGES_MAGIC and expected_magic == LABELS_MAGIC:
            hint = " (this looks like an images file: are the images and labels files swapped?)"
        raise IdxFormatError(
            f"{path}: wrong magic number 0x{magic:08X}, expected 0x{expected_magic:08X} "
            f"for an IDX {kind} file{hint}"
        )
    ndim = expected_magic & 0xFF
    sizes = _read_up_to(stream, path, 4 * ndim)
    if len(sizes) < 4 * ndim:
        raise IdxFormatError(
            f"{path}: truncated IDX file: {4 + len(sizes)} bytes, the header alone needs {4 + 4 * ndim}"
        )
    return IdxHeader(magic, struct.unpack(f">{ndim}I", sizes))


def _check_declared_size(header: IdxHeader, path: Path, kind: str, file_size: int, compressed: bool,
                         max_bytes: int) -> None:
    """Refuse, before allocating anything, a header whose size is absurd or cannot fit the file."""
    needed = header.header_bytes + header.payload_bytes
    if header.payload_bytes > max_bytes:
        raise IdxFormatError(
            f"{path}: IDX {kind} file declares shape {header.shape}, {header.payload_bytes:,} bytes of values, "
            f"more than the {max_bytes:,} kdviz reads from one file; the file is damaged or not a dataset file"
        )
    most = file_size * MAX_DEFLATE_RATIO if compressed else file_size
    if needed > most:
        what = f"a {file_size:,}-byte gzip file can hold at most {most:,}" if compressed else f"the file has {file_size:,}"
        raise IdxFormatError(
            f"{path}: truncated IDX {kind} file: header says shape {header.shape}, which needs "
            f"{needed:,} bytes, but {what}"
        )
    if not compressed and file_size > needed:
        raise IdxFormatError(
            f"{path}: corrupt (extra bytes at the end) IDX {kind} file: header says shape {header.shape}, "
            f"which needs {needed:,} bytes, but the file has {file_size:,}"
        )


def _read_payload(stream: BinaryIO, path: Path, kind: str, header: IdxHeader) -> np.ndarray:
    """Exactly the declared values into one buffer, then refuse any byte beyond them."""
    values = np.empty(header.payload_bytes, dtype=np.uint8)
    view, filled = memoryview(values), 0
    try:
        while filled < len(values):
            got = stream.readinto(view[filled: filled + READ_CHUNK_BYTES])
            if not got:
                break
            filled += got
        extra = stream.read(1) if filled == len(values) else b""
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise _gzip_error(path, err) from None
    needed = header.header_bytes + header.payload_bytes
    if filled < len(values):
        raise IdxFormatError(
            f"{path}: truncated IDX {kind} file: header says shape {header.shape}, which needs "
            f"{needed:,} bytes, but the file has {header.header_bytes + filled:,}"
        )
    if extra:
        raise IdxFormatError(
            f"{path}: corrupt (extra bytes at the end) IDX {kind} file: header says shape {header.shape}, "
            f"which needs {needed:,} bytes, but the file holds more"
        )
    values.flags.writeable = False
    return values.reshape(header.shape)


def _open(path: Path) -> tuple[BinaryIO, bool, int]:
    """``path`` opened for reading (gunzipped when it starts with the gzip signature, whatever its
    name), whether it is compressed, and its size on disk."""
    if not path.is_file():
        raise IdxFileNotFound(f"{path}: file not found")
    raw = open(path, "rb")  # noqa: SIM115 - closed by the caller through the returned stream
    compressed = raw.read(2) == GZIP_SIGNATURE
    raw.seek(0)
    size = os.fstat(raw.fileno()).st_size
    if not compressed:
        return raw, False, size
    return gzip.GzipFile(fileobj=raw, mode="rb"), True, size


def read_idx_header(path: str | os.PathLike, expected_magic: int, max_bytes: int = MAX_IDX_BYTES) -> IdxHeader:
    """The checked header of the IDX file at ``path`` (nothing beyond it is read or inflated)."""
    path = Path(path)
    stream, compressed, size = _open(path)
    with stream:
        header = _read_header(stream, path, expected_magic)
    _check_declared_size(header, path, _kind(expected_magic), size, compressed, max_bytes)
    return header


def read_idx(path: str | os.PathLike, expected_magic: int, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """The values of the IDX file at ``path`` as a read-only uint8 array of the header's shape.

    Checks the magic number against ``expected_magic``, the declared size against ``max_bytes`` and
    the file's length, then streams exactly that many bytes: a truncated file, extra bytes at the end
    and a corrupt gzip stream are each an :class:`IdxFormatError` naming the file.
    """
    path = Path(path)
    kind = _kind(expected_magic)
    stream, compressed, size = _open(path)
    with stream:
        header = _read_header(stream, path, expected_magic)
        _check_declared_size(header, path, kind, size, compressed, max_bytes)
        return _read_payload(stream, path, kind, header)


def read_idx_images(path: str | os.PathLike, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Images of an IDX file (magic 0x00000803), uint8 array of shape (N, rows, columns)."""
    return read_idx(path, IMAGES_MAGIC, max_bytes)


def read_idx_labels(path: str | os.PathLike, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Labels of an IDX file (magic 0x00000801), uint8 array of shape (N,)."""
    return read_idx(path, LABELS_MAGIC, max_bytes)


def find_idx_file(folder: str | os.PathLike, stem: str) -> Path:
    """The path of ``stem`` (e.g. ``"train-images-idx3-ubyte"``) in ``folder``: the raw file when
    present, else ``stem + ".gz"``. A missing folder or file raises :class:`IdxFileNotFound`, whose
    message names the expected files only (never what else the folder holds)."""
    folder = Path(folder)
    if not folder.exists():
        raise IdxFileNotFound(f"dataset folder {folder} does not exist")
    if not folder.is_dir():
        raise IdxFileNotFound(f"{folder} is not a folder (expected a folder holding the four IDX files)")
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise IdxFileNotFound(f"{folder} has no {stem} or {stem}.gz (the four IDX files are expected there, gzip or raw)")


def has_idx_file(folder: str | os.PathLike, stem: str) -> bool:
    """Whether ``folder`` holds ``stem`` raw or gzip-compressed."""
    folder = Path(folder)
    return (folder / stem).is_file() or (folder / f"{stem}.gz").is_file()


def read_image_label_pair(folder: str | os.PathLike, images_stem: str, labels_stem: str,
                          image_size: tuple[int, int] | None = None, title: str = "expected"
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, rows, columns) and labels (N,) from two IDX files in ``folder``.

    Both headers are checked before either file's values are read: the kinds (a swapped pair is
    named as such), the image size when ``image_size`` is given, and that the counts agree.
    """
    images_path = find_idx_file(folder, images_stem)
    labels_path = find_idx_file(folder, labels_stem)
    images_header = read_idx_header(images_path, IMAGES_MAGIC)
    labels_header = read_idx_header(labels_path, LABELS_MAGIC)
    if image_size is not None and images_header.shape[1:] != tuple(image_size):
        rows, cols = images_header.shape[1:]
        raise IdxFormatError(f"{images_path}: images are {rows}x{cols}, {title} images are "
                             f"{image_size[0]}x{image_size[1]}")
    if images_header.shape[0] != labels_header.shape[0]:
        raise IdxFormatError(
            f"count mismatch: {images_path} holds {images_header.shape[0]:,} images but {labels_path} holds "
            f"{labels_header.shape[0]:,} labels"
        )
    return read_idx_images(images_path), read_idx_labels(labels_path)
