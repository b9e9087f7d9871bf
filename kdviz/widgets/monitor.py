"""``TrainingMonitor``: live loss, accuracy and soft-target charts of background training jobs.

Jobs train in their own threads (``kdviz.engine.start``); the monitor polls their ``LiveStore``
from a daemon thread (``_live.Poller``) and redraws at most every ``interval_ms``, so the cell
that shows it returns at once and Pause/Stop answer while the jobs train. Charts come from
``kdviz.figures.training`` (the same functions as the Streamlit pages): ``accuracy_comparison``
for every job, ``loss_curves`` (total, soft-target and hard-label terms of Hinton et al. 2015,
section 2) and ``probe_soft_targets_from_snapshot`` for the selected job.
"""
from __future__ import annotations

import html
from typing import Any

import ipywidgets as W
import plotly.graph_objects as go

from ..figures import theme
from ..figures.soft_targets import sample_image
from ..figures.training import accuracy_comparison, loss_curves, probe_soft_targets_from_snapshot
from ..present import describe, format_duration
from ._live import LEGEND_INSIDE_TOP_RIGHT, LiveFigure, LiveMonitor, Poller, Throttle
from ._replay import ReplayBar
from ._runs import RunView, is_teacher, last_eval, run_views, teacher_accuracy

# Pixels. Two charts side by side fit the notebook column of a 1400 px wide JupyterLab with its
# file browser open (about 970 px); on a narrower one they wrap onto two rows.
CHART_WIDTH = 480
PROBE_WIDTH, PROBE_IMAGE_WIDTH = 700, 240


def placeholder(title: str, height: int = 380) -> go.Figure:
    """An empty chart that says what it is waiting for.

    Deliberately bare (no theme template): building a themed figure costs about 0.1 s, and a
    monitor makes four of these while its jobs are already training.
    """
    hidden = {"visible": False}
    return go.Figure(layout={
        "template": "none", "height": height, "xaxis": hidden, "yaxis": hidden,
        "title": {"text": f"<b>{title}</b>", "x": 0.0, "xanchor": "left", "font": {"size": 16, "family": theme.FONT_FAMILY, "color": "#555"}},
        "margin": {"l": 60, "r": 20, "t": 60, "b": 50},
    })


def status_line(view: RunView, status: dict[str, Any], records: list[dict]) -> str:
    """``kdviz.present.describe``'s status of the run as one line of HTML: the label in the run's
    colour, the state in bold, then the accuracy and the detail (step, epoch, time left, message).
    ``records`` supply the last test accuracy when the status has none (a reopened run)."""
    status = dict(status.to_dict() if hasattr(status, "to_dict") else status)
    if status.get("test_acc") is None:
        status["test_acc"] = last_eval(records, "test_acc")
    limit = getattr(getattr(view.job, "manager", None), "max_concurrent", None)
    text = describe(status, view.label, epochs=getattr(view.config, "epochs", None), max_concurrent=limit)
    parts = " · ".join(p for p in (text.accuracy, text.detail) if p)
    return (f"<span style='color:{view.colour};font-weight:bold'>{html.escape(view.label)}</span> "
            f"<b>{text.state}</b>" + (f" · {html.escape(parts)}" if parts else ""))


