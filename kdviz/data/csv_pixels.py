"""A CSV file of pixels, one image per row, as a kdviz dataset (``"csv-pixels"``).

The layout of Kaggle's ``mnist_train.csv`` and of many course exports: a label column and one
column per pixel, with or without a header row::

    label,pixel0,pixel1,...,pixel783
    5,0,0,...,0

The label column is ``label_column`` (a header name, default ``"label"``, or a 0-based index); with
no header row it is the first column. Labels are class indices or names; the classes are the sorted
distinct labels. Pixels are 0..255 (scaled to [0, 1]) or already in [0, 1]. ``shape`` is (C, H, W)
or (H, W); without it the pixel count must be a square (one grey channel) or three times one (RGB,
channel-first). One file is split into train and test with a seeded stratified split; a folder with
``train.csv`` and ``test.csv`` keeps those two. ``load_dataset("csv-pixels", root=...)`` takes the
file, such a folder, or a JSON description (``{"path": "digits.csv", "shape": [1, 8, 8],
"label_column": "label", "test_fraction": 0.2, "seed": 0}``). A bad cell is named by file, row
(the line number in the file) and column.
"""
from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .bundle import DatasetBundle
from .digits import stratified_split
from .image_folder import read_descriptor
from .registry import DATASETS

DESCRIPTOR_KEYS = {"path", "shape", "label_column", "test_fraction", "seed"}
MAX_ROWS = 200_000


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def read_rows(path: Path) -> tuple[list[str] | None, list[list[str]], int]:
    """(header or None, data rows, line number of the first data row) of a CSV file."""
    if not path.is_file():
        raise ValueError(f"CSV file {path} does not exist")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [row for row in csv.reader(f)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path.name}: not a readable CSV text file ({exc})") from None
    rows = [row for row in rows if row and any(cell.strip() for cell in row)]
    if not rows:
        raise ValueError(f"{path.name} is empty: no rows of pixels")
    if len(rows) > MAX_ROWS + 1:
        raise ValueError(f"{path.name}: more than {MAX_ROWS:,} rows; kdviz keeps a dataset in memory")
    header = None if all(_is_number(cell) for cell in rows[0]) else [cell.strip() for cell in rows[0]]
    return header, rows[1:] if header else rows, 2 if header else 1


def _label_index(header: list[str] | None, label_column: str | int, path: Path) -> int:
    if isinstance(label_column, int) and not isinstance(label_column, bool):
        return label_column
    if header is None:
        return 0
    if label_column not in header:
        shown = ", ".join(header[:5]) + (", ..." if len(header) > 5 else "")
        raise ValueError(f"{path.name}: no column named {label_column!r} for the labels (columns: {shown}); "
                         "set label_column")
    return header.index(label_column)


def _pixels(rows: list[list[str]], label_at: int, path: Path, header: list[str] | None, first_line: int) -> np.ndarray:
    width = len(rows[0])
    for number, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(f"{path.name}, row {first_line + number}: {len(row)} columns, but the first row has {width}")
    if not 0 <= label_at < width:
        raise ValueError(f"{path.name}: label column {label_at} is outside the {width} columns")
    cells = [row[:label_at] + row[label_at + 1:] for row in rows]
    try:
        pixels = np.array(cells, dtype=np.float32)
    except ValueError:
        for number, row in enumerate(cells):
            for column, cell in enumerate(row):
                if not _is_number(cell):
                    index = column if column < label_at else column + 1
                    name = header[index] if header else f"{index + 1}"
                    raise ValueError(f"{path.name}, row {first_line + number}, column {name!r}: {cell!r} is not a number") from None
        raise
    bad = np.argwhere(~np.isfinite(pixels) | (pixels < 0))
    if len(bad):
        number, column = (int(v) for v in bad[0])
        raise ValueError(f"{path.name}, row {first_line + number}: pixel {pixels[number, column]} is negative or not finite")
    return pixels


