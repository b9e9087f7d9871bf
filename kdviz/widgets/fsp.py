"""``FSPMonitor``: Yim et al.'s two-stage training (CVPR 2017) drawn live in a notebook.

Stage 1 trains a student to match a teacher's FSP matrices (eq. 1, the inner products between the
channels of a section's first and last feature maps) with the FSP loss alone (eq. 2), or, with any
other stage-1 method the registry declares (``two_stage.stage1_methods()``: FitNets hints, Romero et
al. 2015), that method's loss; stage 2 trains it on the labels from there; a scratch student is the
baseline of the "fast optimisation" comparison (section 4.1). The monitor shows, from the runs'
stores, the teacher, student and difference heatmaps of a chosen section pair (for a method with a
snapshot reader, updating during stage 1), the stage-1 loss curve and test accuracy against
iterations for both students, with a Stop button. A ``_live.Poller`` thread reads the stores and
redraws at most every ``interval_ms`` through ``_live.LiveFigure`` (one batched message per chart);
given the ``TwoStageFSP`` experiment it also ``poll()``s it, which starts stage 2 when stage 1 has
finished, so the cell that shows the monitor returns at once and nothing needs a click. Once every
run has ended, a play button and a scrubber (``_replay.ReplayBar``) replay the heatmaps over the
stage-1 snapshots.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import ipywidgets as W

from ..figures.fsp_live import fast_optimisation_from_records, heatmaps_from_pairs, loss_curve_from_records
from ..methods.two_stage import (
    ROLES, SCRATCH, STAGE1, STAGE2, latest_reading, probe_loss_key, role_of, stage1_method_of, stage1_methods,
)
from ..present import Experiment
from ._live import LiveFigure, LiveMonitor, Poller, Throttle
from ._replay import ReplayBar
from ._runs import RunView, as_run_view
from .monitor import placeholder, status_line

CHART_WIDTH = 560
ROLE_LABELS = {STAGE1: "stage 1", STAGE2: "stage 2", SCRATCH: "scratch student"}


def stage1_requirement() -> str:
    """What a stage-1 run is, naming every stage-1 method the registry declares."""
    hooks = ", ".join(f"{m.name!r} ({m.stage1.short})" for m in stage1_methods())
    return f"a stage-1 run (base loss 'none' with one of the hooks {hooks})"


class FSPMonitor(LiveMonitor, W.VBox):
    """Live charts of a ``TwoStageFSP`` experiment (plus ``scratch``, a job or run folder, unless the
    experiment holds one) or of runs given as a list or ``{label: run}`` dict of jobs, ``RunReader``s
    or run folders (roles are read from their configs: ``two_stage.role_of``). ``interval_ms`` is
    the poll and redraw interval (the rate limit for the browser).
    """

    def __init__(self, two_stage_or_jobs: Any, scratch: Any = None, interval_ms: float = 1000,
                 autostart: bool = True) -> None:
        self.experiment = two_stage_or_jobs if isinstance(two_stage_or_jobs, Experiment) else None
        self.views: dict[str, RunView] = {}
        self._lock = threading.RLock()  # the poller thread and a cell may both read and adopt stage 2
        self._errors_seen: set[str] = set()
        for run in self._given_runs(two_stage_or_jobs):
            self._add(run)
        if scratch is not None:
            self._add(scratch)
        if STAGE1 not in self.views:
            raise ValueError(f"FSPMonitor needs {stage1_requirement()}")
        self.method = stage1_method_of(self.views[STAGE1].config)
        self.loss_key = probe_loss_key(self.method, self.views[STAGE1].config)
        self.snapshot = None  # the latest stage-1 snapshot with matrices
        self.reading = None  # its typed reading (``method.read_snapshot``)
        self.heatmap_step: int | None = None  # the stage-1 step the heatmaps show
        self._build_widgets(self.method.stage1.short)
        self.poller = Poller(self._tick, interval_ms, name="kdviz-fsp-monitor", on_error=self._report)
        if autostart and not self.done:
            self.poller.start()
        else:
            self.refresh()

    def _given_runs(self, given: Any) -> list[Any]:
        if self.experiment is not None:
            return list(self.experiment.jobs.values())
        if isinstance(given, Mapping):
            return list(given.values())
        return list(given) if isinstance(given, (list, tuple)) else [given]

    def _build_widgets(self, name: str) -> None:
        self.status_html = {r: W.HTML() for r in ROLES}
        self.stop_button = W.Button(description="Stop", icon="stop", button_style="danger", layout=W.Layout(width="90px"),
                                    tooltip="stop every run after its current step (stage 2 then never starts)")
        self.stop_button.on_click(lambda _: self.stop())
        self.pair_picker = W.Dropdown(options=[], description="section pair", layout=W.Layout(width="360px"),
                                      style={"description_width": "initial"})
        self.caption = W.HTML()
        self.errors = W.Output()
        self.heatmap_chart = LiveFigure(placeholder("FSP matrices: waiting for the first stage-1 snapshot", height=360),
                                        width=2 * CHART_WIDTH)
        self.loss_chart = LiveFigure(placeholder(f"{name} loss: waiting for the first stage-1 evaluation"), width=CHART_WIDTH)
        self.accuracy_chart = LiveFigure(placeholder("Fast optimisation: waiting for stage 2's first evaluation"),
                                         width=CHART_WIDTH)
        self._throttle = Throttle(self._draw_heatmaps, 100, on_error=self._report)
        self.replay = ReplayBar(self._replay_to, on_error=self._report)
        self.pair_picker.observe(lambda _: self._throttle(), names="value")
        header = W.HTML(
            f"<b>{name} monitor</b>: stage 1 trains the student on the {name} loss alone, stage 2 on the labels from "
            "there, and a scratch student trains beside them (Yim et al. 2017, section 4.1). Watch the student's FSP "
            "matrix take the teacher's pattern and the difference fade, then the stage-2 accuracy overtake scratch."
        )
        row = lambda *ws: W.Box(list(ws), layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))  # noqa: E731
        heat = ([W.HBox([self.pair_picker, self.replay], layout=W.Layout(flex_flow="row wrap")), self.caption,
                 self.heatmap_chart.widget] if self.method.reader is not None else [])
        super().__init__([header, W.HBox([self.stop_button, W.VBox(list(self.status_html.values()))],
                                         layout=W.Layout(align_items="center")),
                          *heat, row(self.loss_chart.widget, self.accuracy_chart.widget), self.errors])

    def _add(self, run: Any) -> None:
        view = as_run_view(run)
        role = role_of(view.config)
        if role in self.views:
            raise ValueError(f"two runs are the {role} run; give one of each ({', '.join(ROLES)})")
        view.label = ROLE_LABELS[role]
        self.views[role] = view

    def _adopt_new_jobs(self) -> None:
        """Poll the experiment (stage 2 starts when stage 1 has finished) and show any new job."""
        if self.experiment is None:
            return
        with self._lock:
            self.experiment.poll()
            shown = [v.job for v in self.views.values()]
            for job in self.experiment.jobs.values():
                if not any(job is s for s in shown):
                    self._add(job)

    @property
    def done(self) -> bool:
        """Every run has ended, and stage 2 has run or never will."""
        self._adopt_new_jobs()
        ended = all(v.done for v in self.views.values())
        return ended and (self.experiment is None or not self.experiment.pending)

    def stop(self) -> None:
        """Stop every run after its current step (checkpoints are saved; stage 2 then never
        starts); returns at once."""
        if self.experiment is not None:
            self.experiment.stop()
        for view in self.views.values():
            if view.controllable and not view.done:
                view.job.stop()
        self._update_status()

    # ---- polling ------------------------------------------------------------------------------
    def _tick(self, redraw: bool = False) -> bool:
        done = self.done  # read before the data (and start stage 2), so the last records are in
        changed = set()
        with self._lock:
            for role, view in list(self.views.items()):
                evals, snaps = len(view.evals), len(view.snapshots)
                view.refresh()
                if redraw or len(view.evals) > evals:
                    changed.add(role)
                if role == STAGE1 and (redraw or len(view.snapshots) > snaps):
                    self._read_matrices(view)
        if STAGE1 in changed:
            stage1 = self.method.stage1
            fig = loss_curve_from_records(self.views[STAGE1].evals, self.loss_key, stage1.short,
                                          stage1.loss_caption, stage1.loss_axis)
            if fig is not None:
                self.loss_chart.show(fig)
        if changed:
            self._draw_accuracy()
        self._update_status()
        if done:
            self._arm_replay()
        return not done

    def _read_matrices(self, view: RunView) -> None:
        latest = latest_reading(view.snapshots, self.method, view.config)
        if latest is None:
            return
        self.snapshot, self.reading = latest
        labels = self.reading.labels
        if list(self.pair_picker.options) != labels:
            keep = self.pair_picker.value if self.pair_picker.value in labels else labels[0]
            self.pair_picker.options = labels
            self.pair_picker.value = keep
        self._draw_heatmaps()

    def _arm_replay(self) -> None:
        """Once every run has ended: a play button and scrubber over the stage-1 snapshots with matrices."""
        if self.method.reader is None:
            return
        stage1 = self.views[STAGE1]
        self.replay.set_snapshots([snap for snap in stage1.snapshots if self._reading_of(snap) is not None])

    def _reading_of(self, snapshot: Any) -> Any:
        try:
            return self.method.read_snapshot(snapshot.arrays, self.views[STAGE1].config)
        except ValueError:  # a snapshot without the method's arrays
            return None

    def _replay_to(self, snapshot: Any) -> None:
        """Draw the heatmaps at a replayed stage-1 snapshot (the pair picker still applies)."""
        reading = self._reading_of(snapshot)
        if reading is not None:
            self.snapshot, self.reading = snapshot, reading
            self._draw_heatmaps()

    def refresh(self) -> None:
        """Read what is new in every run and redraw every chart now (the poller does this on its own)."""
        self._tick(redraw=True)

    def _waitables(self) -> list:
        """The experiment first (stage 2 starts when stage 1 ends), then every run's job."""
        jobs = [view.job for view in list(self.views.values()) if view.job is not None]
        return ([self.experiment] if self.experiment is not None else []) + jobs

    def _after_runs_ended(self) -> None:
        self._adopt_new_jobs()

    # ---- drawing ------------------------------------------------------------------------------
    def _draw_heatmaps(self) -> None:
        if self.reading is None or self.pair_picker.value is None:
            return
        snapshot, reading = self.snapshot, self.reading
        self.heatmap_chart.show(heatmaps_from_pairs(reading.pairs, self.pair_picker.value))
        self.heatmap_step = snapshot.step
        self.caption.value = (f"Stage-1 step {snapshot.step}: matrices averaged over 64 fixed test images. Rows "
                              "are channels of the section's first map, columns of its last.")

    def _draw_accuracy(self) -> None:
        stage1 = self.views[STAGE1]
        steps = stage1.status().get("total_steps") or getattr(stage1.config, "max_steps", 0) or 0
        evals = {role: view.evals for role, view in self.views.items()}
        fig = fast_optimisation_from_records(evals.get(SCRATCH, []), evals.get(STAGE2, []), evals[STAGE1], int(steps),
                                             self.method.stage1.short)
        if fig is not None:
            self.accuracy_chart.show(fig)

    def _update_status(self) -> None:
        for role in ROLES:
            view = self.views.get(role)
            self.status_html[role].value = (self._missing(role) if view is None else
                                            status_line(view, view.status(), view.evals))
        pending = self.experiment is not None and bool(self.experiment.pending)
        ended = all(v.done for v in self.views.values()) and not pending
        self.stop_button.disabled = ended or not any(v.controllable for v in self.views.values())
        if ended:  # nothing left to stop: no red button beside finished runs
            self.stop_button.layout.display = "none"

    def _missing(self, role: str) -> str:
        if role == SCRATCH:
            return "<i>no scratch run given: the fast-optimisation chart needs one</i>"
        if self.experiment is None:
            return "<i>no stage-2 run given</i>"
        why = self.experiment.blocked.get(STAGE2)
        if why is not None:
            return f"<b>stage 2</b> will not start: {why}"
        return "<b>stage 2</b> starts when stage 1 has finished"

    def _report(self, exc: BaseException) -> None:
        text = f"kdviz FSP monitor: {type(exc).__name__}: {exc}"
        if text not in self._errors_seen:  # a failing redraw repeats every tick: say it once
            self._errors_seen.add(text)
            self.errors.append_stdout(text + "\n")


__all__ = ["FSPMonitor", "role_of", "stage1_requirement"]
