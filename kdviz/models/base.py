"""The contract every kdviz model keeps: logits from ``forward``, named features on request.

Later methods (FSP matrices, FitNets hints, pruning, quantization) tap intermediate features by
name, so each model lists ``feature_names`` in forward order and returns them from
``forward_with_features``. Features of fully connected layers are 2-D (B, D); convolutional ones
are 4-D (B, C, H, W).
"""
from __future__ import annotations

import torch
from torch import nn


class FeatureModel(nn.Module):
    """Base class: subclasses implement ``forward_with_features`` and set ``feature_names``."""

    feature_names: tuple[str, ...] = ()

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__()
        if len(input_shape) != 3 or min(input_shape) < 1:
            raise ValueError(f"input_shape must be (C, H, W) with positive sizes, got {input_shape}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        self.input_shape = tuple(int(s) for s in input_shape)
        self.num_classes = int(num_classes)

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits (B, num_classes) and a dict of named intermediate features, in forward order."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(x)[0]