def infer_shape(count: int, shape: Sequence[int] | None, where: str) -> tuple[int, int, int]:
    """(C, H, W) of ``count`` pixels: ``shape`` checked, or a square grey or square RGB image."""
    if shape is not None:
        dims = tuple(shape)
        if len(dims) == 2:
            dims = (1, *dims)
        if len(dims) != 3 or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in dims):
            raise ValueError(f"{where}: shape must be (C, H, W) or (H, W) of positive whole numbers, got {shape!r}")
        if math.prod(dims) != count:
            raise ValueError(f"{where}: shape {dims} holds {math.prod(dims)} pixels but each row has {count}")
        return dims
    for channels in (1, 3):
        side = math.isqrt(count // channels)
        if count % channels == 0 and side * side * channels == count:
            return (channels, side, side)
    raise ValueError(f"{where}: {count} pixel columns are neither a square image nor three square channels; "
                     "give the shape (C, H, W)")


def _read_file(path: Path, label_column: str | int) -> tuple[np.ndarray, list[str]]:
    header, rows, first_line = read_rows(path)
    if not rows:
        raise ValueError(f"{path.name} holds a header but no rows of pixels")
    label_at = _label_index(header, label_column, path)
    pixels = _pixels(rows, label_at, path, header, first_line)
    return pixels, [row[label_at].strip() for row in rows]


def _class_names(labels: list[str]) -> list[str]:
    distinct = sorted(set(labels))
    if all(_is_number(label) and float(label).is_integer() for label in distinct):
        distinct = sorted(distinct, key=float)
    return distinct


def load_csv_pixels(path: str | os.PathLike, shape: Sequence[int] | None = None, label_column: str | int = "label",
                    test_fraction: float = 0.2, seed: int = 0, name: str = "csv-pixels") -> DatasetBundle:
    """Read a CSV of pixels (a file, or a folder with ``train.csv`` and ``test.csv``) into a bundle."""
    path = Path(path).expanduser()
    files = [path / "train.csv", path / "test.csv"] if path.is_dir() else [path]
    parts = [_read_file(f, label_column) for f in files]
    pixels = np.concatenate([p for p, _ in parts])
    labels = [label for _, part in parts for label in part]
    dims = infer_shape(pixels.shape[1], shape, files[0].name)
    names = _class_names(labels)
    if len(names) < 2:
        raise ValueError(f"{files[0].name}: every row has the label {names[0]!r}; a classifier needs at least two classes")
    if pixels.max() > 255:
        raise ValueError(f"{files[0].name}: pixel values go up to {pixels.max():g}; expected 0..255 or 0..1")
    scale = 255.0 if pixels.max() > 1.0 else 1.0
    images = torch.from_numpy(pixels / scale).reshape(-1, *dims)
    index = {label: i for i, label in enumerate(names)}
    y = torch.tensor([index[label] for label in labels], dtype=torch.int64)
    if len(files) == 2:
        n = len(parts[0][1])
        train_x, train_y, test_x, test_y = images[:n], y[:n], images[n:], y[n:]
    else:
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
        train_idx, test_idx = stratified_split(y.numpy(), test_fraction, seed)
        if len(test_idx) == 0 or len(train_idx) == 0:
            raise ValueError(f"{path.name}: {len(y)} rows are too few to split {test_fraction:.0%} off as a test set")
        train_x, train_y, test_x, test_y = images[train_idx], y[train_idx], images[test_idx], y[test_idx]
    c, h, w = dims
    return DatasetBundle(name, train_x.contiguous(), train_y, test_x.contiguous(), test_y, tuple(names),
                         f"pixels from {path.name}: {len(train_y):,} train / {len(test_y):,} test, {h}x{w}, "
                         f"{c} channel(s), {len(names)} classes")


@DATASETS.register("csv-pixels")
def load_registered_csv(root=None, download: bool = False) -> DatasetBundle:
    """The ``"csv-pixels"`` dataset: ``root`` is the CSV file, a folder with train.csv and test.csv,
    or a JSON description."""
    if root is None:
        raise ValueError("dataset 'csv-pixels' needs data_root: the CSV file of pixels (or a JSON file describing it)")
    root = Path(root)
    if root.suffix.lower() == ".json" and root.is_file():
        file, options = read_descriptor(root, DESCRIPTOR_KEYS)
        return load_csv_pixels(file, **options)
    return load_csv_pixels(root)


__all__ = ["infer_shape", "load_csv_pixels", "read_rows"]
