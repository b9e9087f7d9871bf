"""``MovementMonitor``: movement pruning beside magnitude pruning (Sanh, Wolf, Rush, NeurIPS 2020), live.

Both runs fine-tune the same trained model on the same cubic sparsity schedule
(``kdviz.present.movement.movement_runs``); only the rule that picks the weights differs. The monitor
shows each run's sparsity and test accuracy as they train, and for a chosen layer the latest
snapshot's |W| against the movement score, coloured by which rule keeps each weight, with the
caption written from the records (``kdviz.present.movement.movement_story``). A ``_live.Poller``
reads the runs' stores and redraws, so the cell returns at once.
"""
from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

from ..methods.movement import MOVEMENT
from ..present.movement import movement_story
from ._live import LiveFigure
from ._monitor import RunsMonitor, waiting


class MovementMonitor(RunsMonitor, W.VBox):
    """Live sparsity, accuracy and |W|-against-score of a movement run and the runs beside it.

    ``job_or_jobs``: an ``Experiment`` (as ``movement_runs`` builds), a ``Job``, ``RunReader`` or run
    folder, or a list or dict of them; one must be a movement-pruning run."""

    monitor_name = "movement monitor"

    def __init__(self, job_or_jobs: Any, interval_ms: float = 1000, autostart: bool = True) -> None:
        self._follow(job_or_jobs)
        self.student = self._student(MOVEMENT, "a movement-pruning run")
        controls = self._run_controls()
        self.layer_picker = W.Dropdown(options=[], description="layer", layout=W.Layout(width="200px"))
        self.layer_picker.observe(lambda _: self.refresh(), names="value")
        self.progress_chart = LiveFigure(waiting("Sparsity and accuracy: waiting for the first evaluation"), width=980)
        self.scatter_chart = LiveFigure(waiting("|W| against the movement score: waiting for a snapshot"), width=640)
        self.caption = W.HTML()
        header = W.HTML("<b>Movement vs magnitude pruning</b>: the same schedule, different weights. Movement keeps "
                        "the weights fine-tuning pushes away from zero (score S accumulates −∂L/∂W · W).")
        super().__init__([header, controls, self.progress_chart.widget, self.caption, self.layer_picker,
                          self.scatter_chart.widget, self.errors])
        self._start_polling(interval_ms, autostart, "kdviz-movement-monitor")

    def _tick(self) -> bool:
        done, changed = self._read_runs()
        if any(changed.values()) or done:
            self._draw()
        self._update_status()
        return not done

    def _draw(self) -> None:
        story = movement_story(self.views, self.layer_picker.value)
        self.progress_chart.show(story.progress)
        self.caption.value = f"<p style='max-width:980px'>{html.escape(story.caption)}</p>"
        if story.layers and list(self.layer_picker.options) != story.layers:
            keep = self.layer_picker.value if self.layer_picker.value in story.layers else story.layers[0]
            self.layer_picker.options, self.layer_picker.value = story.layers, keep
        if story.scatter is not None:
            self.scatter_chart.show(story.scatter)


__all__ = ["MovementMonitor"]
