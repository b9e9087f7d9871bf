"""A seeded toy dataset made in memory: class-specific blob patterns plus noise, for fast tests."""
from __future__ import annotations

import torch

from .bundle import DatasetBundle
from .registry import DATASETS


def make_synthetic(
    n_train: int = 512, n_test: int = 256, num_classes: int = 4, size: int = 8, noise: float = 0.15, seed: int = 0
) -> DatasetBundle:
    """Each class is a fixed random 1 x size x size prototype in [0, 1]; samples add Gaussian noise
    and are clipped to [0, 1]. Learnable in a few dozen steps, never perfectly separable."""
    if num_classes < 2 or size < 4 or n_train < num_classes or n_test < 1:
        raise ValueError("synthetic data needs num_classes >= 2, size >= 4 and at least one sample per class")
    g = torch.Generator().manual_seed(seed)
    prototypes = torch.rand(num_classes, 1, size, size, generator=g)

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(n) % num_classes
        labels = labels[torch.randperm(n, generator=g)]
        images = prototypes[labels] + noise * torch.randn(n, 1, size, size, generator=g)
        return images.clamp(0, 1).float(), labels.long()

    train_x, train_y = sample(n_train)
    test_x, test_y = sample(n_test)
    return DatasetBundle(
        name="synthetic",
        train_images=train_x,
        train_labels=train_y,
        test_images=test_x,
        test_labels=test_y,
        class_names=tuple(f"class {i}" for i in range(num_classes)),
        description=f"seeded synthetic blobs: {num_classes} classes of {size}x{size} noisy prototypes",
    )


@DATASETS.register("synthetic")
def load_synthetic(root=None, download: bool = False) -> DatasetBundle:
    return make_synthetic()
