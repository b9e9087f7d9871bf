"""``TemperatureExplorer``: how temperature softens a teacher's answer on one test image.

Hinton, Vinyals and Dean (2015), "Distilling the Knowledge in a Neural Network", section 2,
equation (1): ``q_i = exp(z_i / T) / sum_j exp(z_j / T)``. At T = 1 the teacher's answer is nearly
one-hot; raising T lifts the small probabilities of the wrong classes, which carry the "dark
knowledge" a student can learn from. The explorer shows one image, its soft targets at the chosen
T (bars, with the T = 1 answer as outlines) and the entropy of the soft targets against T.

The slider and both charts are one anywidget, ``TemperaturePlayer``: a slider move redraws in the
browser from frames precomputed per slider stop (``kdviz.present.temperature.explorer_spec``, the
Streamlit page's too), with no round trip to the kernel, then tells the kernel the new stop
(``explorer.T``); it follows JupyterLab's dark theme (its ``--jp-*`` colours). An exact T typed in
the box becomes a stop of its own. The temperature range and
"most confused" (the smallest gap between the teacher's two most likely classes at T = 1,
``kdviz.present.confusion``) are the page's too.
"""
from __future__ import annotations

import functools
import json
import math
import os
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets as W
import numpy as np
import plotly
import torch
import traitlets
from torch import nn

from ..data import DatasetBundle, load_dataset
from ..distill.soft_targets import check_temperature, entropy, soften
from ..figures.soft_targets import sample_image
from ..present.confusion import MOST_CONFUSED_HELP, confusion_order, top2_gap
from ..present.temperature import PLAYER_JS, TEMPERATURES, check_slider_temperature, explorer_spec, stop_index
from ._live import LiveFigure

EVAL_BATCH = 1000
IMAGE_WIDTH = 260  # pixels: the test image beside the controls


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


_PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
_ESM = r"""
const KEY = Symbol.for("kdviz.plotly.min.js");
const SOURCE = __SOURCE__;
function loadPlotly() {  // plotly.js, compiled once per page (it sets window.Plotly)
  if (globalThis.Plotly && globalThis.Plotly.react) return Promise.resolve(globalThis.Plotly);
  if (!globalThis[KEY]) {
    const url = URL.createObjectURL(new Blob([SOURCE], { type: "text/javascript" }));
    globalThis[KEY] = import(url).then(() => globalThis.Plotly).finally(() => URL.revokeObjectURL(url));
  }
  return globalThis[KEY];
}
__PLAYER__
// The notebook's colours: JupyterLab's --jp-* variables (body's data-jp-theme-light says which
// kind), else VS Code's; null (the player's light colours) when the host names none.
function hostColours(el) {
  if (document.body.dataset.jpThemeLight === "true") return null;
  const style = getComputedStyle(el);
  const pick = (...names) => names.map((name) => style.getPropertyValue(name).trim()).find(Boolean);
  const background = pick("--jp-layout-color0", "--vscode-editor-background");
  const text = pick("--jp-ui-font-color1", "--jp-content-font-color1", "--vscode-editor-foreground");
  return background && text ? { background, text } : null;
}
export default {
  render({ model, el }) {
    const box = document.createElement("div");
    // The slider's keys stay with it: JupyterLab's notebook would take the arrows to move between cells
    box.setAttribute("data-lm-suppress-shortcuts", "true");
    box.addEventListener("keydown", (event) => event.stopPropagation());
    el.appendChild(box);
    let player = null;
    const show = () => player && player.show(model.get("spec"), model.get("index"));
    const select = () => player && player.select(model.get("index"));
    const follow = () => player && player.theme(hostColours(el));
    loadPlotly().then((Plotly) => {
      player = kdvizTemperaturePlayer(box, Plotly, (index) => { model.set("index", index); model.save_changes(); });
      player.theme(hostColours(el), false);
      return show();
    });
    model.on("change:spec", show);
    model.on("change:index", select);
    // JupyterLab switches theme by changing body's data-jp-theme-* attributes (VS Code: its class)
    const watcher = new MutationObserver(follow);
    watcher.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name", "class"] });
    return () => { watcher.disconnect(); model.off("change:spec", show); model.off("change:index", select); };
  },
};
"""


@functools.lru_cache(maxsize=1)
def player_esm() -> str:
    """The player's front end: plotly.js (plotly's own copy) and ``PLAYER_JS``, as one ES module."""
    source = json.dumps(_PLOTLY_JS.read_text(encoding="utf-8"))
    return _ESM.replace("__SOURCE__", source).replace("__PLAYER__", PLAYER_JS)


class TemperaturePlayer(anywidget.AnyWidget):
    """The temperature slider with the probability bars and the entropy curve, redrawn in the browser.

    ``spec``: ``present.temperature.explorer_spec(...)``; ``index``: the slider's stop, synced both
    ways (set it to move the slider; a move in the browser sets it)."""

    _esm = traitlets.Unicode("").tag(sync=True)
    spec = traitlets.Dict().tag(sync=True)
    index = traitlets.Int(0).tag(sync=True)

    def __init__(self, spec: dict, index: int = 0, **kwargs: Any) -> None:
        super().__init__(_esm=player_esm(), spec=spec, index=index, **kwargs)

    @property
    def T(self) -> float:
        """The temperature at the slider's stop."""
        return float(self.spec["temperatures"][self.index])


