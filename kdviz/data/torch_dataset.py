"""Any torch ``Dataset`` or ``DataLoader`` as a kdviz ``DatasetBundle``.

kdviz keeps a dataset as whole tensors (``DatasetBundle``: float32 (N, C, H, W) images, int64
labels), because its views evaluate the full test set at every slider stop and its engine feeds
batches by index from a seeded generator. ``bundle_from_torch`` reads a dataset once, item by item
(or a loader batch by batch), into those tensors. Images may be tensors, numpy arrays or PIL images,
(H, W), (C, H, W) or (H, W, C) with 1 or 3 channels; integer pixels (0..255) are scaled to [0, 1], float ones
kept as they are. Without a test set, a stratified split with a fixed seed makes one
(``digits.stratified_split``), so the same data always gives the same split.

``register_torch_dataset(name, train, test)`` also registers the bundle in the dataset registry, so
``TrainConfig(dataset=name)`` trains on it in this process (a notebook's own data through the engine).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

import threading

from .bundle import DatasetBundle
from .digits import stratified_split
from .registry import DATASETS

MAX_ITEMS = 500_000
_INTEGERS = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def as_image_tensor(image: object, where: str) -> torch.Tensor:
    """One image as float32 (C, H, W): integer pixels scaled by 1/255, channels-last turned channels-first."""
    if hasattr(image, "mode") and hasattr(image, "size"):  # a PIL image
        image = np.asarray(image)
    tensor = image if isinstance(image, torch.Tensor) else torch.as_tensor(np.asarray(image))
    if tensor.dtype == torch.bool or tensor.is_complex() or not (tensor.dtype.is_floating_point or tensor.dtype in _INTEGERS):
        raise ValueError(f"{where}: an image must hold real numbers, got dtype {tensor.dtype}")
    tensor = tensor.to(torch.float32) / (1.0 if tensor.dtype.is_floating_point else 255.0)  # integer pixels: 0..255
    if tensor.ndim == 2:
        tensor = tensor[None]
    elif tensor.ndim == 3 and tensor.shape[0] not in (1, 3) and tensor.shape[-1] in (1, 3):
        tensor = tensor.permute(2, 0, 1)
    if tensor.ndim != 3:
        raise ValueError(f"{where}: an image must be (H, W), (C, H, W) or (H, W, C), got shape {tuple(tensor.shape)}")
    return tensor.contiguous()


def _label(value: object, where: str) -> int:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{where}: a label must be one class index, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, (np.integer,)):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where}: a label must be a class index >= 0, got {value!r}")
    return value


def _pairs(source: Dataset | DataLoader | Iterable) -> Iterable[tuple[object, object]]:
    """(image, label) pairs of a dataset, or of a loader's batches unbatched."""
    if isinstance(source, DataLoader):
        for images, labels in source:
            yield from zip(images, labels)
    elif isinstance(source, IterableDataset) or not hasattr(source, "__len__"):
        yield from source
    else:
        for i in range(len(source)):
            yield source[i]


