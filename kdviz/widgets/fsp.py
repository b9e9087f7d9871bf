"""``FSPMonitor``: Yim et al.'s two-stage FSP training (CVPR 2017) drawn live in a notebook.

Stage 1 trains a student to match a teacher's FSP matrices (eq. 1, the inner products between the
channels of a section's first and last feature maps) with the FSP loss alone (eq. 2); stage 2 trains
it on the labels from there; a scratch student is the baseline of the "fast optimisation"
comparison (section 4.1). The monitor shows, from the runs' stores, the teacher, student and
difference heatmaps of a chosen section pair (updating during stage 1), the stage-1 loss curve and
test accuracy against iterations for both students, with a Stop button. A ``_live.Poller`` thread
reads the stores and redraws at most every ``interval_ms`` through ``_live.LiveFigure`` (one
batched message per chart); it also starts stage 2 when stage 1 has finished, so the cell that
shows the monitor returns at once and nothing needs a click.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import ipywidgets as W

from ..figures.fsp_live import fast_optimisation_from_records, heatmaps_from_snapshot, loss_curve_from_records, pair_labels
from ._live import LiveFigure, Poller, Throttle
from ._runs import RunView, as_run_view
from .monitor import placeholder, status_line

CHART_WIDTH = 560
ROLES = ("stage 1", "stage 2", "scratch")


def _stage1_hook(config: Any) -> str | None:
    """``"fsp"`` or ``"hints"`` for a stage-1 config (method "none" with that hook), else None."""
    names = [h.get("name") for h in getattr(config, "hooks", []) or []]
    if getattr(config, "method", None) != "none":
        return None
    return "fsp" if "fsp" in names else ("hints" if "hints" in names else None)


def role_of(config: Any) -> str:
    """Which run of the comparison a config is: stage 1, stage 2 (cross-entropy from an
    ``init_from`` run) or scratch (cross-entropy from a random start)."""
    if _stage1_hook(config) is not None:
        return "stage 1"
    if getattr(config, "method", None) == "ce":
        return "stage 2" if getattr(config, "init_from", None) else "scratch"
    raise ValueError(f"run {getattr(config, 'name', '?')!r} (method {getattr(config, 'method', '?')!r}) is not an FSP "
                     "stage 1 (method 'none' with the 'fsp' or 'hints' hook), a stage 2 or a scratch run")


class FSPMonitor(W.VBox):
    """Live FSP charts of a ``TwoStageFSP`` (plus ``scratch``, a job or run folder) or of runs given
    as a list or ``{label: run}`` dict of jobs, ``RunReader``s or run folders (roles are read from
    their configs). ``interval_ms`` is the poll and redraw interval (the rate limit for the browser).
    """

    def __init__(self, two_stage_or_jobs: Any, scratch: Any = None, interval_ms: float = 1000,
                 autostart: bool = True) -> None:
        self.stages = None
        self.views: dict[str, RunView] = {}
        self._lock = threading.Lock()  # the poller thread and a cell may both adopt stage 2
        self._errors_seen: set[str] = set()
        if hasattr(two_stage_or_jobs, "stage1") and hasattr(two_stage_or_jobs, "poll"):
            self.stages = two_stage_or_jobs
            self._add("stage 1", self.stages.stage1)
            if self.stages.stage2 is not None:
                self._add("stage 2", self.stages.stage2)
        else:
            runs = two_stage_or_jobs.values() if isinstance(two_stage_or_jobs, Mapping) else (
                two_stage_or_jobs if isinstance(two_stage_or_jobs, (list, tuple)) else [two_stage_or_jobs])
            for run in runs:
                view = as_run_view(run)
                self._add(role_of(view.config), view)
        if scratch is not None:
            self._add("scratch", scratch)
        if "stage 1" not in self.views:
            raise ValueError("FSPMonitor needs a stage-1 run (method 'none' with the 'fsp' or 'hints' hook)")
        self.hook = _stage1_hook(self.views["stage 1"].config)
        name = "FSP" if self.hook == "fsp" else "FitNets"
        self.records: dict[str, list[dict]] = {r: [] for r in ROLES}
        self._versions: dict[str, tuple[int, int]] = {r: (0, 0) for r in ROLES}
        self.snapshot = None  # the latest stage-1 snapshot with FSP matrices
        self.heatmap_step: int | None = None  # the stage-1 step the heatmaps show

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
        self.pair_picker.observe(lambda _: self._throttle(), names="value")

        header = W.HTML(
            f"<b>{name} monitor</b>: stage 1 trains the student on the {name} loss alone, stage 2 on the labels from "
            "there, and a scratch student trains beside them (Yim et al. 2017, section 4.1). Watch the student's FSP "
            "matrix take the teacher's pattern and the difference fade, then the stage-2 accuracy overtake scratch."
        )
        row = lambda *ws: W.Box(list(ws), layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))  # noqa: E731
        heat = [self.pair_picker, self.caption, self.heatmap_chart.widget] if self.hook == "fsp" else []
        super().__init__([header, W.HBox([self.stop_button, W.VBox(list(self.status_html.values()))],
                                         layout=W.Layout(align_items="center")),
                          *heat, row(self.loss_chart.widget, self.accuracy_chart.widget), self.errors])
        self.poller = Poller(self._tick, interval_ms, name="kdviz-fsp-monitor", on_error=self._report)
        if autostart and not self.done:
            self.poller.start()
        else:
            self.refresh()

    def _add(self, role: str, run: Any) -> None:
        if role in self.views:
            raise ValueError(f"two runs are the {role} run; give one of each (stage 1, stage 2, scratch)")
        view = run if isinstance(run, RunView) else as_run_view(run)
        view.label = {"stage 1": "stage 1", "stage 2": "stage 2", "scratch": "scratch student"}[role]
        view.role = "scratch student" if role == "scratch" else "fsp student"
        self.views[role] = view

    @property
    def done(self) -> bool:
        """Every run has ended, and stage 2 has run or never will."""
        with self._lock:
            if self.stages is not None and "stage 2" not in self.views:
                stage2 = self.stages.poll()
                if stage2 is not None:
                    self._add("stage 2", stage2)
        ended = all(v.done for v in self.views.values())
        waiting = self.stages is not None and "stage 2" not in self.views and \
            self.views["stage 1"].status().get("state") == "finished"
        return ended and not waiting

    def stop(self) -> None:
        """Stop every run after its current step (checkpoints are saved); returns at once."""
        for view in self.views.values():
            if view.controllable:
                view.job.stop()
        self._update_status()

    # ---- polling ------------------------------------------------------------------------------
    def _tick(self) -> bool:
        done = self.done  # read before the data (and start stage 2), so the last records are in
        changed = set()
        for role, view in list(self.views.items()):
            records, metrics_v = view.store.metrics_since(self._versions[role][0])
            snaps, snaps_v = view.store.snapshots_since(self._versions[role][1])
            self._versions[role] = (metrics_v, snaps_v)
            self.records[role].extend(records)
            if any(r.get("kind") == "eval" for r in records):
                changed.add(role)
            fsp = [s for s in snaps if "fsp/pairs" in s.arrays]
            if role == "stage 1" and fsp:
                self.snapshot = fsp[-1]
                labels = pair_labels(self.snapshot.arrays)
                if list(self.pair_picker.options) != labels:
                    keep = self.pair_picker.value if self.pair_picker.value in labels else labels[0]
                    self.pair_picker.options = labels
                    self.pair_picker.value = keep
                self._draw_heatmaps()
        if "stage 1" in changed:
            fig = loss_curve_from_records(self.records["stage 1"], self.hook)
            if fig is not None:
                self.loss_chart.show(fig)
        if changed:
            self._draw_accuracy()
        self._update_status()
        return not done

    def refresh(self) -> None:
        """Read every run again and redraw now (the poller does this on its own)."""
        self.records, self._versions = {r: [] for r in ROLES}, {r: (0, 0) for r in ROLES}
        self._tick()

    def wait(self, timeout: float | None = None) -> None:
        """Block until stage 1, stage 2 (started here if need be) and scratch have ended, then draw."""
        for role in ("stage 1", "scratch"):
            job = self.views[role].job if role in self.views else None
            if job is not None:
                job.wait(timeout)
        if not self.done and "stage 2" in self.views and self.views["stage 2"].job is not None:
            self.views["stage 2"].job.wait(timeout)
        self.poller.join(timeout)
        if not self.poller.running:
            self.refresh()

    def close(self) -> None:
        if getattr(self, "poller", None) is not None:
            self.poller.stop()
        super().close()

    # ---- drawing ------------------------------------------------------------------------------
    def _draw_heatmaps(self) -> None:
        if self.snapshot is None or self.pair_picker.value is None:
            return
        snapshot = self.snapshot
        self.heatmap_chart.show(heatmaps_from_snapshot(snapshot.arrays, self.pair_picker.value))
        self.heatmap_step = snapshot.step
        self.caption.value = (f"Stage-1 step {snapshot.step}: matrices averaged over 64 fixed test images. Rows "
                              "are channels of the section's first map, columns of its last.")

    def _draw_accuracy(self) -> None:
        stage1 = self.views["stage 1"].status()
        steps = stage1.get("total_steps") or getattr(self.views["stage 1"].config, "max_steps", 0) or 0
        fig = fast_optimisation_from_records(self.records["scratch"], self.records["stage 2"], self.records["stage 1"],
                                             int(steps), self.hook)
        if fig is not None:
            self.accuracy_chart.show(fig)

    def _update_status(self) -> None:
        for role in ROLES:
            view = self.views.get(role)
            if view is None:
                self.status_html[role].value = self._missing(role)
                continue
            self.status_html[role].value = status_line(view, view.status(), self.records[role])
        ended = all(v.done for v in self.views.values()) and (self.stages is None or "stage 2" in self.views
                                                               or self.views["stage 1"].status().get("state") != "finished")
        self.stop_button.disabled = ended or not any(v.controllable for v in self.views.values())

    def _missing(self, role: str) -> str:
        if role == "scratch":
            return "<i>no scratch run given: the fast-optimisation chart needs one</i>"
        if self.stages is None:
            return "<i>no stage-2 run given</i>"
        state = self.views["stage 1"].status().get("state")
        if self.views["stage 1"].done and state != "finished":
            return f"<b>stage 2</b> will not start: stage 1 ended {state}"
        return "<b>stage 2</b> starts when stage 1 has finished"

    def _report(self, exc: BaseException) -> None:
        text = f"kdviz FSP monitor: {type(exc).__name__}: {exc}"
        if text not in self._errors_seen:  # a failing redraw repeats every tick: say it once
            self._errors_seen.add(text)
            self.errors.append_stdout(text + "\n")


__all__ = ["FSPMonitor", "role_of"]
