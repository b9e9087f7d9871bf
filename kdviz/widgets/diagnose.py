"""``KDDiagnosis``: why a distilled student helped or not, in a notebook (the app's Diagnose section).

Thin: ``kdviz.present.diagnose`` reads the runs' checkpoints and records and gives the warnings,
the figures and their captions; this lays them out. For a live run a ``_live.Poller`` recomputes
the diagnosis every ``interval_ms`` (the numbers are computed once per saved checkpoint) until the
runs end; ``refresh()`` does it once by hand.
"""
from __future__ import annotations

import html
import threading
from pathlib import Path
from typing import Any

import ipywidgets as W

from ..present.diagnose import Diagnosis, diagnose, diagnosis_figures
from ..present.runs import as_run_view
from ._live import LiveFigure
from ._monitor import CHART_WIDTH, PolledMonitor

WARNING_STYLE = "background:#fff4e5;border-left:4px solid #E69F00;padding:6px 10px;margin:4px 0"


class KDDiagnosis(PolledMonitor, W.VBox):
    """The Diagnose view of ``kd_run`` (a ``Job``, ``RunReader`` or run folder of a distilled run,
    live or ended) beside ``scratch_run`` (None: the matching finished scratch run beside it, if
    any); finished runs at other (T, alpha) under ``runs_root`` (default: the run's own root) fill
    the response surface."""

    def __init__(self, kd_run: Any, scratch_run: Any = None, runs_root: str | Path | None = None,
                 interval_ms: float = 2000, autostart: bool = True) -> None:
        self.kd, self.scratch = as_run_view(kd_run), (as_run_view(scratch_run) if scratch_run is not None else None)
        self.runs_root = runs_root
        self.diagnosis: Diagnosis | None = None
        self.charts: dict[str, LiveFigure] = {}
        self.captions: dict[str, W.HTML] = {}
        self._lock = threading.Lock()
        self.warnings = W.HTML()
        self.note = W.HTML()
        self.grid = W.Box([], layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))
        self.refresh_button = W.Button(description="Refresh", icon="refresh", layout=W.Layout(width="110px"),
                                       tooltip="read the runs' latest checkpoints again")
        self.refresh_button.on_click(lambda _: self.refresh())
        header = W.HTML("<b>Diagnose: why did KD help or not?</b> Per-class agreement with the teacher and gain over "
                        "scratch, the dark knowledge the student received, the teacher's calibration (Guo et al. "
                        "2017) and, when several finished runs exist, the T x alpha surface.")
        super().__init__([header, W.HBox([self.refresh_button, self.note]), self.warnings, self.grid])
        self._start_polling(interval_ms, autostart, "kdviz-diagnosis", on_error=self._show_error)

    @property
    def done(self) -> bool:
        return self.kd.done and (self.scratch is None or self.scratch.done)

    def _waitables(self) -> list[Any]:
        return [v.job for v in (self.kd, self.scratch) if v is not None and v.job is not None]

    def _tick(self) -> bool:
        done = self.done  # read before the checkpoints, so the last one is in
        self.refresh()
        return not done

    def refresh(self) -> None:
        """Read the runs again and redraw the warnings and every chart; a run that cannot be
        diagnosed yet (no checkpoint) is said in the note, never raised."""
        with self._lock:
            try:
                found = diagnose(self.kd, self.scratch, self.runs_root)
            except ValueError as exc:
                self.note.value = f"<span style='color:#D55E00'>{html.escape(str(exc))}</span>"
                return
            self.diagnosis = found
            self.note.value = ("" if found.ended else f"read at step {found.step}, while training: "
                                                      "the numbers will move")
            self.warnings.value = "".join(f"<div style='{WARNING_STYLE}'>{html.escape(w.text)}</div>"
                                          for w in found.warnings) or \
                "<div>None of the usual reasons fires for this run.</div>"
            for item in diagnosis_figures(found):
                self._show(item.key, item.figure, item.caption)

    def _show(self, key: str, figure, caption: str) -> None:
        if key not in self.charts:
            self.charts[key] = LiveFigure(figure, width=CHART_WIDTH)
            self.captions[key] = W.HTML(layout=W.Layout(width=f"{CHART_WIDTH}px"))
            self.grid.children = [*self.grid.children, W.VBox([self.charts[key].widget, self.captions[key]])]
        else:
            self.charts[key].show(figure)
        self.captions[key].value = f"<small>{html.escape(caption)}</small>"

    def _show_error(self, exc: BaseException) -> None:
        self.note.value = f"<span style='color:#D55E00'>{html.escape(f'{type(exc).__name__}: {exc}')}</span>"


__all__ = ["KDDiagnosis"]
