"""A folder of images, one subfolder per class, as a kdviz dataset (``"image-folder"``).

Two layouts, as torchvision's ``ImageFolder`` users keep them::

    shapes/circle/001.png  shapes/square/001.png ...           one split: a seeded stratified test split
    shapes/train/circle/... shapes/test/circle/...              train/ and test/ with the same classes

Images are PNG, JPEG, PGM/PPM or BMP, read with Pillow (``PIL.Image``). Grey images stay one
channel, colour ones three (``channels`` forces 1 or 3); with ``size=(H, W)`` every image is resized
(bilinear) to it, without it all images must already share one size. Pixels 0..255 become [0, 1].

``load_dataset("image-folder", root=...)`` takes the folder, or a JSON file describing it
(``{"path": "shapes", "size": [28, 28], "channels": 1, "test_fraction": 0.2, "seed": 0}``, ``path``
relative to the JSON file), so a run's ``data_root`` names everything needed to reload its data.
Every problem (no such folder, no images, one class, mixed sizes, an unreadable file) is a
``ValueError`` naming the folder or file.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .bundle import DatasetBundle
from .digits import stratified_split
from .registry import DATASETS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".bmp")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")
MAX_IMAGES = 200_000
DESCRIPTOR_KEYS = {"path", "size", "channels", "test_fraction", "seed"}


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def class_folders(folder: Path) -> dict[str, list[Path]]:
    """``{class name: image files}`` of ``folder``'s subfolders (sorted; hidden entries skipped)."""
    if not folder.is_dir():
        raise ValueError(f"image folder {folder} does not exist (or is not a folder)")
    classes = {}
    for sub in _visible(folder):
        if sub.is_dir():
            classes[sub.name] = [p for p in _visible(sub) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not classes:
        raise ValueError(f"image folder {folder} has no class subfolders: put each class's images in a subfolder "
                         f"named after it (e.g. {folder}/cat/001.png)")
    empty = [name for name, files in classes.items() if not files]
    if empty:
        raise ValueError(f"image folder {folder}: class folder(s) {', '.join(empty)} hold no images "
                         f"({', '.join(IMAGE_SUFFIXES)})")
    if len(classes) < 2:
        raise ValueError(f"image folder {folder} has only one class ({next(iter(classes))}); a classifier needs at least two")
    if sum(len(files) for files in classes.values()) > MAX_IMAGES:
        raise ValueError(f"image folder {folder} holds more than {MAX_IMAGES:,} images; kdviz keeps a dataset in memory")
    return classes


def read_image(path: Path, channels: int | None, size: tuple[int, int] | None) -> np.ndarray:
    """One image as uint8 (C, H, W) (``channels`` None: 1 for grey files, 3 otherwise)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            grey = image.mode in GREY_MODES if channels is None else channels == 1
            image = image.convert("L" if grey else "RGB")
            if size is not None and image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot be read as an image ({type(exc).__name__}: {exc})") from None
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def _read_classes(classes: dict[str, list[Path]], channels: int | None, size: tuple[int, int] | None,
                  names: Sequence[str]) -> tuple[list[np.ndarray], list[int], list[Path]]:
    images, labels, files = [], [], []
    for label, name in enumerate(names):
        for path in classes.get(name, []):
            images.append(read_image(path, channels, size))
            labels.append(label)
            files.append(path)
    return images, labels, files


def _stack(images: list[np.ndarray], files: list[Path], channels: int | None) -> torch.Tensor:
    """(N, C, H, W) float32 in [0, 1]; grey images promoted to RGB when the set mixes both (channels None)."""
    if channels is None and len({img.shape[0] for img in images}) > 1:
        images = [np.repeat(img, 3, axis=0) if img.shape[0] == 1 else img for img in images]
    sizes = {img.shape[1:] for img in images}
    if len(sizes) > 1:
        first = images[0].shape[1:]
        other = next(i for i, img in enumerate(images) if img.shape[1:] != first)
        raise ValueError(f"images of different sizes: {files[0]} is {first[0]}x{first[1]} but {files[other]} is "
                         f"{images[other].shape[1]}x{images[other].shape[2]}; choose one size to resize all images to "
                         "(size=(H, W), or \"size\" in the folder's JSON description)")
    return torch.from_numpy(np.stack(images).astype(np.float32) / 255.0)


def load_image_folder(folder: str | os.PathLike, size: Sequence[int] | None = None, channels: int | None = None,
                      test_fraction: float = 0.2, seed: int = 0, name: str = "image-folder") -> DatasetBundle:
    """Read an image folder (see the module docstring) into a ``DatasetBundle``."""
    folder = Path(folder).expanduser()
    size_hw = _check_size(size)
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (colour), got {channels!r}")
    split = {p.name for p in _visible(folder) if p.is_dir()} if folder.is_dir() else set()
    if {"train", "test"} <= split:
        train_classes, test_classes = class_folders(folder / "train"), class_folders(folder / "test")
        names = sorted(train_classes)
        if sorted(test_classes) != names:
            raise ValueError(f"{folder}: train/ has classes {names} but test/ has {sorted(test_classes)}; they must match")
        train = _read_classes(train_classes, channels, size_hw, names)
        test = _read_classes(test_classes, channels, size_hw, names)
        x = _stack(train[0] + test[0], train[2] + test[2], channels)
        n = len(train[1])
        train_x, test_x = x[:n], x[n:]
        train_y, test_y = torch.tensor(train[1]), torch.tensor(test[1])
    else:
        classes = class_folders(folder)
        names = sorted(classes)
        images, labels, files = _read_classes(classes, channels, size_hw, names)
        x, y = _stack(images, files, channels), torch.tensor(labels)
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
        train_idx, test_idx = stratified_split(y.numpy(), test_fraction, seed)
        if len(test_idx) == 0 or len(train_idx) == 0:
            raise ValueError(f"image folder {folder}: {len(y)} images are too few to split {test_fraction:.0%} off as a test set")
        train_x, train_y, test_x, test_y = x[train_idx], y[train_idx], x[test_idx], y[test_idx]
    c, h, w = train_x.shape[1:]
    return DatasetBundle(name, train_x, train_y.to(torch.int64), test_x, test_y.to(torch.int64), tuple(names),
                         f"images from {folder.name}/: {len(train_y):,} train / {len(test_y):,} test, {h}x{w}, "
                         f"{'grey' if c == 1 else 'colour'}, {len(names)} classes")


def _check_size(size: Sequence[int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    values = list(size) if isinstance(size, (list, tuple)) else []
    if len(values) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 1024 for v in values):
        raise ValueError(f"size must be (H, W) with whole numbers 1..1024, got {size!r}")
    return values[0], values[1]


def read_descriptor(path: Path, allowed: set[str]) -> tuple[Path, dict]:
    """(the data path, the other options) of a dataset's JSON description; unknown keys refused."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable JSON description of a dataset ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("path"), str):
        raise ValueError(f"{path}: a dataset description is a JSON object with a \"path\" (got {str(data)[:80]})")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown} (known: {sorted(allowed)})")
    options = {k: v for k, v in data.items() if k != "path"}
    return (path.parent / data["path"]).expanduser(), options


@DATASETS.register("image-folder")
def load_registered_image_folder(root=None, download: bool = False) -> DatasetBundle:
    """The ``"image-folder"`` dataset: ``root`` is the folder or its JSON description."""
    if root is None:
        raise ValueError("dataset 'image-folder' needs data_root: the folder with one subfolder per class "
                         "(or a JSON file describing it)")
    root = Path(root)
    if root.suffix.lower() == ".json" and root.is_file():
        folder, options = read_descriptor(root, DESCRIPTOR_KEYS)
        return load_image_folder(folder, **options)
    return load_image_folder(root)


__all__ = ["IMAGE_SUFFIXES", "class_folders", "load_image_folder", "read_descriptor", "read_image"]
