"""``RunComparison``: several runs side by side, finished or still training.

Runs may be live ``Job`` objects, ``RunReader`` objects or run folder paths; all become
``kdviz.present.RunView``s, so a reopened run looks exactly like a live one and each run is drawn in
its method's colour. Charts come from
``kdviz.figures.training`` (the same functions as the Streamlit "Runs" page):

* ``accuracy_comparison``: the chosen metric (test or train accuracy, agreement with the teacher)
  of the chosen runs, overlaid over epochs;
* ``loss_curves``: the training loss and its parts (Hinton et al. 2015, section 2) of one run;
* ``run_comparison``: each run's final test error.

The accuracy axis fits the data (a "zoom" toggle shows 0-100 %), the loss axis can be logarithmic and a
smoothing slider draws TensorBoard's moving average over the faint raw curves
(``kdviz.figures.training.ema_smooth``). Records a chart cannot draw (an evaluation without a test
accuracy, a value that is not a number) are skipped and counted in a note under the charts
(``kdviz.present.run_table.clean_records``), and each run gets its own colour within its method's
family (``run_table.distinct_colours``). While any run is live, a ``_live.Poller`` redraws every
``interval_ms``.
"""
from __future__ import annotations

from typing import Any

import ipywidgets as W

from ..figures.training import accuracy_comparison, loss_curves, run_comparison
from ..present.run_table import clean_records, distinct_colours, skipped_note, thin_records
from ._live import LEGEND_INSIDE_TOP_RIGHT, LiveFigure, LiveMonitor, Poller, Throttle
from ._runs import is_teacher, last_eval, run_views, teacher_accuracy
from .monitor import CHART_WIDTH, placeholder

# The accuracy chart spans the output area: two 480 px charts (960 px) overflowed JupyterLab's output
# area beside its file browser in a 1400 px window (seen in the screenshots).
WIDE_CHART_WIDTH = 860

METRICS = {"test_acc": "test accuracy", "train_acc": "train accuracy", "agreement_test": "agreement with the teacher"}


