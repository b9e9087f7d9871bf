"""MNIST and Fashion-MNIST from a folder of the four standard IDX files (gzip or raw), or downloaded.

MNIST: LeCun, Bottou, Bengio and Haffner (1998), "Gradient-based learning applied to document
recognition", http://yann.lecun.com/exdb/mnist/. Fashion-MNIST: Xiao, Rasul and Vollgraf (2017),
"Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning Algorithms",
arXiv:1708.07747. Both: 60,000 training and 10,000 test images of 28x28 grey pixels, 10 classes,
in files named ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
``t10k-images-idx3-ubyte[.gz]`` and ``t10k-labels-idx1-ubyte[.gz]``.

``load_dataset("mnist", root=folder)`` reads ``folder``; ``download=True`` first fetches missing
files into ``root`` (or the cache folder, see :func:`kdviz.data.download.cache_dir`); with neither,
the cache folder is read when it holds the files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .bundle import DatasetBundle
from .download import cache_dir, download_dataset, mirror_env_var, verify_recorded_checksums
from .idx import IdxFileNotFound, IdxFormatError, has_idx_file, read_image_label_pair
from .registry import DATASETS

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
IDX_FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)


@dataclass(frozen=True)
class IdxDatasetSpec:
    """What distinguishes one IDX image dataset from another: its name, classes and image size."""

    name: str
    title: str
    class_names: tuple[str, ...]
    description: str
    image_size: tuple[int, int] = (28, 28)


MNIST = IdxDatasetSpec(
    name="mnist",
    title="MNIST",
    class_names=tuple(str(d) for d in range(10)),
    description="MNIST handwritten digits: 60,000 train / 10,000 test 28x28 grey images, 10 classes",
)

FASHION_MNIST = IdxDatasetSpec(
    name="fashion-mnist",
    title="Fashion-MNIST",
    class_names=(
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
    description="Zalando's Fashion-MNIST: 60,000 train / 10,000 test 28x28 grey clothing images, 10 classes",
)


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) pixels 0..255 -> float32 (N, 1, H, W) in [0, 1]."""
    # astype makes a new writable array (the parsed one is a read-only view of the file's bytes).
    return torch.from_numpy(images.astype(np.float32)[:, None]).div_(255.0)


def labels_to_tensor(labels: np.ndarray) -> torch.Tensor:
    """uint8 (N,) -> int64 (N,)."""
    return torch.from_numpy(labels.astype(np.int64))


def _read_split(folder: Path, spec: IdxDatasetSpec, images_stem: str, labels_stem: str) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = read_image_label_pair(folder, images_stem, labels_stem, spec.image_size, spec.title)
    if len(labels) == 0:
        raise IdxFormatError(
            f"{folder / images_stem}[.gz]: holds 0 images; a {spec.title} split needs at least one"
        )
    if int(labels.max()) >= len(spec.class_names):
        raise IdxFormatError(
            f"{folder / labels_stem}[.gz]: label {int(labels.max())} is out of range; "
            f"{spec.title} has classes 0..{len(spec.class_names) - 1}"
        )
    return images_to_tensor(images), labels_to_tensor(labels)


def load_idx_folder(folder: str | os.PathLike, spec: IdxDatasetSpec = MNIST) -> DatasetBundle:
    """Read the four IDX files of ``spec`` from ``folder`` into a :class:`DatasetBundle`.

    Errors name the file and the problem: a missing folder or file (:class:`IdxFileNotFound`),
    a truncated or corrupt file, a wrong magic number, a wrong image size, labels out of range or
    image and label counts that disagree (:class:`IdxFormatError`, a ``ValueError``).
    """
    folder = Path(folder).expanduser()
    train_x, train_y = _read_split(folder, spec, TRAIN_IMAGES, TRAIN_LABELS)
    test_x, test_y = _read_split(folder, spec, TEST_IMAGES, TEST_LABELS)
    return DatasetBundle(
        name=spec.name,
        train_images=train_x,
        train_labels=train_y,
        test_images=test_x,
        test_labels=test_y,
        class_names=spec.class_names,
        description=spec.description,
    )


def load_idx_dataset(spec: IdxDatasetSpec, root: str | os.PathLike | None, download: bool) -> DatasetBundle:
    """``root`` given: read it (after fetching missing files when ``download``). No ``root``: the
    cache folder, fetched into when ``download``; without ``download`` it must already hold the files.

    Files kdviz downloaded are re-hashed against the checksum recorded when they were verified
    (:func:`kdviz.data.download.verify_recorded_checksums`); a damaged copy is fetched again when
    ``download``, else refused with a message saying how to repair it."""
    folder = Path(root).expanduser() if root is not None else cache_dir(spec.name)
    if download:
        download_dataset(spec.name, folder)
    elif root is None and not all(has_idx_file(folder, stem) for stem in IDX_FILES):
        raise IdxFileNotFound(
            f"{spec.title} is not in the cache folder {folder}. Pass root= a folder holding the four IDX "
            f"files ({', '.join(IDX_FILES)}, gzip or raw), or download=True to fetch them "
            f"(mirrors: see {mirror_env_var(spec.name)}; cache: $KDVIZ_CACHE)."
        )
    verify_recorded_checksums(folder)  # a downloaded file is checked again before every use
    return load_idx_folder(folder, spec)


@DATASETS.register("mnist")
def load_mnist(root: str | os.PathLike | None = None, download: bool = False) -> DatasetBundle:
    """MNIST digits (LeCun et al. 1998) as float32 (N, 1, 28, 28) images in [0, 1] and int64 labels."""
    return load_idx_dataset(MNIST, root, download)


@DATASETS.register("fashion-mnist")
def load_fashion_mnist(root: str | os.PathLike | None = None, download: bool = False) -> DatasetBundle:
    """Fashion-MNIST (Xiao et al. 2017) as float32 (N, 1, 28, 28) images in [0, 1] and int64 labels."""
    return load_idx_dataset(FASHION_MNIST, root, download)
