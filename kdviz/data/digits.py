"""scikit-learn's bundled 8x8 handwritten digits (1,797 images): kdviz's offline default dataset."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from .bundle import DatasetBundle
from .registry import DATASETS

TEST_FRACTION = 0.25
SPLIT_SEED = 0


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices with each class split in the same proportion, reproducibly."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_test = int(round(len(idx) * test_fraction))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def read_sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """Pixels (1797, 64) in 0..16 and labels (1797,), read from the CSV that scikit-learn ships.

    Reading the file directly skips importing ``sklearn.datasets`` (2-3 s of CPU on a cold start);
    ``sklearn.datasets.load_digits`` reads this same file, so the data are identical.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("the digits dataset needs scikit-learn installed (pip install scikit-learn)")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():  # a future layout: fall back to the public API
        from sklearn.datasets import load_digits as sklearn_digits

        raw = sklearn_digits()
        return raw.data, raw.target
    table = np.loadtxt(path, delimiter=",")
    return table[:, :-1], table[:, -1].astype(np.int64)


@DATASETS.register("digits")
def load_digits(root=None, download: bool = False) -> DatasetBundle:
    """The 8x8 digits, pixel values 0..16 scaled to [0, 1], split 75/25 stratified with a fixed seed."""
    pixels, targets = read_sklearn_digits()
    images = torch.from_numpy((pixels / 16.0).astype(np.float32)).reshape(-1, 1, 8, 8)
    labels = torch.from_numpy(targets.astype(np.int64))
    train_idx, test_idx = stratified_split(targets, TEST_FRACTION, SPLIT_SEED)
    return DatasetBundle(
        name="digits",
        train_images=images[train_idx],
        train_labels=labels[train_idx],
        test_images=images[test_idx],
        test_labels=labels[test_idx],
        class_names=tuple(str(d) for d in range(10)),
        description="scikit-learn's 8x8 handwritten digits: 1,797 images, 10 classes (bundled, offline)",
    )
