"""Fully connected networks: Hinton et al. 2015's MLPs and Han et al. 2015's LeNet-300-100.

Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network" (2015), section 3: a
1200-1200 teacher with dropout and an 800-800 student on MNIST. Han, Pool, Tran, Dally, "Learning
both Weights and Connections for Efficient Neural Networks" (NeurIPS 2015), table 1: LeNet-300-100.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .base import FeatureModel
from .dropout import SeededDropout
from .registry import MODELS


class MLP(FeatureModel):
    """Flatten -> [Linear -> ReLU -> Dropout] per hidden width -> Linear logits.

    Features: ``fc1 .. fcN`` are the post-ReLU activations (B, width) of the hidden layers.
    Linear layers are named ``fc1 .. fcN+1`` so pruning tables read like the papers'.
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        hidden: Sequence[int] = (1200, 1200),
        dropout: float = 0.0,
        input_dropout: float = 0.0,
    ) -> None:
        super().__init__(input_shape, num_classes)
        hidden = tuple(int(h) for h in hidden)
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden widths must be positive, got {hidden}")
        if not 0.0 <= dropout < 1.0 or not 0.0 <= input_dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout} and input_dropout {input_dropout}")
        self.hidden = hidden
        c, h, w = self.input_shape
        widths = (c * h * w, *hidden)
        self.input_dropout = SeededDropout(input_dropout)
        for i in range(len(hidden)):
            setattr(self, f"fc{i + 1}", nn.Linear(widths[i], widths[i + 1]))
        setattr(self, f"fc{len(hidden) + 1}", nn.Linear(widths[-1], num_classes))
        self.dropout = SeededDropout(dropout)
        self.feature_names = tuple(f"fc{i + 1}" for i in range(len(hidden)))

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x = self.input_dropout(x.flatten(1))
        features: dict[str, torch.Tensor] = {}
        for name in self.feature_names:
            x = torch.relu(getattr(self, name)(x))
            features[name] = x
            x = self.dropout(x)
        logits = getattr(self, f"fc{len(self.hidden) + 1}")(x)
        return logits, features


@MODELS.register("mlp")
def build_mlp(input_shape, num_classes, hidden=(1200, 1200), dropout=0.0, input_dropout=0.0) -> MLP:
    """Hinton et al. 2015's MLP; ``hidden=(1200, 1200), dropout=0.5`` is the paper's teacher,
    ``hidden=(800, 800)`` its student."""
    return MLP(input_shape, num_classes, hidden=hidden, dropout=dropout, input_dropout=input_dropout)


@MODELS.register("lenet300")
def build_lenet300(input_shape, num_classes, dropout=0.0) -> MLP:
    """LeNet-300-100 (Han et al. 2015, table 1): 784-300-100-10 on MNIST, layers fc1, fc2, fc3."""
    return MLP(input_shape, num_classes, hidden=(300, 100), dropout=dropout)
