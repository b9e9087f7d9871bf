"""Convolutional networks: LeNet-5 and the small CNN teacher used for distillation.

LeNet-5: LeCun et al., "Gradient-Based Learning Applied to Document Recognition" (1998), in the
Caffe form Han et al. 2015 prune (conv 20 @5x5, pool, conv 50 @5x5, pool, fc 500, fc 10).
The CNN teacher (two 3x3 conv layers of 32 and 64 channels, a 256-unit dense layer with dropout)
is the teacher that made distillation work on 2 CPU cores in our measurements (issue 3): it reaches
about 53 MNIST test errors in 8 epochs, where the paper's 1200-1200 MLP needs far longer.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from .base import FeatureModel
from .dropout import SeededDropout
from .registry import MODELS


def _pooled_size(size: int, times: int) -> int:
    for _ in range(times):
        size = size // 2
    return size


class LeNet5(FeatureModel):
    """conv1 -> pool -> conv2 -> pool -> fc1 -> fc2. Padding keeps 'same' sizes, so 8x8 digits fit."""

    feature_names = ("conv1", "conv2", "fc1")

    def __init__(self, input_shape, num_classes, channels=(20, 50), hidden=500, dropout=0.0) -> None:
        super().__init__(input_shape, num_classes)
        c, h, w = self.input_shape
        self.conv1 = nn.Conv2d(c, channels[0], 5, padding=2)
        self.conv2 = nn.Conv2d(channels[0], channels[1], 5, padding=2)
        flat = channels[1] * _pooled_size(h, 2) * _pooled_size(w, 2)
        if flat == 0:
            raise ValueError(f"lenet5 needs images of at least 4x4, got {h}x{w}")
        self.fc1 = nn.Linear(flat, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)
        self.dropout = SeededDropout(dropout)

    def forward_with_features(self, x):
        f1 = F.relu(self.conv1(x))
        f2 = F.relu(self.conv2(F.max_pool2d(f1, 2)))
        h = F.relu(self.fc1(F.max_pool2d(f2, 2).flatten(1)))
        return self.fc2(self.dropout(h)), {"conv1": f1, "conv2": f2, "fc1": h}


class SmallCNN(FeatureModel):
    """conv1 (3x3) -> pool -> conv2 (3x3) -> pool -> fc1 (dense, dropout) -> fc2 logits.

    Pooling after each conv layer keeps a training step on 28x28 MNIST near 80-100 ms on 2 CPU
    cores (conv2 at full 28x28 resolution cost 340 ms a step and made the teacher take 20 min).
    """

    feature_names = ("conv1", "conv2", "fc1")

    def __init__(self, input_shape, num_classes, channels=(32, 64), hidden=256, dropout=0.5,
                 feature_dropout: float | None = None) -> None:
        super().__init__(input_shape, num_classes)
        c, h, w = self.input_shape
        self.conv1 = nn.Conv2d(c, channels[0], 3, padding=1)
        self.conv2 = nn.Conv2d(channels[0], channels[1], 3, padding=1)
        self.fc1 = nn.Linear(channels[1] * _pooled_size(h, 2) * _pooled_size(w, 2), hidden)
        self.fc2 = nn.Linear(hidden, num_classes)
        self.dropout = SeededDropout(dropout)
        self.feature_dropout = SeededDropout(dropout if feature_dropout is None else feature_dropout)

    def forward_with_features(self, x):
        f1 = F.relu(self.conv1(x))
        f2 = F.relu(self.conv2(F.max_pool2d(f1, 2)))
        h = F.relu(self.fc1(self.feature_dropout(F.max_pool2d(f2, 2)).flatten(1)))
        return self.fc2(self.dropout(h)), {"conv1": f1, "conv2": f2, "fc1": h}


@MODELS.register("lenet5")
def build_lenet5(input_shape, num_classes, channels=(20, 50), hidden=500, dropout=0.0) -> LeNet5:
    return LeNet5(input_shape, num_classes, channels=tuple(channels), hidden=hidden, dropout=dropout)


@MODELS.register("cnn")
def build_cnn(input_shape, num_classes, channels=(32, 64), hidden=256, dropout=0.5,
              feature_dropout: float | None = None) -> SmallCNN:
    """``dropout`` after the dense layer; ``feature_dropout`` on the pooled conv features (default: ``dropout``)."""
    return SmallCNN(input_shape, num_classes, channels=tuple(channels), hidden=hidden, dropout=dropout,
                    feature_dropout=feature_dropout)
