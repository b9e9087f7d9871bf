"""Teachers: a finished run loaded as a frozen model, and its logits cached per training image.

Calling the teacher on every KD step made a KD epoch cost 3.4x a plain epoch (issue 3). When the
transfer set is not augmented, the teacher sees the same image every epoch, so its eval-mode logits
(dropout off, as at test time) are computed once for the whole training set and looked up by each
batch's indices: a KD epoch then costs about what a plain student epoch costs. With jitter the
images change every epoch, so the teacher runs on each (jittered) batch instead.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from ..models import build_model
from ..models.device import resolve_device
from .evaluation import predict_logits
from .model_state import plain_model_state
from .run_folder import checkpoint_file, load_checkpoint, read_config
from .run_reader import read_status


def load_trained_model(run_path: str | os.PathLike, device: torch.device | str = "cpu", require_finished: bool = False) -> nn.Module:
    """The model of a run folder on ``device`` (``"auto"``: the GPU when there is one), built from its
    config.json and loaded from its last checkpoint (``checkpoints/last.safetensors``, or an older
    kdviz's ``last.pt``)."""
    run_path = Path(run_path)
    device = resolve_device(device)
    config = read_config(run_path)
    if require_finished:
        state = read_status(run_path).get("state")
        if state != "finished":
            raise ValueError(f"run {run_path} has not finished (state {state!r}); a teacher must be a finished run")
    checkpoint = load_checkpoint(checkpoint_file(run_path), map_location=device)
    input_shape = tuple(checkpoint.get("input_shape", ()))
    num_classes = int(checkpoint.get("num_classes", 0))
    if len(input_shape) != 3 or num_classes < 2:
        raise ValueError(f"checkpoint of {run_path} does not record input_shape and num_classes")
    model = build_model(config.model, input_shape=input_shape, num_classes=num_classes, **config.model_options)
    try:
        model.load_state_dict(plain_model_state(checkpoint, str(run_path)))
    except RuntimeError as exc:
        raise ValueError(f"checkpoint of {run_path} does not fit model {config.model!r}: {exc}") from None
    return model.to(device)


def load_teacher(run_path: str | os.PathLike, device: torch.device | str = "cpu") -> nn.Module:
    """A finished run's model on ``device``, frozen (no gradients) and in eval mode."""
    teacher = load_trained_model(run_path, device, require_finished=True)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


_MEMO: "OrderedDict[tuple, torch.Tensor]" = OrderedDict()
_MEMO_LOCK = threading.Lock()
_KEY_LOCKS: dict[tuple, threading.Lock] = {}
MEMO_ENTRIES = 8


def memoized_teacher_logits(run_path: str | os.PathLike, teacher: nn.Module, images: torch.Tensor, device: torch.device,
                            split: tuple) -> torch.Tensor:
    """``predict_logits(teacher, images)``, computed once per process for a (teacher run, checkpoint
    file version, data split, device): students of one teacher (a temperature sweep, KD beside
    FSP) share it, and two jobs asking at once compute it once. ``split`` names the images, e.g.
    ``("mnist", root, "train")``."""
    ckpt = checkpoint_file(run_path)
    key = (str(Path(run_path).resolve()), ckpt.stat().st_mtime_ns, tuple(split), str(device))
    with _MEMO_LOCK:
        lock = _KEY_LOCKS.setdefault(key, threading.Lock())
    with lock:
        with _MEMO_LOCK:
            if key in _MEMO:
                _MEMO.move_to_end(key)
                return _MEMO[key]
        logits = predict_logits(teacher, images, device)
        with _MEMO_LOCK:
            _MEMO[key] = logits
            while len(_MEMO) > MEMO_ENTRIES:
                old, _ = _MEMO.popitem(last=False)
                _KEY_LOCKS.pop(old, None)
        return logits


class TeacherLogitCache:
    """The teacher's eval-mode logits for every training image, looked up by training-set index."""

    def __init__(self, teacher: nn.Module, train_images: torch.Tensor, device: torch.device, logits: torch.Tensor | None = None) -> None:
        self.logits = logits if logits is not None else predict_logits(teacher, train_images, device)  # (N, K) on device
        if len(self.logits) != len(train_images):
            raise ValueError(f"{len(self.logits)} cached teacher logits for {len(train_images)} training images")

    def __getitem__(self, indices: torch.Tensor) -> torch.Tensor:
        return self.logits[indices]

    def __len__(self) -> int:
        return len(self.logits)
