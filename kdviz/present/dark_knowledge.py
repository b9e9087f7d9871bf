"""Hinton et al.'s dark knowledge for a UI: a finished run's test logits, read once, and its
per-class errors for any shift of some classes' output biases (``kdviz.distill.bias_shift``).

Hinton, Vinyals, Dean 2015, section 3: a student distilled without ever seeing a 3 gets most test
3s wrong only because the bias of class 3 is too low; raising it fixes most of them. A slider moves
that shift; the logits of the run's 10,000 test images are computed once per run (and checkpoint)
and kept, so every move is one argmax over stored numbers, a few milliseconds.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..distill.bias_shift import per_class_errors
from ..engine import load_trained_model
from ..engine.evaluation import predict_logits
from ..engine.run_folder import checkpoint_file, read_config
from ..engine.setup import dataset_for
from ..models.device import module_device

CACHED_RUNS = 8
_CACHE: "OrderedDict[tuple, RunLogits]" = OrderedDict()
_LOCK = threading.Lock()


@dataclass(frozen=True)
class RunLogits:
    """A finished run's logits on its whole test set (N, K), the true labels (N,), the class names."""

    path: Path
    logits: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]

    @property
    def per_class_count(self) -> list[int]:
        """How many test images each class has."""
        return torch.bincount(self.labels, minlength=len(self.class_names)).tolist()


def run_logits(run_path: str | os.PathLike) -> RunLogits:
    """The run's model (its last checkpoint) on every test image of its dataset (the test set
    ``train_classes`` never filters), computed once per process for a run and checkpoint version."""
    path = Path(run_path).resolve()
    checkpoint = checkpoint_file(path)
    if not checkpoint.is_file():
        raise ValueError(f"{run_path} has no saved model (checkpoints/last.safetensors is missing): has the run finished?")
    key = (str(path), checkpoint.stat().st_mtime_ns)
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    data = dataset_for(read_config(path))
    model = load_trained_model(path, device="auto")  # the GPU when there is one
    logits = predict_logits(model, data.test_images, module_device(model)).cpu()
    found = RunLogits(path, logits, data.test_labels.clone(), tuple(data.class_names))
    with _LOCK:
        _CACHE[key] = found
        while len(_CACHE) > CACHED_RUNS:
            _CACHE.popitem(last=False)
    return found


@dataclass(frozen=True)
class ShiftedErrors:
    """Per-class test errors before and after adding ``shift`` to the biases of ``classes``."""

    classes: tuple[int, ...]
    shift: float
    before: list[int]
    after: list[int]
    per_class_count: list[int]
    class_names: tuple[str, ...]

    @property
    def total_before(self) -> int:
        return sum(self.before)

    @property
    def total_after(self) -> int:
        return sum(self.after)

    @property
    def test_count(self) -> int:
        return sum(self.per_class_count)

    def on(self, classes: Sequence[int], after: bool = True) -> int:
        """Errors on the test images of ``classes`` (after the shift, or before)."""
        errors = self.after if after else self.before
        return sum(errors[c] for c in classes)


def errors_with_shift(view: RunLogits, classes: Sequence[int], shift: float) -> ShiftedErrors:
    """Per-class errors of ``view`` as trained, and with ``shift`` added to the bias of each of ``classes``."""
    before = per_class_errors(view.logits, view.labels).tolist()
    after = per_class_errors(view.logits, view.labels, {int(c): float(shift) for c in classes}).tolist()
    return ShiftedErrors(tuple(int(c) for c in classes), float(shift), before, after, view.per_class_count, view.class_names)


def shifted_names(errors: ShiftedErrors) -> str:
    """``"3"`` or ``"7 and 8"``: the classes whose bias moves."""
    names = [errors.class_names[c] for c in errors.classes]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def shift_caption(errors: ShiftedErrors) -> str:
    """The totals the bars show, in words: all test errors and those on the shifted classes, before
    and after the shift (read from the same per-class counts as the bars)."""
    names = shifted_names(errors)
    on_before, on_after = errors.on(errors.classes, after=False), errors.on(errors.classes)
    of = sum(errors.per_class_count[c] for c in errors.classes)
    pct = 100.0 * errors.total_after / errors.test_count if errors.test_count else 0.0
    images = f"test {names}s" if len(errors.classes) == 1 else f"test images of {names}"
    return (f"Bias of {names} shifted by {errors.shift:+.1f}: **{errors.total_after} test errors** "
            f"({pct:.1f} % of {errors.test_count}; {errors.total_before} as trained), "
            f"**{on_after} of the {of} {images} wrong** ({on_before} as trained).")


def error_bar_data(errors: ShiftedErrors) -> dict:
    """What the per-class bar chart draws (``figures.per_class.per_class_error_bars`` keyword arguments)."""
    return {"class_names": list(errors.class_names), "before": errors.before, "after": errors.after,
            "before_label": "as trained", "after_label": f"bias of {shifted_names(errors)} {errors.shift:+.1f}",
            "highlight": list(errors.classes)}
