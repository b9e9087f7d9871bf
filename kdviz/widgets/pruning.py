"""Pruning widgets: a sparsity slider over a trained model, and a live monitor of a pruning run.

* ``PruningExplorer(model, dataset)``: magnitude-prune the model's weights to the slider's sparsity
  (per layer or one global cut; Han et al. 2015, section 3, without retraining) and re-evaluate it on
  the whole test set at every move (``kdviz.prune.MaskedEvaluator``): accuracy, sparsity per layer,
  the weight histogram with the threshold, the layer's mask, and accuracy against sparsity.
* ``PruningMonitor(job)``: a prune-and-fine-tune job (the pruning hook, Zhu & Gupta 2017's AGP
  schedule; ``kdviz.present.compression_configs.prune_fine_tune_config`` builds one) drawn live
  from its snapshots: masks forming, a scrubber over the snapshots, sparsity bars, histogram,
  accuracy over training, and a Stop button; once the run has ended, a play button replays the
  masks forming (``_replay.ReplayBar``).

Both draw with the same charts as the Streamlit page (``kdviz.present.compression_charts``), fed
the same typed snapshot (``PruneSnapshot``: the slider's masks are read like a training snapshot,
``kdviz.prune.explore.slider_arrays`` + ``read_prune_arrays``), and keep the charts live with
``_live.LiveFigure`` / ``Throttle`` / ``Poller``.
"""
from __future__ import annotations

import os
from typing import Any

import ipywidgets as W
from torch import nn

from ..data import DatasetBundle
from ..figures.pruning import accuracy_vs_sparsity
from ..methods.prune import PRUNE, PruneSnapshot, read_prune_arrays
from ..present import as_run_view, last_eval
from ..present.compression_charts import layer_charts, pruning_accuracy, pruning_charts, readings, sparsity_chart
from ..palette import OKABE_ITO
from ..prune import MaskedEvaluator, PruningMasks, check_sparsity, layers_emptied
from ..prune.explore import accuracy_curve, slider_arrays
from ._live import LiveFigure, LiveMonitor, Poller, Throttle
from ._replay import ReplayBar
from .monitor import placeholder, status_line
from .temperature import resolve_dataset

CHART_WIDTH = 560
WARNING_STYLE = f"color:{OKABE_ITO['orange']};font-weight:600"
SCOPES = [("each layer alike", "layer"), ("one global cut", "global")]


def resolve_model(model: Any) -> nn.Module:
    """A model from ``model``: an ``nn.Module``, or a finished run (folder path, ``RunReader`` or ``Job``)."""
    if isinstance(model, nn.Module):
        return model
    path = getattr(model, "path", model)
    if isinstance(path, (str, os.PathLike)):
        from ..engine import load_trained_model

        return load_trained_model(path, device="auto", require_finished=True)  # the GPU when there is one
    raise TypeError(f"model must be a torch model, a run folder path, a RunReader or a Job, got {type(model).__name__}")


