"""``ReproductionMonitor``: rebuild a paper's table in a notebook and watch it fill in (issue 15).

The widget twin of the Streamlit Reproduce page (``kdviz/app/pages/reproduce.py``): pick a
reproduction (``kdviz.reproduce.REPRODUCTIONS``), the number of seeds and quick or full, press
Start. ``kdviz.reproduce.start_reproduction`` starts the runs and returns a ``Reproducing`` at once
(a reused teacher or baseline first, the other runs once it has finished); ``Reproducing.watch``
keeps it going when no one looks, and a ``_live.Poller`` thread polls it every ``interval_ms``, so
the table (the paper's number beside ours, mean ± std over seeds, every seed's value, training
time per run), one status line per planned run and the test accuracy of every run fill in live.
Stop stops the runs and keeps the table so far. Below, a result saved under the runs root
(``<runs root>/reproductions/<name>-<time>/result.json``) reopens with its table and the accuracy
of its runs read back from their folders.

The table's cells and captions come from ``kdviz.reproduce.present`` (``table_records``,
``result_caption``, ``settings_caption``), so the page, this widget and ``kdviz reproduce`` show
the same numbers.
"""
from __future__ import annotations

import html
import os
import re
import threading
from pathlib import Path

import ipywidgets as W

from ..engine import JobManager
from ..figures.training import accuracy_comparison
from ..paths import runs_root as default_runs_root
from ..present import as_run_view
from ..present.run_table import distinct_colours
from ..reproduce import REPRODUCTIONS, Reproducing, ReproductionResult, load_result, start_reproduction
from ..reproduce.present import (
    COLUMNS, failed_runs, result_caption, run_labels, saved_results, settings_caption, table_records,
)
from ._live import LiveFigure, LiveMonitor, Poller
from ._runs import RunView
from .monitor import placeholder, status_line

CHART_WIDTH = 860
QUICK, FULL = "quick", "full"
CHART_TITLE = "Test accuracy of every run of the reproduction"
MESSAGE_STYLE = "border-left:4px solid #D55E00;background:rgba(213,94,0,0.08);padding:6px 10px"
TABLE_STYLE = ("<style>.kdviz-repro td,.kdviz-repro th{padding:3px 10px;text-align:left;border-bottom:1px solid #ddd}"
               ".kdviz-repro th{font-weight:bold}</style>")


def markdown_html(text: str) -> str:
    """The captions' light markdown (``**bold**``, ```code```) as escaped HTML."""
    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