class RunComparison(LiveMonitor, W.VBox):
    """Overlaid accuracy curves with a metric and run selector, one run's loss, final test errors."""

    def __init__(self, runs: Any, metric: str = "test_acc", interval_ms: float = 1500, autostart: bool = True,
                 smoothing: float = 0.0, log_loss: bool = False, zoom: bool = True) -> None:
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
        self.runs = run_views(runs)
        self._records: dict[str, list[dict]] = {v.label: [] for v in self.runs}
        self._versions = {v.label: -1 for v in self.runs}
        self.errors = W.Output()

        labels = [v.label for v in self.runs]
        self.metric_picker = W.Dropdown(options=[(name, key) for key, name in METRICS.items()], value=metric,
                                        description="metric", layout=W.Layout(width="300px"))
        self.run_toggles = {label: W.Checkbox(value=True, description=label, indent=False, layout=W.Layout(width="auto"))
                            for label in labels}
        students = [v.label for v in self.runs if not is_teacher(v)] or labels
        self.loss_picker = W.Dropdown(options=labels, value=students[0], description="loss of", layout=W.Layout(width="300px"))
        self.smoothing = W.FloatSlider(value=smoothing, min=0.0, max=0.99, step=0.01, description="smoothing",
                                       continuous_update=False, layout=W.Layout(width="300px"))
        self.log_loss = W.Checkbox(value=log_loss, description="log loss axis", indent=False, layout=W.Layout(width="auto"))
        self.zoom = W.Checkbox(value=zoom, description="zoom to the data", indent=False, layout=W.Layout(width="auto"))
        self.notes = W.HTML("")

        self.accuracy_chart = LiveFigure(placeholder("Accuracy: waiting for evaluations"), width=WIDE_CHART_WIDTH)
        self.loss_chart = LiveFigure(placeholder("Training loss: waiting for the first step"), width=CHART_WIDTH, layout=LEGEND_INSIDE_TOP_RIGHT)
        self.final_chart = LiveFigure(placeholder("Final test error: waiting for evaluations", height=260), width=CHART_WIDTH)
        self._throttle = Throttle(self._draw, 100, on_error=self._report)
        for control in (self.metric_picker, self.loss_picker, self.smoothing, self.log_loss, self.zoom, *self.run_toggles.values()):
            control.observe(lambda _: self._throttle(), names="value")

        super().__init__([
            W.HTML("<b>Run comparison</b>: pick a metric and the runs to overlay; the loss chart shows one run at a time."),
            W.HBox([self.metric_picker, *self.run_toggles.values()], layout=W.Layout(flex_flow="row wrap", align_items="center")),
            W.HBox([self.smoothing, self.zoom, self.log_loss], layout=W.Layout(flex_flow="row wrap", align_items="center")),
            self.accuracy_chart.widget,
            self.loss_picker,
            W.Box([self.loss_chart.widget, self.final_chart.widget], layout=W.Layout(flex_flow="row wrap", align_items="flex-start")),
            self.notes,
            self.errors,
        ])
        self.poller = Poller(self._tick, interval_ms, name="kdviz-run-comparison", on_error=self._report)
        if autostart and not all(v.done for v in self.runs):
            self.poller.start()  # the first tick draws at once, in the background: the cell returns now
        else:
            self.refresh()

    @property
    def selected(self) -> list[str]:
        """Labels of the runs ticked for the accuracy chart."""
        return [label for label, box in self.run_toggles.items() if box.value]

    def refresh(self) -> None:
        """Read every run again and redraw now."""
        self._versions = {v.label: -1 for v in self.runs}
        self._tick()

    def _waitables(self) -> list:
        return [view.job for view in self.runs if view.job is not None]

    def _tick(self) -> bool:
        all_done = all(v.done for v in self.runs)
        changed = False
        for view in self.runs:
            _, version = view.store.metrics_since(self._versions[view.label])
            if version != self._versions[view.label]:
                self._records[view.label] = view.store.metrics()
                self._versions[view.label] = version
                changed = True
        if changed:
            self._draw()
        return not all_done

    def _clean(self) -> dict[str, list[dict]]:
        """Each run's drawable records; the note under the charts counts the skipped ones."""
        clean, notes = {}, []
        for label, records in self._records.items():
            clean[label], skipped = clean_records(records)
            if skipped:
                notes.append(skipped_note(label, skipped))
        self.notes.value = "<br>".join(f"<span style='color:#a15c00'>{n}</span>" for n in notes)
        return clean

    def _draw(self) -> None:
        records = self._clean()
        views = [v for v in self.runs if v.label in self.selected]
        colours = dict(zip([v.label for v in self.runs], distinct_colours([v.colour for v in self.runs])))
        has_teacher = any(is_teacher(v) for v in views)
        runs = [{"label": v.label, "colour": colours[v.label], "records": records[v.label]} for v in views]
        metric, smoothing = self.metric_picker.value, float(self.smoothing.value)
        if not any(r.get("kind") == "eval" and metric in r for run in runs for r in run["records"]):
            self.accuracy_chart.show(placeholder(f"No {METRICS[metric]} recorded for the selected runs"))
        else:
            teacher_acc = None if has_teacher or metric != "test_acc" else teacher_accuracy(self.runs)
            self.accuracy_chart.show(accuracy_comparison(runs, teacher_accuracy=teacher_acc, metric=metric,
                                                         zoom=self.zoom.value, smoothing=smoothing))
        steps = [r for r in records[self.loss_picker.value] if r.get("kind") == "step"]
        if steps:
            self.loss_chart.show(loss_curves(thin_records(steps), log_y=self.log_loss.value, smoothing=smoothing,
                                             title=f"{self.loss_picker.value}: training loss and its parts"))
        finals = [(v, last_eval(records[v.label], "test_acc")) for v in self.runs]
        rows = [{"label": v.label, "colour": colours[v.label], "value": round(100.0 * (1.0 - acc), 2)}
                for v, acc in finals if acc is not None]
        if rows:
            self.final_chart.show(run_comparison(rows, value_title="test error (%)", title=None, value_bounds=(0, 100)))

    def _report(self, exc: BaseException) -> None:
        self.errors.append_stdout(f"kdviz comparison: {type(exc).__name__}: {exc}\n")


__all__ = ["RunComparison", "METRICS"]
