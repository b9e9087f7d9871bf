"""Quantization-aware training and LSQ beside post-training quantization: configs, PTQ accuracies,
the accuracy-against-bits curves and the captions, computed once for the page, the widget, the lab
and the bench.

* ``qat_fine_tune_config``: fine-tune a finished float baseline (``init_from``) with the ``qat``
  (Jacob et al. 2018) or ``lsq`` (Esser et al. 2020) hook, the usual practice for both: LSQ's
  low-bit networks start from trained full-precision weights (sec. 3).
* ``ptq_accuracies``: the baseline quantized after training at each bit width (ranges from a few
  calibration batches, nothing trained; Krishnamoorthi 2018 sec. 3.1), evaluated on the test set.
* ``accuracy_curves``: PTQ's curve and the last test accuracy of each finished QAT or LSQ run, by bits.
* ``bits_caption`` / ``grid_caption``: what the charts show, in words, from the numbers.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..engine import TrainConfig
from ..methods.base import MethodSpec
from ..methods.qat import LSQ, QAT, qat_hook
from ..palette import OKABE_ITO
from ..quant.fake_quant import check_quant_bits
from ..quant.qat_model import post_training_quantize
from .compression_configs import fine_tune_config
from .runs import as_run_view

KINDS: dict[str, MethodSpec] = {QAT.name: QAT, LSQ.name: LSQ}
BITS_CHOICES = (8, 4, 3, 2)
PTQ_LABEL = "PTQ (no training)"
PTQ_COLOUR = OKABE_ITO["vermillion"]  # ask the lead for a "post-training" role colour
CALIBRATION_IMAGES = 256


@dataclass(frozen=True)
class QATDefaults:
    """The opening settings: approach (the QAT or LSQ spec's name), bits, fine-tuning epochs, learning rate."""

    kind: str = LSQ.name
    bits: int = 2
    epochs: int = 3
    lr: float = 0.01
    first_last_bits: int | None = 8


QAT_DEFAULTS = QATDefaults()


def approach(kind: str) -> MethodSpec:
    """The QAT or LSQ spec named ``kind`` (a ``ValueError`` names the choices otherwise)."""
    if kind not in KINDS:
        raise ValueError(f"unknown approach {kind!r} (choose {', '.join(KINDS)})")
    return KINDS[kind]


def qat_fine_tune_config(baseline: Any, kind: str, bits: int, epochs: int = QAT_DEFAULTS.epochs,
                         lr: float = QAT_DEFAULTS.lr, first_last_bits: int | None = QAT_DEFAULTS.first_last_bits,
                         **overrides: Any) -> TrainConfig:
    """Fine-tune ``baseline`` (a finished run) at ``bits`` with QAT or LSQ (``kind``), cosine learning rate."""
    spec = approach(kind)
    hook = qat_hook(spec.name, bits, first_last_bits=first_last_bits)
    base = as_run_view(baseline).config
    overrides.setdefault("name", f"{spec.name}-{bits}bit-{base.model}-{base.dataset}")
    overrides.setdefault("lr_schedule", "cosine")
    return fine_tune_config(baseline, hook, epochs, lr, **overrides)


def _accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 1000) -> float:
    correct = 0
    with torch.no_grad():
        for i in range(0, len(images), batch):
            correct += int((model(images[i:i + batch]).argmax(1) == labels[i:i + batch]).sum())
    return correct / max(1, len(images))


def ptq_accuracies(model: torch.nn.Module, bundle: Any, bits: Iterable[int] = BITS_CHOICES,
                   first_last_bits: int | None = QAT_DEFAULTS.first_last_bits,
                   calibration: int = CALIBRATION_IMAGES) -> dict[int, float]:
    """Test accuracy of ``model`` quantized after training at each of ``bits`` (weights per channel
    from min/max, activations from ``calibration`` training images); the model itself is unchanged."""
    x = torch.as_tensor(bundle.test_images, dtype=torch.float32)
    y = torch.as_tensor(bundle.test_labels)
    calib = torch.as_tensor(bundle.train_images[:calibration], dtype=torch.float32)
    out = {}
    for b in bits:
        quantized, _ = post_training_quantize(model, calib, check_quant_bits(int(b)), first_last_bits)
        out[int(b)] = _accuracy(quantized, x, y)
    return out


