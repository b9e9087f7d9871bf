"""The typed bundle every dataset loader returns."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DatasetBundle:
    """Train and test tensors of one image-classification dataset.

    Images are float32 in [0, 1] with a channel axis, shape (N, C, H, W); labels are int64, shape (N,).
    """

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    class_names: tuple[str, ...]
    description: str

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.train_images.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __post_init__(self) -> None:
        for split, images, labels in (
            ("train", self.train_images, self.train_labels),
            ("test", self.test_images, self.test_labels),
        ):
            if images.ndim != 4:
                raise ValueError(f"{self.name}: {split} images must be (N, C, H, W), got shape {tuple(images.shape)}")
            if images.dtype != torch.float32:
                raise ValueError(f"{self.name}: {split} images must be float32, got {images.dtype}")
            if labels.dtype != torch.int64 or labels.ndim != 1:
                raise ValueError(f"{self.name}: {split} labels must be a 1-D int64 tensor")
            if len(images) != len(labels):
                raise ValueError(
                    f"{self.name}: {len(images)} {split} images but {len(labels)} {split} labels"
                )

    def with_train_subset(self, indices: torch.Tensor) -> "DatasetBundle":
        """The same dataset trained on ``train_images[indices]`` only (the test set unchanged)."""
        return DatasetBundle(self.name, self.train_images[indices], self.train_labels[indices], self.test_images,
                             self.test_labels, self.class_names, f"{self.description} ({len(indices)} training images)")

    def with_train_classes(self, classes: Sequence[int]) -> "DatasetBundle":
        """The same dataset trained only on the training images of ``classes`` (indices into
        ``class_names``), the test set unchanged: Hinton et al. (2015, section 3) distil from a
        transfer set with every 3 removed and still test on all ten digits.

        Raises ``ValueError`` naming any class the dataset does not have."""
        check_classes(self, classes)
        keep = torch.isin(self.train_labels, torch.as_tensor(list(classes), dtype=torch.int64))
        indices = torch.nonzero(keep).flatten()
        kept = ", ".join(self.class_names[c] for c in sorted(classes))
        return DatasetBundle(self.name, self.train_images[indices], self.train_labels[indices], self.test_images,
                             self.test_labels, self.class_names, f"{self.description} (training images of {kept} only)")

    def __repr__(self) -> str:
        c, h, w = self.input_shape
        return (
            f"DatasetBundle({self.name!r}: {len(self.train_labels)} train / {len(self.test_labels)} test, "
            f"{c}x{h}x{w}, {self.num_classes} classes)"
        )


def check_classes(dataset: DatasetBundle, classes: Sequence[int]) -> None:
    """``ValueError`` naming every entry of ``classes`` that is not a class index of ``dataset``."""
    unknown = [c for c in classes if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < dataset.num_classes]
    if unknown:
        raise ValueError(f"train_classes {unknown}: {dataset.name} has no such class (its classes are 0..{dataset.num_classes - 1}: "
                         f"{', '.join(dataset.class_names)})")


def balanced_subset(labels: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    """Sorted indices of ``size`` training images, as even across classes as ``size`` allows
    (the first ``size % K`` classes get one more), drawn with ``seed``: the small labelled transfer
    set of Hinton et al. (2015, section 3) experiments, where soft targets matter most.

    Raises ``ValueError`` when ``size`` is below 1 or above the number of images, or a class has too
    few images for its share.
    """
    n = len(labels)
    if not 1 <= size <= n:
        raise ValueError(f"train_subset must be 1..{n} (the training set's size), got {size}")
    classes = torch.unique(labels).tolist()
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    picked = []
    for i, c in enumerate(classes):
        share = size // len(classes) + (1 if i < size % len(classes) else 0)
        members = perm[labels[perm] == c]
        if len(members) < share:
            raise ValueError(f"train_subset {size}: class {c} has only {len(members)} training images, "
                             f"fewer than its share of {share}")
        picked.append(members[:share])
    return torch.sort(torch.cat(picked)).values