class PruningExplorer(W.VBox):
    """A sparsity slider (0 to 0.99) and scope over ``model``, re-evaluated on ``dataset``'s test set.

    ``model``: a trained model (its current weights are the dense reference; they are restored after
    every evaluation) or a finished run. ``dataset``: a ``DatasetBundle`` or a dataset name.
    """

    def __init__(self, model: Any, dataset: DatasetBundle | str, sparsity: float = 0.8, scope: str = "layer",
                 throttle_ms: float = 150) -> None:
        sparsity = check_sparsity(sparsity)
        if scope not in dict(SCOPES).values():
            raise ValueError(f"scope must be 'layer' or 'global', got {scope!r}")
        self.dataset = resolve_dataset(dataset)
        self.model = resolve_model(model)
        self.evaluator = MaskedEvaluator(self.model, self.dataset.test_images, self.dataset.test_labels)
        self.dense_accuracy = self.evaluator.current_accuracy()
        self.layers = [n[: -len(".weight")] for n in self.evaluator.dense]
        self._curves: dict[str, tuple[list[float], list[float]]] = {}
        self.accuracy: float | None = None
        self.snapshot: PruneSnapshot | None = None

        self.slider = W.FloatSlider(value=min(sparsity, 0.99), min=0.0, max=0.99, step=0.01, description="sparsity",
                                    readout_format=".2f", continuous_update=True, layout=W.Layout(width="420px"))
        self.scope_buttons = W.ToggleButtons(options=SCOPES, value=scope, description="scope")
        self.layer_picker = W.Dropdown(options=self.layers, value=self.layers[0], description="layer",
                                       layout=W.Layout(width="200px"))
        self.info = W.HTML()
        self.warning = W.HTML()
        self.emptied: list[str] = []
        self.errors = W.Output()
        self.bars_chart = LiveFigure(placeholder("Sparsity per layer"), width=CHART_WIDTH)
        self.curve_chart = LiveFigure(placeholder("Accuracy against sparsity"), width=CHART_WIDTH)
        self.histogram_chart = LiveFigure(placeholder("Weight histogram"), width=CHART_WIDTH)
        self.mask_chart = LiveFigure(placeholder("Mask"), width=CHART_WIDTH)
        self._throttle = Throttle(self._draw, throttle_ms, on_error=self._report)
        for control in (self.slider, self.scope_buttons):
            control.observe(lambda _: self._throttle(), names="value")
        self.layer_picker.observe(lambda _: self._guarded(self._draw_layer), names="value")

        header = W.HTML(
            "<b>Pruning explorer</b>: the weights of smallest |w| are removed (set to zero) and the model is "
            "tested again on every move, with no retraining (Han et al. 2015). Watch the accuracy hold, then fall "
            "off a knee; compare one cut per layer with one global cut."
        )
        row = lambda *ws: W.Box(list(ws), layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))  # noqa: E731
        super().__init__([header, row(self.slider, self.scope_buttons), self.info, self.warning,
                          row(self.bars_chart.widget, self.curve_chart.widget), self.layer_picker,
                          row(self.histogram_chart.widget, self.mask_chart.widget), self.errors])
        self._draw()

    @property
    def sparsity(self) -> float:
        return round(float(self.slider.value), 4)

    @property
    def scope(self) -> str:
        return self.scope_buttons.value

    def set_sparsity(self, sparsity: float) -> None:
        """Move the slider (``ValueError`` outside [0, 0.99]: 1 would remove every weight)."""
        sparsity = check_sparsity(sparsity)
        if sparsity > self.slider.max:
            raise ValueError(f"the slider goes up to {self.slider.max}; got {sparsity}")
        self.slider.value = sparsity

    def flush(self) -> None:
        """Draw a slider move still waiting for the rate limit (tests; rarely needed otherwise)."""
        self._throttle.flush()

    def _draw(self) -> None:
        s, scope = self.sparsity, self.scope
        try:
            masks = self.evaluator.masks_at(s, scope)
            acc = self.evaluator.accuracy(masks)
            snap = read_prune_arrays(slider_arrays(self.evaluator, masks))
            if scope not in self._curves:
                self._curves[scope] = accuracy_curve(self.evaluator, scope=scope)
        finally:
            self.evaluator.restore()
        self.accuracy, self.snapshot = acc, snap
        kept, total = snap.kept(), int(snap.weights.sum())
        self.info.value = (f"Test accuracy <b>{acc:.2%}</b> ({100 * (acc - self.dense_accuracy):+.2f} points against "
                           f"the dense {self.dense_accuracy:.2%}); {kept:,} of {total:,} weights kept "
                           f"({total / max(kept, 1):.1f}x fewer).")
        self._warn_emptied(s, scope, masks)
        self.bars_chart.show(sparsity_chart(snap, colour=PRUNE.colour))
        self.curve_chart.show(accuracy_vs_sparsity({"pruned, no retraining": self._curves[scope]},
                                                   baseline=self.dense_accuracy, current=(snap.overall_sparsity(), acc)))
        self._draw_layer()

    def _warn_emptied(self, sparsity: float, scope: str, masks: PruningMasks) -> None:
        """An orange line naming the layers this sparsity prunes whole (they output only their bias).

        Per layer the rule is exact from the shapes (``layers_emptied``: s >= 1 - 0.5/n); the global
        cut's emptied layers are read off the masks just built, which are the ones ``layers_emptied``
        would compute (same dense weights), without sorting them again on every move."""
        if scope == "layer":
            self.emptied = layers_emptied(self.evaluator.dense, sparsity, scope="layer")
        else:
            self.emptied = [n for n, k in masks.kept().items() if k == 0 and masks[n].numel() > 0]
        if not self.emptied:
            self.warning.value = ""
            return
        names = ", ".join(f"{n.removesuffix('.weight')} ({self.evaluator.dense[n].numel():,} weights)" for n in self.emptied)
        self.warning.value = (
            f"<span style=\"{WARNING_STYLE}\">&#9888; At sparsity {sparsity:.2f} every weight of {names} is pruned: "
            "that layer outputs only its bias, so the network is cut in two. The pruning API refuses this unless "
            "asked (<code>allow_empty=True</code>); lower the sparsity"
            f"{' or use one cut per layer' if scope == 'global' else ''}.</span>"
        )

    def _draw_layer(self) -> None:
        if self.snapshot is None:
            return
        figures = layer_charts(self.snapshot, self.layer_picker.value)
        self.histogram_chart.show(figures["histogram"])
        self.mask_chart.show(figures["mask"])

    def _guarded(self, fn) -> None:
        try:
            fn()
        except Exception as exc:  # a failed redraw must not kill the control
            self._report(exc)

    def _report(self, exc: BaseException) -> None:
        self.errors.append_stdout(f"kdviz: could not redraw: {type(exc).__name__}: {exc}\n")


