"""A small MLP trained on digits in a plain loop (no engine): a real model for tests of the
post-training tools (ranges, per-layer noise, mixed precision) in a second or two."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from kdviz.models import build_model


def trained_digits_mlp(digits, hidden: list[int], seed: int, steps: int = 200) -> torch.nn.Module:
    """An MLP with ``hidden`` units trained for ``steps`` SGD steps (batch 64) on ``digits``, in eval
    mode; the same ``seed`` gives the same model (one thread while it trains)."""
    torch.manual_seed(seed)
    model = build_model("mlp", input_shape=(1, 8, 8), num_classes=10, hidden=hidden)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    batches = torch.Generator().manual_seed(seed)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(steps):
            idx = torch.randint(0, len(digits.train_labels), (64,), generator=batches)
            opt.zero_grad()
            F.cross_entropy(model(digits.train_images[idx]), digits.train_labels[idx]).backward()
            opt.step()
    finally:
        torch.set_num_threads(before)
    return model.eval()