class TrainingMonitor(LiveMonitor, W.VBox):
    """Live charts and controls for one job or several (a list, or a ``{label: job}`` dict).

    Also accepts ``RunReader`` objects or run folder paths (a run training in another process).
    ``interval_ms``: the poll and redraw interval (the rate limit for the browser).
    """

    def __init__(self, jobs: Any, interval_ms: float = 1000, autostart: bool = True) -> None:
        self.runs = run_views(jobs)
        self._versions = {v.label: (-1, -1) for v in self.runs}
        self._records: dict[str, list[dict]] = {v.label: [] for v in self.runs}
        self._teacher_acc: float | None = None
        self._class_names: list[str] | None = None
        self._errors_seen: set[str] = set()

        self.errors = W.Output()
        self.status_html = {v.label: W.HTML() for v in self.runs}
        self.pause_buttons: dict[str, W.Button] = {}
        self.stop_buttons: dict[str, W.Button] = {}
        rows = []
        for view in self.runs:
            pause = W.Button(description="Pause", icon="pause", layout=W.Layout(width="100px"), disabled=not view.controllable)
            stop = W.Button(description="Stop", icon="stop", button_style="danger", layout=W.Layout(width="90px"),
                            disabled=not view.controllable, tooltip="stop after the current step (a checkpoint is saved)")
            pause.on_click(lambda _, v=view: self.toggle_pause(v.label))
            stop.on_click(lambda _, v=view: self.stop(v.label))
            self.pause_buttons[view.label], self.stop_buttons[view.label] = pause, stop
            rows.append(W.HBox([pause, stop, self.status_html[view.label]], layout=W.Layout(align_items="center")))

        labels = [v.label for v in self.runs]
        students = [v.label for v in self.runs if not is_teacher(v)] or labels
        wide = {"description_width": "initial"}
        self.run_picker = W.Dropdown(options=labels, value=students[0], description="details of", style=wide,
                                     layout=W.Layout(width="300px", display="flex" if len(labels) > 1 else "none"))
        self.probe_picker = W.IntSlider(value=0, min=0, max=0, description="probe image", continuous_update=True, style=wide)
        self.temperature_picker = W.Dropdown(options=[], description="T", layout=W.Layout(width="120px"), style=wide)

        self.accuracy_chart = LiveFigure(placeholder("Test accuracy: waiting for the first evaluation"), width=CHART_WIDTH)
        self.loss_chart = LiveFigure(placeholder("Training loss: waiting for the first step"), width=CHART_WIDTH, layout=LEGEND_INSIDE_TOP_RIGHT)
        self.probe_chart = LiveFigure(placeholder("Soft targets on a probe image: waiting for the first snapshot"), width=PROBE_WIDTH)
        self.probe_image = LiveFigure(placeholder("Probe image", height=260), width=PROBE_IMAGE_WIDTH)
        self._throttle = Throttle(self._draw_details, 100, on_error=self._report)
        self.replay = ReplayBar(self._draw_probe)
        for control in (self.run_picker, self.probe_picker, self.temperature_picker):
            control.observe(lambda _: self._throttle(), names="value")

        row = lambda *charts: W.Box(list(charts), layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))  # noqa: E731
        header = W.HTML(
            "<b>Training monitor</b>: charts update while the jobs train in the background. Pause and Stop act "
            "between steps and answer whenever no cell is running (a running cell such as <code>job.wait()</code> "
            "holds the kernel)."
        )
        super().__init__([
            header, *rows,
            row(self.accuracy_chart.widget, self.loss_chart.widget),
            W.HBox([self.run_picker, self.probe_picker, self.temperature_picker], layout=W.Layout(flex_flow="row wrap")),
            row(self.probe_image.widget, self.probe_chart.widget),
            self.replay,
            self.errors,
        ])
        self.poller = Poller(self._tick, interval_ms, name="kdviz-training-monitor", on_error=self._report)
        if autostart and not all(v.done for v in self.runs):
            self.poller.start()  # the first tick draws at once, in the background: the cell returns now
        else:
            self.refresh()

    # ---- controls ---------------------------------------------------------------------------
    def _view(self, label: str) -> RunView:
        for view in self.runs:
            if view.label == label:
                return view
        raise ValueError(f"no run labelled {label!r} (known: {', '.join(v.label for v in self.runs)})")

    def toggle_pause(self, label: str) -> None:
        """Pause the job, or resume it if it is paused (what the Pause button does)."""
        view = self._view(label)
        if not view.controllable or view.done:
            return
        if self.pause_buttons[label].description == "Pause":
            view.job.pause()
            self.pause_buttons[label].description, self.pause_buttons[label].icon = "Resume", "play"
        else:
            view.job.resume()
            self.pause_buttons[label].description, self.pause_buttons[label].icon = "Pause", "pause"
        self._update_status()

    def stop(self, label: str | None = None) -> None:
        """Stop one job (or every job when ``label`` is None); returns at once."""
        for view in self.runs if label is None else [self._view(label)]:
            if view.controllable:
                view.job.stop()
        self._update_status()

    # ---- polling and drawing ------------------------------------------------------------------
    def _tick(self) -> bool:
        all_done = all(v.done for v in self.runs)  # read before the data, so the last records are in
        evals_changed, picked = False, self.run_picker.value
        for view in self.runs:
            old_metrics, old_snaps = self._versions[view.label]
            _, metrics_v = view.store.metrics_since(old_metrics)
            _, snaps_v = view.store.snapshots_since(old_snaps)
            if metrics_v != old_metrics:
                records = view.store.metrics()
                evals_changed |= _eval_count(records) != _eval_count(self._records[view.label]) or old_metrics < 0
                self._records[view.label] = records
                if view.label == picked:
                    self._draw_loss()
            if snaps_v != old_snaps and view.label == picked:
                self._draw_probe()
            self._versions[view.label] = (metrics_v, snaps_v)
        self._update_status()
        if evals_changed:
            self._draw_accuracy()
        if all_done:
            self._arm_replay()
        return not all_done

    def _arm_replay(self) -> None:
        """Once every run has ended: a play button and scrubber over the picked run's probe snapshots."""
        view = self._view(self.run_picker.value)
        snapshots, _ = view.store.snapshots_since(0)
        if (view.label, len(snapshots)) != getattr(self, "_replayed", None):
            self._replayed = (view.label, len(snapshots))
            self.replay.set_snapshots(snapshots)

    def refresh(self) -> None:
        """Read every run and redraw everything now (the poller does this on its own)."""
        self._versions = {v.label: (-1, -1) for v in self.runs}
        self._tick()

    def _waitables(self) -> list:
        return [view.job for view in self.runs if view.job is not None]

    def _update_status(self) -> None:
        for view in self.runs:
            status = view.status()
            self.status_html[view.label].value = status_line(view, status, self._records[view.label])
            if view.done or not view.controllable:
                pause, stop = self.pause_buttons[view.label], self.stop_buttons[view.label]
                pause.disabled = stop.disabled = True
                if view.done:  # nothing left to stop: no red button beside a finished run
                    pause.layout.display = stop.layout.display = "none"

    def _draw_accuracy(self) -> None:
        if self._teacher_acc is None:
            self._teacher_acc = teacher_accuracy(self.runs)
        # A teacher among the runs is drawn as the reference line, the students as curves.
        shown = [v for v in self.runs if not is_teacher(v) or self._teacher_acc is None] or self.runs
        runs = [{"label": v.label, "colour": v.colour, "records": self._records[v.label]} for v in shown]
        if not any(r.get("kind") == "eval" for run in runs for r in run["records"]):
            return
        self.accuracy_chart.show(accuracy_comparison(runs, teacher_accuracy=self._teacher_acc))

    def _draw_details(self) -> None:
        if all(v.done for v in self.runs):
            self._arm_replay()
        self._draw_loss()
        self._draw_probe()

    def _draw_loss(self) -> None:
        view = self._view(self.run_picker.value)
        records = self._records[view.label]
        if any(r.get("kind") == "step" for r in records):
            self.loss_chart.show(loss_curves(records, title=f"{view.label}: training loss and its parts"))

    def _draw_probe(self, snapshot: Any = None) -> None:
        """The picked run's probe chart at ``snapshot`` (a replay position) or its latest snapshot."""
        view = self._view(self.run_picker.value)
        snapshot, reference = snapshot or view.store.latest_snapshot(), view.store.reference()
        if snapshot is None or "probe/temperatures" not in reference:
            return
        self._sync_probe_controls(reference, float(getattr(view.config, "T", 4.0)))
        sample, t_index = self.probe_picker.value, self.temperature_picker.value
        if t_index is None:
            return
        names = self._names(view, snapshot.arrays["probe/soft"].shape[-1])
        self.probe_chart.show(probe_soft_targets_from_snapshot(snapshot, reference, sample, t_index, names,
                                                               student_label=view.label, student_colour=view.colour))
        label = names[int(reference["probe/labels"][sample])]
        self.probe_image.show(sample_image(reference["probe/images"][sample], f"Probe image {sample}: class {label}"))

    def _sync_probe_controls(self, reference: dict, preferred_T: float) -> None:
        count = len(reference["probe/labels"])
        if self.probe_picker.max != count - 1:
            self.probe_picker.max = count - 1
        temps = [(f"{t:g}", i) for i, t in enumerate(reference["probe/temperatures"])]
        if list(self.temperature_picker.options) != temps:
            self.temperature_picker.options = temps
            # start at the distillation temperature (or the nearest probe temperature)
            self.temperature_picker.value = min(range(len(temps)), key=lambda i: abs(reference["probe/temperatures"][i] - preferred_T))

    def _names(self, view: RunView, num_classes: int) -> list[str]:
        if self._class_names is None:
            try:
                from ..engine.setup import dataset_for

                self._class_names = list(dataset_for(view.config).class_names)
            except Exception:  # the dataset may be gone (a reopened run): number the classes
                self._class_names = [str(i) for i in range(num_classes)]
        return self._class_names

    def _report(self, exc: BaseException) -> None:
        text = f"kdviz monitor: {type(exc).__name__}: {exc}"
        if text not in self._errors_seen:
            self._errors_seen.add(text)
            self.errors.append_stdout(text + "\n")


def _eval_count(records: list[dict]) -> int:
    return sum(1 for r in records if r.get("kind") == "eval")


__all__ = ["TrainingMonitor", "status_line", "format_duration", "placeholder"]