class PruningMonitor(LiveMonitor, W.VBox):
    """Masks forming live while a job with the pruning hook trains (a ``Job``, ``RunReader`` or path).

    The scrubber walks through the snapshots; with "follow" ticked it jumps to each new one. Once
    the run has ended, a replay bar (play button and scrubber) takes the scrubber's place.
    ``interval_ms`` is the poll and redraw interval (the rate limit for the browser); ``which``
    picks the use of the hook to show when the run prunes twice. A run without the hook is a
    ``ValueError`` naming its hooks.
    """

    def __init__(self, job: Any, interval_ms: float = 1000, autostart: bool = True, which: int = 0) -> None:
        self.view = as_run_view(job, "pruned + fine-tuned")
        self.which = which
        PRUNE.hook_label(self.view.config, which)  # no pruning hook in this run: say so now
        self.found: list[tuple[Any, PruneSnapshot]] = []  # (snapshot, its typed reading)
        self.records: list[dict] = []
        self._versions = (0, 0)
        self._syncing = False
        self.dense_accuracy = self._dense_accuracy()

        self.status_html = W.HTML()
        self.stop_button = W.Button(description="Stop", icon="stop", button_style="danger", layout=W.Layout(width="90px"),
                                    disabled=not self.view.controllable, tooltip="stop after the current step")
        self.stop_button.on_click(lambda _: self.stop())
        self.scrubber = W.IntSlider(value=0, min=0, max=0, description="snapshot", continuous_update=True,
                                    layout=W.Layout(width="420px"))
        self.follow = W.Checkbox(value=True, description="follow the latest", indent=False)
        self.layer_picker = W.Dropdown(options=[], description="layer", layout=W.Layout(width="200px"))
        self.caption = W.HTML()
        self.errors = W.Output()
        self.mask_chart = LiveFigure(placeholder("Mask: waiting for the first snapshot"), width=CHART_WIDTH)
        self.bars_chart = LiveFigure(placeholder("Sparsity per layer: waiting for the first snapshot"), width=CHART_WIDTH)
        self.histogram_chart = LiveFigure(placeholder("Weight histogram: waiting for the first snapshot"), width=CHART_WIDTH)
        self.accuracy_chart = LiveFigure(placeholder("Test accuracy: waiting for the first evaluation"), width=CHART_WIDTH)
        self._throttle = Throttle(self._draw_snapshot, 100, on_error=self._report)
        self.replay = ReplayBar(self._replay_to, on_error=self._report)
        self.scrubber.observe(self._on_scrub, names="value")
        self.layer_picker.observe(lambda _: self._throttle(), names="value")
        self.follow.observe(lambda change: change["new"] and self._jump_to_latest(), names="value")

        header = W.HTML("<b>Pruning monitor</b>: the masks form while the job trains in the background (Zhu &amp; "
                        "Gupta's cubic schedule: much pruning early, ever less later). Drag the scrubber to look back; once "
                        "the run has ended, press play to watch them form again.")
        row = lambda *ws: W.Box(list(ws), layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))  # noqa: E731
        super().__init__([header, W.HBox([self.stop_button, self.status_html], layout=W.Layout(align_items="center")),
                          row(self.scrubber, self.follow, self.replay, self.layer_picker), self.caption,
                          row(self.mask_chart.widget, self.bars_chart.widget),
                          row(self.histogram_chart.widget, self.accuracy_chart.widget), self.errors])
        self.poller = Poller(self._tick, interval_ms, name="kdviz-pruning-monitor", on_error=self._report)
        if autostart and not self.view.done:
            self.poller.start()
        else:
            self.refresh()

    @property
    def snapshots(self) -> list:
        """The run's snapshots read so far that hold the pruning hook's arrays."""
        return [snap for snap, _ in self.found]

    def _dense_accuracy(self) -> float | None:
        source = getattr(self.view.config, "init_from", None)
        if not source:
            return None
        from ..engine import open_run

        try:
            return last_eval(open_run(source).metrics("eval"), "test_acc")
        except (ValueError, OSError):
            return None

    def stop(self) -> None:
        """Stop the job after its current step (a checkpoint is saved); returns at once."""
        if self.view.controllable:
            self.view.job.stop()
        self._update_status()

    # ---- polling ------------------------------------------------------------------------------
    def _tick(self) -> bool:
        done = self.view.done  # read before the data, so the last records are in
        records, metrics_v = self.view.store.metrics_since(self._versions[0])
        snaps, snaps_v = self.view.store.snapshots_since(self._versions[1])
        self._versions = (metrics_v, snaps_v)
        self.records.extend(records)
        new = readings(PRUNE, snaps, self.view.config, self.which)
        self.found.extend(new)
        if new:
            self._show_new(new[-1][1].layers)
        elif any(r.get("kind") == "eval" for r in records):
            self._draw_accuracy()
        self._update_status()
        if done:
            self._arm_replay()
        return not done

    def _arm_replay(self) -> None:
        """Once the run has ended: a play button and scrubber over its mask snapshots, in place of the
        live scrubber and its "follow" box."""
        self.replay.set_snapshots(self.snapshots)
        if len(self.found) >= 2:
            self.scrubber.layout.display = self.follow.layout.display = "none"

    def _replay_to(self, snapshot: Any) -> None:
        """Draw the charts at a replayed snapshot (the layer picker still applies)."""
        index = next((i for i, (snap, _) in enumerate(self.found) if snap is snapshot), None)
        if index is None:
            return
        self._syncing = True
        try:
            self.scrubber.value = index
        finally:
            self._syncing = False
        self._draw_snapshot()

    def _show_new(self, layers: list[str]) -> None:
        if list(self.layer_picker.options) != layers:
            self.layer_picker.options = layers
            self.layer_picker.value = layers[0]
        self._syncing = True
        try:
            self.scrubber.max = len(self.found) - 1
            if self.follow.value:
                self.scrubber.value = len(self.found) - 1
        finally:
            self._syncing = False
        self._draw_snapshot()

    def refresh(self) -> None:
        """Read the whole run again and redraw now (the poller does this on its own)."""
        self.found, self.records, self._versions = [], [], (0, 0)
        self._tick()

    def _waitables(self) -> list:
        return [self.view.job] if self.view.job is not None else []

    # ---- drawing ------------------------------------------------------------------------------
    def _on_scrub(self, change: dict) -> None:
        if not self._syncing:
            self.follow.value = False  # the user looks back: stop jumping to new snapshots
            self._throttle()

    def _jump_to_latest(self) -> None:
        if self.found:
            self._syncing = True
            try:
                self.scrubber.value = len(self.found) - 1
            finally:
                self._syncing = False
            self._throttle()

    def _shown(self) -> tuple[Any, PruneSnapshot]:
        return self.found[min(self.scrubber.value, len(self.found) - 1)]

    def _draw_snapshot(self) -> None:
        if not self.found or self.layer_picker.value is None:
            return
        snap, pruned = self._shown()
        figures = pruning_charts(pruned, self.layer_picker.value, step=snap.step, live=True, colour=self.view.colour)
        self.mask_chart.show(figures["mask"])
        self.bars_chart.show(figures["bars"])
        self.histogram_chart.show(figures["histogram"])
        self.caption.value = (f"Snapshot {self.scrubber.value + 1} of {len(self.found)}: step {snap.step} "
                              f"(epoch {snap.epoch:.2f}), {100 * pruned.overall_sparsity():.1f}% of weights pruned.")
        self._draw_accuracy(snap.epoch)

    def _draw_accuracy(self, epoch: float | None = None) -> None:
        if any(r.get("kind") == "eval" for r in self.records):
            if epoch is None and self.found:
                epoch = self._shown()[0].epoch
            self.accuracy_chart.show(pruning_accuracy(self.records, self.view.config, self.dense_accuracy, epoch,
                                                      which=self.which))

    def _update_status(self) -> None:
        status = self.view.status()
        self.status_html.value = status_line(self.view, status, self.records)
        if status.get("state") in ("finished", "failed", "stopped", "diverged") or not self.view.controllable:
            self.stop_button.disabled = True
        if self.view.done:  # nothing left to stop: no red button beside a finished run
            self.stop_button.layout.display = "none"

    def _report(self, exc: BaseException) -> None:
        self.errors.append_stdout(f"kdviz pruning monitor: {type(exc).__name__}: {exc}\n")


__all__ = ["PruningExplorer", "PruningMonitor", "resolve_model"]
