"""Shared pieces of the training benchmarks: thread setup, the MNIST folder, a plain PyTorch loop.
(Paired, interleaved speed ratios with their spread: ``bench/_paired.py``, which needs no torch.)

Import this module before torch: it makes idle OpenMP threads sleep instead of spin
(``OMP_WAIT_POLICY=PASSIVE``), which on a machine shared with other work is the difference between
a 1 ms and a 70 ms step for a small model.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from kdviz.distill import kd_loss  # noqa: E402

DEFAULT_MNIST = ROOT.parent / "shared" / "data" / "mnist"


def set_threads(n: int | None) -> int:
    """Use ``n`` torch threads in this (main) thread and tell the engine's job manager the same."""
    n = n or max(1, len(os.sched_getaffinity(0)))
    torch.set_num_threads(n)
    os.environ["KDVIZ_NUM_THREADS"] = str(n)
    return n


def machine_note() -> str:
    """Cores, load averages (1/5/15 min), torch version and threads: printed beside every measurement."""
    one, five, fifteen = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (f"{len(os.sched_getaffinity(0))} cores, load average {one:.1f} / {five:.1f} / {fifteen:.1f} (1/5/15 min), "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads "
            "(wall times; a shared machine runs slower than an idle one)")


def plain_epoch(model, optimizer, images, labels, batch_size: int, epoch: int, seed: int,
                teacher_logits=None, teacher=None, T: float = 4.0, alpha: float = 0.9) -> float:
    """One epoch of the textbook loop: shuffle, slice, forward, loss, backward, step. Returns seconds.

    Loss: cross-entropy; or KD (``kd_loss``) with ``teacher_logits`` looked up per index, or with
    ``teacher`` called on every batch. Same seeded order as the engine's ``BatchFeed``.
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(len(labels), generator=g)
    model.train()
    start = time.perf_counter()
    for b in range(0, len(labels), batch_size):
        idx = order[b : b + batch_size]
        x, y = images[idx], labels[idx]
        logits = model(x)
        if teacher_logits is not None:
            loss = kd_loss(logits, teacher_logits[idx], y, T=T, alpha=alpha).total
        elif teacher is not None:
            with torch.no_grad():
                t = teacher(x)
            loss = kd_loss(logits, t, y, T=T, alpha=alpha).total
        else:
            loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start
