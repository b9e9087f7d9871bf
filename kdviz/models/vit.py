"""A tiny vision transformer whose attention is open to view, per layer and per head.

Dosovitskiy et al., "An Image is Worth 16x16 Words" (ICLR 2021), section 3.1, eqs. 1-4: the image is
cut into P x P patches, each flattened and linearly embedded (``patch_embed``), a learned class token
is prepended and a learned position embedding added (eq. 1); L pre-norm blocks follow, each
``z' = MSA(LN(z)) + z`` (eq. 2) and ``z = MLP(LN(z')) + z'`` (eq. 3); the class token's final state,
layer-normed, is classified (eq. 4). Multi-head self-attention is Vaswani et al. 2017, eq. 1:
``softmax(Q K^T / sqrt(d_k)) V`` per head, heads concatenated and projected.

Two additions for compression, both from Michel et al., "Are Sixteen Heads Really Better than One?"
(NeurIPS 2019): ``forward_detailed(x, head_mask)`` multiplies each head's output by a gate xi_h
(eq. 2 of that paper; the gradient of the loss with respect to the gates is the head importance of
its eq. 4), and ``prune_heads`` removes heads physically (their rows of the Q, K, V projections and
their columns of the output projection), so a pruned model is really smaller and faster.

Named features (``feature_names``) are the hidden states, (B, N, D) with N = 1 + patches: ``embed``
(the sum of eq. 1) and ``block1`` .. ``blockL``; attention probabilities come from
``forward_detailed`` as one (B, H, N, N) tensor per layer, each row summing to 1.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import FeatureModel
from .dropout import SeededDropout
from .registry import MODELS


class ViTOutputs(NamedTuple):
    """What one forward pass holds: logits (B, K), hidden states (``embed`` then one per block,
    each (B, N, D)) and attention probabilities (one (B, H_l, N, N) per block)."""

    logits: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...]
    attentions: tuple[torch.Tensor, ...]


class MultiHeadSelfAttention(nn.Module):
    """Vaswani et al. 2017, eq. 1 and section 3.2.2, with heads that can be gated and removed."""

    def __init__(self, dim: int, heads: int, head_dim: int) -> None:
        super().__init__()
        if heads < 1 or head_dim < 1:
            raise ValueError(f"attention needs at least one head of width >= 1, got {heads} x {head_dim}")
        self.heads, self.head_dim = int(heads), int(head_dim)
        self.qkv = nn.Linear(dim, 3 * heads * head_dim)
        self.proj = nn.Linear(heads * head_dim, dim)

    def forward(self, x: torch.Tensor, gates: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The block's attention output (B, N, D) and its probabilities (B, H, N, N);
        ``gates`` (H,) scales each head's output (Michel et al. 2019, eq. 2)."""
        b, n, _ = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        probs = torch.softmax(q @ k.transpose(-2, -1) / self.head_dim ** 0.5, dim=-1)
        heads_out = probs @ v  # (B, H, N, head_dim)
        if gates is not None:
            heads_out = heads_out * gates.view(1, -1, 1, 1)
        return self.proj(heads_out.transpose(1, 2).reshape(b, n, self.heads * self.head_dim)), probs

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """The unnormalised scores Q K^T / sqrt(d_k) (B, H, N, N) of the normed input ``x``, before the
        softmax (TinyBERT's eq. 7 target); only the Q and K rows of the projection are computed."""
        b, n, _ = x.shape
        width = self.heads * self.head_dim
        qk = F.linear(x, self.qkv.weight[: 2 * width], self.qkv.bias[: 2 * width])
        q, k = qk.view(b, n, 2, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return q @ k.transpose(-2, -1) / self.head_dim ** 0.5

    def prune(self, keep: Sequence[int]) -> None:
        """Keep only the heads ``keep`` (indices into the current heads), removing the others' weights."""
        keep = sorted(set(int(h) for h in keep))
        if not keep or keep[0] < 0 or keep[-1] >= self.heads:
            raise ValueError(f"keep at least one of heads 0..{self.heads - 1}, got {keep}")
        cols = torch.cat([torch.arange(h * self.head_dim, (h + 1) * self.head_dim) for h in keep])
        rows = torch.cat([cols + part * self.heads * self.head_dim for part in range(3)])
        qkv, proj = nn.Linear(self.qkv.in_features, len(rows)), nn.Linear(len(cols), self.proj.out_features)
        with torch.no_grad():
            qkv.weight.copy_(self.qkv.weight[rows]), qkv.bias.copy_(self.qkv.bias[rows])
            proj.weight.copy_(self.proj.weight[:, cols]), proj.bias.copy_(self.proj.bias)
        self.qkv, self.proj = qkv.to(self.qkv.weight), proj.to(self.proj.weight)  # the old layers' device and dtype
        self.heads = len(keep)


class Block(nn.Module):
    """A pre-norm transformer block (Dosovitskiy et al. 2021, eqs. 2-3) with a GELU MLP."""

    def __init__(self, dim: int, heads: int, head_dim: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = MultiHeadSelfAttention(dim, heads, head_dim)
        self.fc1, self.fc2 = nn.Linear(dim, mlp_dim), nn.Linear(mlp_dim, dim)
        self.dropout = SeededDropout(dropout)

    def forward(self, x: torch.Tensor, gates: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        attended, probs = self.attn(self.norm1(x), gates)
        x = x + self.dropout(attended)
        x = x + self.dropout(self.fc2(F.gelu(self.fc1(self.norm2(x)))))
        return x, probs


class TinyViT(FeatureModel):
    """A ViT for small grey images: ``patch`` x ``patch`` patches, ``depth`` blocks of ``heads`` heads
    of width ``dim // heads``, MLP width ``mlp_ratio * dim``."""

    def __init__(self, input_shape, num_classes, patch: int = 2, dim: int = 64, depth: int = 4, heads: int = 4,
                 mlp_ratio: float = 2.0, dropout: float = 0.0) -> None:
        super().__init__(input_shape, num_classes)
        c, h, w = self.input_shape
        if patch < 1 or h % patch or w % patch:
            raise ValueError(f"the patch size must divide the {h}x{w} image, got {patch}")
        if depth < 1 or heads < 1 or dim % heads:
            raise ValueError(f"vit needs depth >= 1 and a width divisible by the heads, got depth {depth}, "
                             f"dim {dim}, heads {heads}")
        self.patch, self.dim = int(patch), int(dim)
        self.grid = (h // patch, w // patch)
        self.patch_embed = nn.Linear(c * patch * patch, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid[0] * self.grid[1], dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, dim // heads, int(mlp_ratio * dim), dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        self.feature_names = ("embed",) + tuple(f"block{i + 1}" for i in range(depth))

    @property
    def heads_per_layer(self) -> list[int]:
        return [block.attn.heads for block in self.blocks]

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, patches, C * P * P), patches in row-major order over the grid."""
        p = self.patch
        cols = F.unfold(x, kernel_size=p, stride=p)  # (B, C*P*P, patches)
        return cols.transpose(1, 2)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Eq. 1: [x_class; x_p^1 E; ...; x_p^N E] + E_pos."""
        tokens = self.patch_embed(self.patches(x))
        return torch.cat([self.cls_token.expand(len(x), -1, -1), tokens], dim=1) + self.pos_embed

    def forward_detailed(self, x: torch.Tensor, head_mask: torch.Tensor | Sequence[torch.Tensor] | None = None) -> ViTOutputs:
        """Logits, hidden states and attention probabilities; ``head_mask[l]`` gates layer l's heads."""
        if head_mask is not None and len(head_mask) != len(self.blocks):
            raise ValueError(f"head_mask needs one row of gates per layer ({len(self.blocks)}), got {len(head_mask)}")
        z = self.embed(x)
        hidden, attentions = [z], []
        for i, block in enumerate(self.blocks):
            z, probs = block(z, None if head_mask is None else head_mask[i])
            hidden.append(z)
            attentions.append(probs)
        return ViTOutputs(self.head(self.norm(z)[:, 0]), tuple(hidden), tuple(attentions))

    def forward_with_features(self, x):
        out = self.forward_detailed(x)
        return out.logits, dict(zip(self.feature_names, out.hidden_states))

    def attention_from_hidden(self, hidden_states: Sequence[torch.Tensor], kind: str = "probs") -> tuple[torch.Tensor, ...]:
        """Each block's attention recomputed from its input (``hidden_states[l]``, as ``forward_detailed``
        returns them or ``forward_with_features`` names them): ``"probs"`` (the softmax rows, equal to
        ``forward_detailed``'s attentions) or ``"scores"`` (before the softmax), one (B, H, N, N) per
        block. Differentiable, so a distillation loss on it trains the Q and K projections; it costs
        only the Q and K rows of each block, not a second forward pass."""
        if kind not in ("probs", "scores"):
            raise ValueError(f"attention kind must be 'probs' or 'scores', got {kind!r}")
        if len(hidden_states) < len(self.blocks):
            raise ValueError(f"need the input of each of the {len(self.blocks)} blocks, got {len(hidden_states)} states")
        out = []
        for block, z in zip(self.blocks, hidden_states):
            scores = block.attn.scores(block.norm1(z))
            out.append(torch.softmax(scores, dim=-1) if kind == "probs" else scores)
        return tuple(out)

    def prune_heads(self, heads_to_remove: dict[int, Sequence[int]]) -> None:
        """Remove heads physically: ``{layer: [head, ...]}`` with indices into the layer's current heads.
        A layer keeps at least one head."""
        for layer, remove in heads_to_remove.items():
            if not 0 <= int(layer) < len(self.blocks):
                raise ValueError(f"no layer {layer}: the model has layers 0..{len(self.blocks) - 1}")
            attn = self.blocks[int(layer)].attn
            keep = [h for h in range(attn.heads) if h not in {int(r) for r in remove}]
            if not keep:
                raise ValueError(f"layer {layer} would lose all {attn.heads} heads; keep at least one")
            attn.prune(keep)


@MODELS.register("vit")
def build_vit(input_shape, num_classes, patch: int = 2, dim: int = 64, depth: int = 4, heads: int = 4,
              mlp_ratio: float = 2.0, dropout: float = 0.0) -> TinyViT:
    """A tiny ViT; ``patch=2`` suits 8x8 digits (16 patches), ``patch=7`` 28x28 MNIST (16 patches).
    Teacher: ``dim=64, depth=4, heads=4``; student: ``dim=32, depth=2, heads=2``."""
    return TinyViT(input_shape, num_classes, patch=patch, dim=dim, depth=depth, heads=heads,
                   mlp_ratio=mlp_ratio, dropout=dropout)