def read_tensors(source: Dataset | DataLoader | Iterable, what: str = "dataset",
                 max_items: int = MAX_ITEMS) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, C, H, W) float32, labels (N,) int64) of every item of ``source``."""
    images, labels = [], []
    for index, item in enumerate(_pairs(source)):
        where = f"{what}, item {index}"
        if index >= max_items:
            raise ValueError(f"{what}: more than {max_items:,} items; pass max_items to read more")
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise ValueError(f"{where}: each item must be (image, label), got {type(item).__name__}")
        image = as_image_tensor(item[0], where)
        if images and image.shape != images[0].shape:
            raise ValueError(f"{where}: image of shape {tuple(image.shape)}, but item 0 is {tuple(images[0].shape)}; "
                             "all images must have one size (resize them in the dataset's transform)")
        images.append(image)
        labels.append(_label(item[1], where))
    if not images:
        raise ValueError(f"{what} is empty: it yielded no (image, label) items")
    return torch.stack(images), torch.tensor(labels, dtype=torch.int64)


def bundle_from_torch(train: Dataset | DataLoader | Iterable, test: Dataset | DataLoader | Iterable | None = None,
                      name: str = "torch-dataset", class_names: Sequence[str] | None = None,
                      test_fraction: float = 0.2, seed: int = 0, max_items: int = MAX_ITEMS,
                      description: str = "") -> DatasetBundle:
    """A ``DatasetBundle`` from torch data (see the module docstring).

    ``test`` None: a stratified ``test_fraction`` of ``train`` (seeded by ``seed``) is the test set.
    ``class_names``: default ``train.classes`` when the dataset has it, else ``"0" .. "K-1"``.
    """
    train_x, train_y = read_tensors(train, "training data", max_items)
    if test is None:
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
        train_idx, test_idx = stratified_split(train_y.numpy(), test_fraction, seed)
        if len(test_idx) == 0 or len(train_idx) == 0:
            raise ValueError(f"{len(train_y)} items are too few to split {test_fraction:.0%} off as a test set")
        train_x, train_y, test_x, test_y = train_x[train_idx], train_y[train_idx], train_x[test_idx], train_y[test_idx]
    else:
        test_x, test_y = read_tensors(test, "test data", max_items)
        if test_x.shape[1:] != train_x.shape[1:]:
            raise ValueError(f"test images are {tuple(test_x.shape[1:])} but training images {tuple(train_x.shape[1:])}")
    classes = int(max(train_y.max(), test_y.max())) + 1
    names = class_names if class_names is not None else getattr(getattr(train, "dataset", train), "classes", None)
    names = tuple(str(c) for c in names) if names is not None else tuple(str(c) for c in range(classes))
    if len(names) < classes:
        raise ValueError(f"{len(names)} class names for labels up to {classes - 1}")
    if len(names) < 2:
        raise ValueError(f"{name}: a classification dataset needs at least two classes, found {len(names)}")
    c, h, w = train_x.shape[1:]
    text = description or f"{len(train_y):,} train / {len(test_y):,} test {h}x{w} images, {c} channel(s), {len(names)} classes"
    return DatasetBundle(name, train_x, train_y, test_x, test_y, names, text)


_REGISTERED: dict[str, DatasetBundle] = {}
_REGISTER_LOCK = threading.Lock()


def _same(a: DatasetBundle, b: DatasetBundle) -> bool:
    return all(x.shape == y.shape and torch.equal(x, y) for x, y in (
        (a.train_images, b.train_images), (a.train_labels, b.train_labels),
        (a.test_images, b.test_images), (a.test_labels, b.test_labels))) and a.class_names == b.class_names


def register_torch_dataset(name: str, train: "DatasetBundle | Dataset | DataLoader | Iterable",
                           test: "Dataset | DataLoader | Iterable | None" = None, **options) -> DatasetBundle:
    """Register torch data (or a ``DatasetBundle``) as dataset ``name`` for this process's engine runs.

    Registering the same data again (a notebook cell run twice) is allowed; other data under a name
    already registered is refused, because runs cache a dataset by name: choose a new name."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("register_torch_dataset needs a non-empty dataset name")
    bundle = train if isinstance(train, DatasetBundle) else bundle_from_torch(train, test, name=name, **options)
    with _REGISTER_LOCK:
        known = _REGISTERED.get(name)
        if known is not None:
            if not _same(known, bundle):
                raise ValueError(f"dataset {name!r} is already registered with other data in this process "
                                 "(runs cache a dataset by name); register the new data under a new name")
            return known
        if name in DATASETS:
            raise ValueError(f"dataset name {name!r} is a kdviz dataset already; choose another name")
        _REGISTERED[name] = bundle
        DATASETS.register(name)(lambda root=None, download=False: _REGISTERED[name])
    return bundle


__all__ = ["as_image_tensor", "bundle_from_torch", "read_tensors", "register_torch_dataset"]
