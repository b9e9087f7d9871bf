"""The projection network of Ravi, "ProjectionNet" (arXiv:1708.00630, 2017), sections 3.2-3.3.

Input -> P(x) in {-1, +1}^{T d} (T locality-sensitive hash functions of d bits each, random
hyperplanes fixed from ``projection_seed``: ``kdviz.distill.projection``) -> [Linear -> ReLU] per
hidden width -> Linear logits. Only the fully connected layers are trained; P is a non-persistent
buffer, regenerated from the seed when the model is built, so neither checkpoints nor the deployed
model store it (``model_bytes`` counts only the float weights).

Features: ``bits`` (B, T*d) in {0, 1} (P(x) as bits), then ``fc1 .. fcN`` post-ReLU (B, width).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..distill.projection import lsh_planes, projection_bits
from .base import FeatureModel
from .registry import MODELS

FLOAT32_BYTES = 4
SEED_BYTES = 8  # a 64-bit seed regenerates every hyperplane of P


class ProjectionNet(FeatureModel):
    """h_p of eq. 1: fully connected layers on the T*d projection bits of the input."""

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, num_hashes: int = 8,
                 bits_per_hash: int = 8, hidden: Sequence[int] = (128,), projection_seed: int = 0) -> None:
        super().__init__(input_shape, num_classes)
        hidden = tuple(int(h) for h in hidden)
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden widths must be positive, got {hidden}")
        c, h, w = self.input_shape
        self.num_hashes, self.bits_per_hash, self.projection_seed = int(num_hashes), int(bits_per_hash), int(projection_seed)
        self.register_buffer("planes", lsh_planes(c * h * w, num_hashes, bits_per_hash, projection_seed),
                             persistent=False)
        self.hidden = hidden
        widths = (self.num_bits, *hidden)
        for i in range(len(hidden)):
            setattr(self, f"fc{i + 1}", nn.Linear(widths[i], widths[i + 1]))
        setattr(self, f"fc{len(hidden) + 1}", nn.Linear(widths[-1], num_classes))
        self.feature_names = ("bits", *(f"fc{i + 1}" for i in range(len(hidden))))

    @property
    def num_bits(self) -> int:
        """T * d, the length of P(x)."""
        return self.num_hashes * self.bits_per_hash

    def bits(self, x: torch.Tensor) -> torch.Tensor:
        """P(x) as (B, T*d) 0/1 bits (no gradient: P is fixed)."""
        return projection_bits(x, self.planes)

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        bits = self.bits(x)
        features: dict[str, torch.Tensor] = {"bits": bits}
        h = 2.0 * bits - 1.0  # sgn(<w, x>) in {-1, +1}, section 3.3
        for name in self.feature_names[1:]:
            h = torch.relu(getattr(self, name)(h))
            features[name] = h
        return getattr(self, f"fc{len(self.hidden) + 1}")(h), features


def float_bytes(model: nn.Module) -> int:
    """Bytes of a model's trainable float32 weights (4 per parameter); buffers are not counted."""
    return FLOAT32_BYTES * sum(p.numel() for p in model.parameters())


def model_bytes(model: ProjectionNet) -> int:
    """The deployed projection net's size: its float32 weights plus the seed of P (``SEED_BYTES``);
    the T*d*D hyperplanes cost nothing, being regenerated from the seed."""
    return float_bytes(model) + SEED_BYTES


@MODELS.register("projection_net")
def build_projection_net(input_shape, num_classes, num_hashes=8, bits_per_hash=8, hidden=(128,),
                         projection_seed=0) -> ProjectionNet:
    """Ravi 2017's projection network: ``num_hashes`` (T) hash functions of ``bits_per_hash`` (d) bits
    each, then fully connected layers of ``hidden`` widths."""
    return ProjectionNet(input_shape, num_classes, num_hashes=num_hashes, bits_per_hash=bits_per_hash,
                         hidden=hidden, projection_seed=projection_seed)


__all__ = ["FLOAT32_BYTES", "ProjectionNet", "SEED_BYTES", "build_projection_net", "float_bytes", "model_bytes"]
