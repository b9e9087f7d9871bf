"""In-memory batching for small datasets: a seeded permutation per epoch, batch indices, jitter.

A ``DataLoader`` costs more than a whole step of a tiny model, so the feed slices tensors that are
already in memory (and on the device). Every batch carries the training-set indices of its images,
so cached teacher logits can be looked up per image. The permutation and the jitter of epoch ``e``
come from a generator seeded with ``(seed, e)``: a resumed run sees exactly the batches it would
have seen.

Jitter (Hinton, Vinyals, Dean 2015, section 3: "the input images were jittered by up to two pixels
in any direction"): every image is shifted by an integer (dy, dx) drawn uniformly from
[-j, j]^2, filling the uncovered border with zeros (the background).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch


class Batch(NamedTuple):
    images: torch.Tensor  # (B, C, H, W)
    labels: torch.Tensor  # (B,)
    indices: torch.Tensor  # (B,) positions in the training set


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator for one epoch, independent of every other epoch and of the global RNG."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))


def jitter_images(images: torch.Tensor, shifts: torch.Tensor, max_px: int) -> torch.Tensor:
    """Shift each image by its own (dy, dx) in ``shifts`` (B, 2), |dy|, |dx| <= max_px, zero fill.

    ``out[b, :, i, j] = images[b, :, i - dy, j - dx]`` where that pixel exists, else 0.
    """
    if max_px == 0:
        return images
    b, c, h, w = images.shape
    padded = torch.nn.functional.pad(images, (max_px, max_px, max_px, max_px))
    dy = shifts[:, 0].to(images.device)
    dx = shifts[:, 1].to(images.device)
    rows = torch.arange(h, device=images.device)[None, :] - dy[:, None] + max_px  # (B, H)
    cols = torch.arange(w, device=images.device)[None, :] - dx[:, None] + max_px  # (B, W)
    batch = torch.arange(b, device=images.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


class BatchFeed:
    """Batches of (images, labels, indices) over a training set held in memory."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        seed: int = 0,
        jitter_px: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if jitter_px < 0:
            raise ValueError(f"jitter_px must be >= 0, got {jitter_px}")
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.jitter_px = int(jitter_px)

    def __len__(self) -> int:
        """Batches per epoch (the last one may be smaller)."""
        return -(-len(self.labels) // self.batch_size)

    @property
    def augmented(self) -> bool:
        return self.jitter_px > 0

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[Batch]:
        """The batches of ``epoch`` in its seeded order, skipping the first ``start_batch``."""
        g = epoch_generator(self.seed, epoch)
        order = torch.randperm(len(self.labels), generator=g)
        shifts = None
        if self.jitter_px:
            shifts = torch.randint(-self.jitter_px, self.jitter_px + 1, (len(self.labels), 2), generator=g)
        order_dev = order.to(self.device)
        for b in range(start_batch, len(self)):
            sel = order_dev[b * self.batch_size : (b + 1) * self.batch_size]
            images = self.images[sel]
            if shifts is not None:
                images = jitter_images(images, shifts[b * self.batch_size : (b + 1) * self.batch_size], self.jitter_px)
            yield Batch(images, self.labels[sel], sel)
