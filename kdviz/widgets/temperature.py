"""``TemperatureExplorer``: how temperature softens a teacher's answer on one test image.

Hinton, Vinyals and Dean (2015), "Distilling the Knowledge in a Neural Network", section 2,
equation (1): ``q_i = exp(z_i / T) / sum_j exp(z_j / T)``. At T = 1 the teacher's answer is nearly
one-hot; raising T lifts the small probabilities of the wrong classes, which carry the "dark
knowledge" a student can learn from. The explorer shows one image, its soft targets at the chosen
T (bars, with the T = 1 answer as outlines) and the entropy of the soft targets against T.

Charts come from ``kdviz.figures.soft_targets`` (the same functions as the Streamlit page), kept
live with ``kdviz.widgets._live.LiveFigure``; the slider is rate-limited by a ``Throttle``. The
temperature range (``kdviz.present.temperature``) and "most confused" (the smallest gap between the
teacher's two most likely classes at T = 1, ``kdviz.present.confusion``) are the page's too.
"""
from __future__ import annotations

import math
import os
from typing import Any

import ipywidgets as W
import numpy as np
import torch
from torch import nn

from ..data import DatasetBundle, load_dataset
from ..distill.soft_targets import check_temperature, entropy, soften
from ..figures.soft_targets import entropy_curve, probability_bars, sample_image
from ..present.confusion import MOST_CONFUSED_HELP, confusion_order, top2_gap
from ..present.temperature import T_MAX, T_MIN, check_slider_temperature
from ._live import LiveFigure, Throttle

EVAL_BATCH = 1000
IMAGE_WIDTH, BARS_WIDTH = 260, 600  # pixels: image and bars side by side fit a notebook column


def resolve_dataset(dataset: DatasetBundle | str) -> DatasetBundle:
    """A ``DatasetBundle`` as given, or the registered dataset of that name (``"digits"``...)."""
    if isinstance(dataset, DatasetBundle):
        return dataset
    if isinstance(dataset, str):
        return load_dataset(dataset)
    raise TypeError(f"dataset must be a DatasetBundle or a dataset name, got {type(dataset).__name__}")


def resolve_teacher(teacher: Any) -> nn.Module:
    """A model from ``teacher``: an ``nn.Module``, a finished run folder (path), a ``RunReader`` or a
    ``Job`` (anything with a ``path`` to its run folder)."""
    if isinstance(teacher, nn.Module):
        return teacher
    path = getattr(teacher, "path", teacher)
    if isinstance(path, (str, os.PathLike)):
        from ..engine.teacher_cache import load_teacher

        return load_teacher(path)
    raise TypeError(f"teacher must be a torch model, a run folder path, a RunReader or a Job, got {type(teacher).__name__}")


def model_logits(model: nn.Module, images: torch.Tensor) -> np.ndarray:
    """The model's logits (N, K) on ``images`` in eval mode, float64 numpy (the mode is restored)."""
    was_training = model.training
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    model.eval()
    try:
        with torch.no_grad():
            out = [model(images[i : i + EVAL_BATCH].to(device)).double().cpu() for i in range(0, len(images), EVAL_BATCH)]
    finally:
        model.train(was_training)
    return torch.cat(out).numpy()