def float_accuracy(model: torch.nn.Module, bundle: Any) -> float:
    return _accuracy(model.eval(), torch.as_tensor(bundle.test_images, dtype=torch.float32),
                     torch.as_tensor(bundle.test_labels))


def run_bits(config: Any, spec: MethodSpec) -> int:
    entry = next(h for h in config.hooks if h.get("name") == spec.name)
    return int(entry.get("bits", spec.options()["bits"].default))


def accuracy_curves(ptq: Mapping[int, float], runs: Sequence[Any]) -> tuple[dict[str, dict[int, float]], dict[str, str]]:
    """({approach: {bits: accuracy}}, {approach: colour}): PTQ's curve and, per approach, the last
    test accuracy of each finished run (``RunView``s of QAT or LSQ runs; a later run at the same bits wins)."""
    curves: dict[str, dict[int, float]] = {PTQ_LABEL: dict(ptq)} if ptq else {}
    colours = {PTQ_LABEL: PTQ_COLOUR}
    for view in runs:
        spec = view.method
        if spec not in KINDS.values() or not view.done or not view.evals:
            continue
        acc = view.evals[-1].get("test_acc")
        if acc is not None:
            curves.setdefault(spec.label, {})[run_bits(view.config, spec)] = float(acc)
            colours[spec.label] = spec.colour
    return curves, colours


def bits_caption(curves: Mapping[str, Mapping[int, float]], float_acc: float | None) -> str:
    """Who holds accuracy at the fewest bits every approach has reached, in points against PTQ and float."""
    trained = {k: v for k, v in curves.items() if k != PTQ_LABEL and v}
    ptq = curves.get(PTQ_LABEL, {})
    if not trained:
        low = min(ptq) if ptq else None
        return (f"PTQ alone so far: at {low} bits it keeps {100 * ptq[low]:.1f}% test accuracy. Fine-tune at a bit width "
                "with QAT or LSQ to add a point beside it." if low is not None else "No results yet.")
    parts = []
    for name, curve in trained.items():
        for b in sorted(curve):
            text = f"{name} at {b} bits: {100 * curve[b]:.1f}%"
            if b in ptq:
                text += f" ({100 * (curve[b] - ptq[b]):+.1f} points against PTQ"
                text += f", {100 * (curve[b] - float_acc):+.1f} against float)" if float_acc is not None else ")"
            parts.append(text)
    return "; ".join(parts) + "."


def grid_caption(snapshot: Any, layer: str) -> str:
    """How many levels the layer's weights have and how its step moved, from a ``QATSnapshot``."""
    bits, step = snapshot.bits[layer], snapshot.weight_step[layer]
    return (f"{layer} keeps {2 ** bits} levels ({bits} bits), step s = {step:.4g}: each weight is replaced by the "
            "nearest grid line in the forward pass, while the float weight underneath keeps learning.")


def grid_series(snapshot: Any, layer: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(counts, edges, grid) of ``layer`` in a ``QATSnapshot``, for ``weight_grid_histogram``."""
    counts, edges = snapshot.histograms[snapshot.layer(layer)]
    return counts, edges, snapshot.grids[layer]


__all__ = ["BITS_CHOICES", "KINDS", "PTQ_COLOUR", "PTQ_LABEL", "QAT_DEFAULTS", "QATDefaults", "accuracy_curves",
           "approach", "bits_caption", "float_accuracy", "grid_caption", "grid_series", "ptq_accuracies",
           "qat_fine_tune_config", "run_bits"]
