"""A small CIFAR-style ResNet whose sections (stages) are named, for FSP and FitNets.

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition" (CVPR 2016), section 4.2: a
3x3 stem convolution, then stages of basic blocks (two 3x3 conv + BN, identity shortcut) with the
channel count doubling and the spatial size halving (stride 2) at the start of every stage after
the first, then global average pooling and one linear layer. Yim et al., "A Gift from Knowledge
Distillation" (CVPR 2017), section 3.2 and figure 3, take the FSP matrix between the first and
the last feature map of each such section; a deep teacher and a shallow student that share the
channel count of every stage then have FSP matrices of the same shape.

Features (forward order), for ``N = len(channels)`` stages:
    ``stageK_in``  (B, C_{K-1}, H_{K-1}, W_{K-1})  the map entering stage K (stem output for K = 1)
    ``stageK_out`` (B, C_K, H_K, W_K)              the map leaving stage K (after its last ReLU)
    ``pool``       (B, C_N)                        the global-average-pooled last map
``stageK_in`` is the same tensor as ``stage{K-1}_out``; both names exist so FSP pairs read
``(stageK_in, stageK_out)``. With 3x3 stride-2 convs (padding 1) a side of n becomes ceil(n / 2):
8x8 digits give 8, 4, 2 and 28x28 MNIST 28, 14, 7.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import FeatureModel
from .registry import MODELS


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus shortcut, then ReLU (He et al. 2016, figure 2).

    The shortcut is the identity, or a 1x1 stride-s conv + BN when the shape changes
    (the paper's projection shortcut, option B).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


def _check_positive_ints(name: str, values: Sequence[int]) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in values)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of positive integers, got {values!r}") from None
    if not out or any(v < 1 for v in out):
        raise ValueError(f"{name} must be a non-empty sequence of positive integers, got {values!r}")
    return out


class ResNet(FeatureModel):
    """stem -> stage1 .. stageN (``blocks_per_stage[k]`` basic blocks each) -> GAP -> fc.

    ``blocks_per_stage=(3, 3, 3)`` is He et al.'s ResNet-20 (a teacher), ``(1, 1, 1)`` ResNet-8
    (a student with the same per-stage channels, so FSP matrices match).
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        blocks_per_stage: Sequence[int] = (1, 1, 1),
        channels: Sequence[int] = (16, 32, 64),
    ) -> None:
        super().__init__(input_shape, num_classes)
        blocks = _check_positive_ints("blocks_per_stage", blocks_per_stage)
        widths = _check_positive_ints("channels", channels)
        if len(blocks) != len(widths):
            raise ValueError(
                f"blocks_per_stage {blocks} and channels {widths} must have one entry per stage"
            )
        self.blocks_per_stage, self.channels = blocks, widths
        in_c = self.input_shape[0]
        self.stem = nn.Sequential(
            nn.Conv2d(in_c, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
        )
        prev = widths[0]
        for k, (n_blocks, width) in enumerate(zip(blocks, widths)):
            stride = 1 if k == 0 else 2
            layers = [BasicBlock(prev, width, stride)] + [BasicBlock(width, width) for _ in range(n_blocks - 1)]
            setattr(self, f"stage{k + 1}", nn.Sequential(*layers))  # module names match feature names
            prev = width
        self.fc = nn.Linear(prev, num_classes)
        names: list[str] = []
        for k in range(1, len(widths) + 1):
            names += [f"stage{k}_in", f"stage{k}_out"]
        self.feature_names = (*names, "pool")

    def stage_shapes(self) -> list[tuple[int, int, int]]:
        """(C, H, W) of every stage's output for this model's input shape."""
        _, h, w = self.input_shape
        shapes = []
        for k, width in enumerate(self.channels):
            if k > 0:
                h, w = (h + 1) // 2, (w + 1) // 2
            shapes.append((width, h, w))
        return shapes

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"resnet expects input (B, {', '.join(map(str, self.input_shape))}), got {tuple(x.shape)}")
        features: dict[str, torch.Tensor] = {}
        h = self.stem(x)
        for k in range(1, len(self.channels) + 1):
            features[f"stage{k}_in"] = h
            h = getattr(self, f"stage{k}")(h)
            features[f"stage{k}_out"] = h
        pooled = h.mean(dim=(2, 3))
        features["pool"] = pooled
        return self.fc(pooled), features


@MODELS.register("resnet")
def build_resnet(input_shape, num_classes, blocks_per_stage=(1, 1, 1), channels=(16, 32, 64)) -> ResNet:
    """A small ResNet; ``blocks_per_stage=(3, 3, 3)`` for a teacher, ``(1, 1, 1)`` for a student."""
    return ResNet(input_shape, num_classes, blocks_per_stage=blocks_per_stage, channels=channels)