class TemperatureExplorer(W.VBox):
    """A temperature slider (log scale, 0.1..100), a sample picker and three live charts.

    ``teacher``: a trained model, or a finished teacher run (path, ``RunReader`` or ``Job``).
    ``dataset``: a ``DatasetBundle`` or a dataset name; the explorer shows its *test* images.
    Picker: an index box, "Random" and "Most confused" (the test images with the smallest gap
    between the teacher's two most likely classes at T = 1, ``present.confusion``; each click steps
    to the next one).
    """

    def __init__(self, teacher: Any, dataset: DatasetBundle | str, T: float = 4.0, index: int = 0, seed: int = 0, throttle_ms: float = 100) -> None:
        T = check_slider_temperature(check_temperature(T))
        self.dataset = resolve_dataset(dataset)
        self.model = resolve_teacher(teacher)
        self.logits = model_logits(self.model, self.dataset.test_images)
        if self.logits.shape != (len(self.dataset.test_labels), self.dataset.num_classes):
            raise ValueError(
                f"teacher gives logits of shape {self.logits.shape} on {self.dataset.name}; expected "
                f"({len(self.dataset.test_labels)}, {self.dataset.num_classes}): is it a model for this dataset?"
            )
        n = len(self.logits)
        if not isinstance(index, int) or not 0 <= index < n:
            raise ValueError(f"index must be an integer in 0..{n - 1}, got {index!r}")
        self.class_names = list(self.dataset.class_names)
        self.labels = self.dataset.test_labels.numpy()
        self.predictions = self.logits.argmax(axis=1)
        self.confusion_order = confusion_order(self.logits)
        self.top2_gaps = top2_gap(self.logits)
        self._confused_rank = -1
        self._rng = np.random.default_rng(seed)

        # A fine step (0.001 in log10 T) so that 1, 2, 4, 20... are reachable to 3 significant digits
        # (the browser snaps the value to the step grid; see ``T``).
        self.slider = W.FloatLogSlider(value=T, base=10, min=math.log10(T_MIN), max=math.log10(T_MAX), step=0.001,
                                       description="T", readout_format=".3g", continuous_update=True,
                                       layout=W.Layout(width="420px"))
        self.index_box = W.BoundedIntText(value=index, min=0, max=n - 1, description="test image", layout=W.Layout(width="200px"))
        self.random_button = W.Button(description="Random", icon="random", tooltip="show a random test image")
        self.confused_button = W.Button(description="Most confused", icon="question", tooltip=MOST_CONFUSED_HELP)
        self.info = W.HTML()
        self.errors = W.Output()

        self.image_chart = LiveFigure(self._image_figure(), width=IMAGE_WIDTH)
        self.bars_chart = LiveFigure(probability_bars(self.logits[index], T, self.class_names), width=BARS_WIDTH)
        self.entropy_chart = LiveFigure(entropy_curve(self.logits[index], T, T_MIN, T_MAX), width=IMAGE_WIDTH + BARS_WIDTH)
        self._throttle = Throttle(self._draw_soft, throttle_ms, on_error=self._report)

        self.slider.observe(lambda _: self._throttle(), names="value")
        self.index_box.observe(lambda _: self._draw_all(), names="value")
        self.random_button.on_click(lambda _: self.select(int(self._rng.integers(n))))
        self.confused_button.on_click(lambda _: self.next_confused())
        self._update_info()

        header = W.HTML(
            "<b>Temperature explorer</b>: soft targets q<sub>i</sub> = exp(z<sub>i</sub>/T) / &Sigma;<sub>j</sub> "
            "exp(z<sub>j</sub>/T) (Hinton, Vinyals &amp; Dean 2015, eq. 1). Drag T and watch the wrong classes rise."
        )
        controls = W.HBox([self.slider, self.index_box, self.random_button, self.confused_button], layout=W.Layout(flex_flow="row wrap"))
        charts = W.Box([self.image_chart.widget, self.bars_chart.widget], layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))
        super().__init__([header, controls, self.info, charts, self.entropy_chart.widget, self.errors])

    # ---- state ------------------------------------------------------------------------------
    @property
    def T(self) -> float:
        """The slider's temperature to 3 significant digits (4, not the grid point 3.9994)."""
        return float(f"{self.slider.value:.3g}")

    @property
    def index(self) -> int:
        return int(self.index_box.value)

    def select(self, index: int) -> None:
        """Show test image ``index`` (redraws every chart)."""
        if not isinstance(index, (int, np.integer)) or not 0 <= index < len(self.logits):
            raise ValueError(f"index must be an integer in 0..{len(self.logits) - 1}, got {index!r}")
        self.index_box.value = int(index)  # the observer redraws

    def next_confused(self) -> int:
        """Step to the next image, smallest top-2 gap at T = 1 first; returns its index."""
        self._confused_rank = (self._confused_rank + 1) % len(self.confusion_order)
        index = int(self.confusion_order[self._confused_rank])
        self.select(index)
        return index

    def flush(self) -> None:
        """Draw a slider change still waiting for the rate limit (tests; rarely needed otherwise)."""
        self._throttle.flush()

    # ---- drawing ----------------------------------------------------------------------------
    def _image_figure(self):
        i = self.index_box.value
        caption = f"Test image #{i}: label {self.class_names[self.labels[i]]}"
        return sample_image(self.dataset.test_images[i].numpy(), caption)

    def _draw_soft(self) -> None:
        z, T = self.logits[self.index], self.T
        self.bars_chart.show(probability_bars(z, T, self.class_names))
        self.entropy_chart.show(entropy_curve(z, T, T_MIN, T_MAX))

    def _draw_all(self) -> None:
        try:
            self.image_chart.show(self._image_figure())
            self._draw_soft()
            self._update_info()
        except Exception as exc:
            self._report(exc)

    def _update_info(self) -> None:
        i = self.index
        p = np.asarray(soften(self.logits[i], 1.0))
        pred, label = int(self.predictions[i]), int(self.labels[i])
        verdict = "right" if pred == label else "<b>wrong</b>"
        self.info.value = (
            f"Test image #{i}: true class <b>{self.class_names[label]}</b>; the teacher says "
            f"<b>{self.class_names[pred]}</b> ({p[pred]:.1%} at T = 1, {verdict}); gap to the runner-up: "
            f"{self.top2_gaps[i]:.1%}; entropy at T = 1: {float(entropy(p.tolist())):.3f} nats."
        )

    def _report(self, exc: BaseException) -> None:
        with self.errors:
            print(f"kdviz: could not redraw: {type(exc).__name__}: {exc}")


__all__ = ["TemperatureExplorer", "resolve_teacher", "resolve_dataset", "model_logits"]
