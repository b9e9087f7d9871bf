"""The typed bundle every dataset loader returns."""
from __future__ import annotations

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

    def __repr__(self) -> str:
        c, h, w = self.input_shape
        return (
            f"DatasetBundle({self.name!r}: {len(self.train_labels)} train / {len(self.test_labels)} test, "
            f"{c}x{h}x{w}, {self.num_classes} classes)"
        )