class TemperatureExplorer(W.VBox):
    """A temperature slider (log scale, 0.1..100) with an exact-T box, a sample picker and three charts.

    ``teacher``: a trained model, or a finished teacher run (path, ``RunReader`` or ``Job``).
    ``dataset``: a ``DatasetBundle`` or a dataset name; the explorer shows its *test* images.
    Picker: an index box, "Random" and "Most confused" (the test images with the smallest gap
    between the teacher's two most likely classes at T = 1, ``present.confusion``; each click steps
    to the next one). The slider redraws in the browser (``TemperaturePlayer``); ``T`` is where it is.
    """

    def __init__(self, teacher: Any, dataset: DatasetBundle | str, T: float = 4.0, index: int = 0, seed: int = 0) -> None:
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
        self._typed_T: float | None = None if T in TEMPERATURES else T

        spec = explorer_spec(self.logits[index], self.class_names, self._typed_T)
        self.player = TemperaturePlayer(spec, stop_index(spec, T), layout=W.Layout(width="100%"))
        self.exact_box = W.FloatText(value=T, description="exact T", step=0.5, layout=W.Layout(width="180px"),
                                     tooltip="Any positive number; T = 1 is the ordinary softmax.")
        self.index_box = W.BoundedIntText(value=index, min=0, max=n - 1, description="test image", layout=W.Layout(width="200px"))
        self.random_button = W.Button(description="Random", icon="random", tooltip="show a random test image")
        self.confused_button = W.Button(description="Most confused", icon="question", tooltip=MOST_CONFUSED_HELP)
        self.info = W.HTML()
        self.message = W.HTML()
        self.errors = W.Output()
        self.image_chart = LiveFigure(self._image_figure(), width=IMAGE_WIDTH)

        self.player.observe(lambda _: self._follow_slider(), names="index")
        self.exact_box.observe(lambda _: self._guard(self._typed), names="value")
        self.index_box.observe(lambda _: self._guard(self._draw_sample), names="value")
        self.random_button.on_click(lambda _: self.select(int(self._rng.integers(n))))
        self.confused_button.on_click(lambda _: self.next_confused())
        self._update_info()

        header = W.HTML(
            "<b>Temperature explorer</b>: soft targets q<sub>i</sub> = exp(z<sub>i</sub>/T) / &Sigma;<sub>j</sub> "
            "exp(z<sub>j</sub>/T) (Hinton, Vinyals &amp; Dean 2015, eq. 1). Drag T and watch the wrong classes rise."
        )
        controls = W.HBox([self.index_box, self.random_button, self.confused_button, self.exact_box],
                          layout=W.Layout(flex_flow="row wrap"))
        super().__init__([header, controls, self.message, self.info, self.image_chart.widget, self.player, self.errors])

    # ---- state ------------------------------------------------------------------------------
    @property
    def T(self) -> float:
        """The temperature the slider (and both charts) are at."""
        return self.player.T

    @T.setter
    def T(self, value: float) -> None:
        self.exact_box.value = value  # the observer checks it and moves the slider

    @property
    def index(self) -> int:
        return int(self.index_box.value)

    def select(self, index: int) -> None:
        """Show test image ``index`` (redraws every chart, T kept)."""
        if not isinstance(index, (int, np.integer)) or not 0 <= index < len(self.logits):
            raise ValueError(f"index must be an integer in 0..{len(self.logits) - 1}, got {index!r}")
        self.index_box.value = int(index)  # the observer redraws

    def next_confused(self) -> int:
        """Step to the next image, smallest top-2 gap at T = 1 first; returns its index."""
        self._confused_rank = (self._confused_rank + 1) % len(self.confusion_order)
        index = int(self.confusion_order[self._confused_rank])
        self.select(index)
        return index

    # ---- drawing ----------------------------------------------------------------------------
    def _guard(self, action) -> None:
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - shown beside the widget, never a traceback
            self._report(exc)

    def _typed(self) -> None:
        """The exact box changed: a valid T becomes a slider stop of its own; a bad one is named."""
        value = self.exact_box.value
        if math.isclose(value, self.T, rel_tol=1e-12):
            return  # the box follows the slider
        try:
            T = check_temperature(value)
        except ValueError as exc:
            self.message.value = f"<span style='color:#b00'>exact T: {exc}</span>"
            return
        self.message.value = ""
        self._typed_T = float(T)
        self._show_spec(float(T))

    def _follow_slider(self) -> None:
        self.message.value = ""
        if not math.isclose(self.exact_box.value, self.T, rel_tol=1e-12):
            self.exact_box.value = self.T

    def _show_spec(self, T: float) -> None:
        spec = explorer_spec(self.logits[self.index], self.class_names, self._typed_T)
        with self.player.hold_sync():  # one message: the new frames and the stop of T
            self.player.spec = spec
            self.player.index = stop_index(spec, T)

    def _image_figure(self):
        i = self.index_box.value
        caption = f"Test image #{i}: label {self.class_names[self.labels[i]]}"
        return sample_image(self.dataset.test_images[i].numpy(), caption)

    def _draw_sample(self) -> None:
        self.image_chart.show(self._image_figure())
        self._show_spec(self.T)
        self._update_info()

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


__all__ = ["TemperatureExplorer", "TemperaturePlayer", "resolve_teacher", "resolve_dataset", "model_logits"]