def table_html(records: list[dict[str, str]]) -> str:
    """``table_records`` as an HTML table with the columns of ``kdviz.reproduce.present.COLUMNS``."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in COLUMNS) + "</tr>"
                   for r in records)
    return f"{TABLE_STYLE}<table class='kdviz-repro'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def message_html(text: str) -> str:
    return f"<div style='{MESSAGE_STYLE}'>&#9888; {html.escape(text)}</div>"


class ReproductionMonitor(LiveMonitor, W.VBox):
    """Start a reproduction, watch its table and runs live, stop it, or reopen a saved result.

    ``name``, ``seeds`` and ``quick`` preset the controls; ``runs_root`` (default
    ``kdviz.paths.runs_root()``) is where runs and results go and where saved results are listed;
    ``data_root`` (default ``$KDVIZ_DATA``) the folder of the dataset's files; ``manager`` the job
    manager (default: the reproducible managers of ``kdviz.reproduce``); ``result`` a saved result
    (folder or result.json) to open at once."""

    def __init__(self, name: str | None = None, seeds: int = 3, quick: bool = True,
                 runs_root: str | os.PathLike | None = None, data_root: str | os.PathLike | None = None,
                 manager: JobManager | None = None, result: str | os.PathLike | None = None,
                 interval_ms: float = 1000) -> None:
        names = REPRODUCTIONS.names()
        if name is not None and name not in names:
            raise ValueError(f"no reproduction {name!r} (reproductions: {', '.join(names)})")
        self.runs_root = Path(runs_root or default_runs_root()).expanduser()
        self.data_root, self.manager = data_root, manager
        self.reproducing: Reproducing | None = None
        self.shown: ReproductionResult | None = None  # the result in the table (live or reopened)
        self._views: dict[str, RunView] = {}
        self._drawn: tuple = ()
        self._lock = threading.RLock()

        self.picker = W.Dropdown(options=[(f"{n}: {REPRODUCTIONS.get(n).title}", n) for n in names],
                                 value=name or names[0], description="paper", layout=W.Layout(width="620px"))
        self.seeds = W.IntSlider(value=int(seeds), min=1, max=5, description="seeds", continuous_update=False,
                                 layout=W.Layout(width="300px"))
        self.mode = W.ToggleButtons(options=[QUICK, FULL], value=QUICK if quick else FULL,
                                    tooltips=["short runs: the table's shape in minutes", "the settings of the README's table"])
        self.settings = W.HTML()
        self.start_button = W.Button(description="Start", icon="play", button_style="primary")
        self.stop_button = W.Button(description="Stop", icon="stop", button_style="danger", disabled=True,
                                    tooltip="stop every run and keep the table so far")
        self.message = W.HTML()
        self.heading = W.HTML()
        self.table = W.HTML()
        self.caption = W.HTML()
        self.failures = W.HTML()
        self.runs_status = W.HTML()
        self.chart = LiveFigure(placeholder("Test accuracy: waiting for the first evaluation"), width=CHART_WIDTH)
        self.saved = W.Dropdown(options=[], description="result", layout=W.Layout(width="620px"))
        self.refresh_button = W.Button(description="Refresh list", icon="refresh")
        self.open_button = W.Button(description="Open", icon="folder-open")
        self.errors = W.Output()

        for control in (self.picker, self.seeds, self.mode):
            control.observe(lambda _: self._show_plan(), names="value")
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.refresh_button.on_click(lambda _: self.list_saved())
        self.open_button.on_click(lambda _: self.open_result(self.saved.value) if self.saved.value else None)
        row = lambda *ws: W.Box(list(ws), layout=W.Layout(flex_flow="row wrap", align_items="center"))  # noqa: E731
        super().__init__([
            W.HTML("<b>Reproduce the papers</b>: pick a paper's table and press Start; our numbers fill in beside "
                   "the paper's, as the mean ± standard deviation over seeds with every seed's value. "
                   "A single run is not a result: use three seeds or more."),
            self.picker, row(self.seeds, self.mode), self.settings, row(self.start_button, self.stop_button),
            self.message, self.heading, self.table, self.caption, self.failures, self.runs_status, self.chart.widget,
            W.HTML("<b>Earlier results</b> under the runs root"), row(self.saved, self.open_button, self.refresh_button),
            self.errors])
        self.poller = Poller(self._tick, interval_ms, name="kdviz-reproduce", on_error=self._report)
        self.list_saved()
        if result is not None:
            self.open_result(result)
        else:
            self._show_plan()

    # ---- the chosen reproduction ------------------------------------------------------------------
    @property
    def quick(self) -> bool:
        return self.mode.value == QUICK

    @property
    def running(self) -> bool:
        return self.reproducing is not None and not self.reproducing.done

    def _show_plan(self) -> None:
        """The chosen reproduction's settings, and its empty table (what Start will fill in)."""
        reproduction = REPRODUCTIONS.get(self.picker.value)
        self.settings.value = markdown_html(settings_caption(reproduction.citation, reproduction.settings(self.quick),
                                                             self.quick))
        if self.running:
            return
        try:
            plan = reproduction.plan(int(self.seeds.value), self.quick)
        except ValueError as exc:
            self.message.value = message_html(str(exc))
            return
        self.shown = None
        self.heading.value = f"<h4>{html.escape(reproduction.name)}: {html.escape(reproduction.title)}</h4>"
        self.table.value = table_html(table_records(reproduction.measure([], plan)))
        self.caption.value = html.escape(f"Press Start to train {len(plan)} runs; the table and the chart fill in live.")
        self.failures.value = self.runs_status.value = ""

    # ---- start and stop ---------------------------------------------------------------------------
    def start(self) -> Reproducing | None:
        """Start the chosen reproduction (its runs train in the background); None, with a message
        that names the problem, when it cannot start (missing data, one already running)."""
        with self._lock:
            if self.running:
                self.message.value = message_html("A reproduction is running: stop it before starting another.")
                return None
            try:
                started = start_reproduction(self.picker.value, int(self.seeds.value), self.quick,
                                             runs_root=self.runs_root, data_root=self.data_root, manager=self.manager)
            except (ValueError, OSError) as exc:
                self.message.value = message_html(f"Could not start: {exc}")
                return None
            self.reproducing, self._views, self._drawn = started, {}, ()
            self.message.value = ""
            started.watch()  # runs waiting for a teacher start, and result.json is rewritten, even with no widget
            self._set_running(True)
            self.poller.start()
            return started

    def stop(self) -> ReproductionResult | None:
        """Stop every run (each keeps its checkpoint); the table so far is kept, marked "stopped"."""
        reproducing = self.reproducing
        if reproducing is None:
            return None
        result = reproducing.stop()
        self._tick()
        return result

    def _set_running(self, running: bool) -> None:
        self.start_button.disabled = running
        self.stop_button.disabled = not running
        self.start_button.description = "Running…" if running else "Start"

    # ---- live drawing -----------------------------------------------------------------------------
    def _tick(self) -> bool:
        with self._lock:  # the poller, Stop and wait() may draw at once
            return self._draw_live()

    def _draw_live(self) -> bool:
        reproducing = self.reproducing
        if reproducing is None:
            return False
        reproducing.poll()
        done = reproducing.done  # read before the runs, so their last records are in
        views = []
        for key, job in list(reproducing.jobs.items()):
            view = self._views.get(key)
            if view is None:
                view = self._views[key] = as_run_view(job, key)
            view.refresh()
            views.append(view)
        self._show_result(reproducing.result)
        self.runs_status.value = self._run_lines(reproducing, views)
        self._draw_chart(views)
        if done:
            self._set_running(False)
            self.list_saved()
        return not done

    def _run_lines(self, reproducing: Reproducing, views: list[RunView]) -> str:
        """One line per planned run: its status while started, why it did not start, or what it waits for."""
        by_key = {view.label: view for view in views}
        lines = []
        for key in reproducing.result.planned:
            view = by_key.get(key)
            if view is not None:
                lines.append(status_line(view, view.status(), view.evals))
            elif key in reproducing.result.runs:
                lines.append(f"<b>{html.escape(key)}</b> {html.escape(reproducing.result.runs[key]['message'])}")
            else:
                lines.append(f"<b>{html.escape(key)}</b> waits for the teacher or baseline it starts from")
        return "<br>".join(lines)

    def _show_result(self, result: ReproductionResult) -> None:
        self.shown = result
        self.heading.value = f"<h4>{html.escape(result.name)}: {html.escape(result.title)}</h4>"
        self.caption.value = markdown_html(result_caption(result))  # before the table: it says what the table is
        self.table.value = table_html(table_records(result.rows))
        self.failures.value = "".join(message_html(line) for line in failed_runs(result))

    def _draw_chart(self, views: list[RunView]) -> None:
        """Test accuracy of every run with an evaluation (redrawn only when an evaluation arrived)."""
        key = tuple((view.label, len(view.evals)) for view in views)
        if key == self._drawn:
            return
        self._drawn = key
        shown = [view for view in views if view.evals]
        if not shown:
            self.chart.show(placeholder("Test accuracy: waiting for the first evaluation"))
            return
        colours = distinct_colours([view.colour for view in shown])
        lines = [{"label": v.label, "colour": c, "records": v.evals} for v, c in zip(shown, colours)]
        self.chart.show(accuracy_comparison(lines, title=CHART_TITLE))

    # ---- saved results ----------------------------------------------------------------------------
    def list_saved(self) -> None:
        """List the results saved under the runs root, newest first (one that cannot be read says why)."""
        listed = saved_results(self.runs_root)
        self.saved.options = [(saved.label + (f": {saved.problem}" if saved.problem else ""), str(saved.path))
                              for saved in listed]

    def open_result(self, path: str | os.PathLike) -> ReproductionResult | None:
        """Show a saved result (its folder or result.json): its table and its runs' accuracy, read
        back from their folders; None, with a message naming the problem, when it cannot be read."""
        if self.running:
            self.message.value = message_html("A reproduction is running: stop it, or wait for it, to open another.")
            return None
        try:
            result = load_result(path)
        except (ValueError, KeyError, TypeError, OSError) as exc:
            self.message.value = message_html(f"Could not open {path}: {exc}")
            return None
        self.message.value = ""
        self._show_result(result)
        labels = run_labels(result)
        views = []
        for run, label in labels.items():
            try:
                view = as_run_view(run, label)
            except ValueError:
                continue  # a run folder moved or deleted: the table still holds its value
            view.refresh()
            views.append(view)
        missing = len(labels) - len(views)
        self.runs_status.value = (html.escape(f"{missing} of the result's run folders are missing: the chart "
                                              "leaves them out, the table keeps their values.") if missing else "")
        self._drawn = ()
        self._draw_chart(views)
        return result

    # ---- LiveMonitor --------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Poll the running reproduction and redraw now (the poller does this on its own)."""
        self._drawn = ()
        self._tick()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the running reproduction has ended (or ``timeout`` seconds), then draw it."""
        self.poller.join(timeout)
        if not self.poller.running:
            self.refresh()

    def _report(self, exc: BaseException) -> None:
        with self.errors:
            print(f"kdviz reproduction monitor: {type(exc).__name__}: {exc}")


__all__ = ["ReproductionMonitor", "markdown_html", "table_html"]
