"""``FamilyMonitor``: "Which distillation?" live in a notebook: every run's test accuracy, the results
table and each family member's own panel.

The runs are the scratch student and the members of the distillation family
(``kdviz.present.family``) trained on the same teacher, student and batches (``family_configs``). A
``_live.Poller`` thread reads their stores and redraws at most every ``interval_ms`` through
``_live.LiveFigure`` (the same figure functions as the app's page), so the cell that shows the
monitor returns at once. The table and the caption of who leads come from
``kdviz.present.family_story``; each member's panel figures and captions from its ``panel(view)``.
The monitor lists whatever members the runs belong to and never names a method.
"""
from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

from ..figures.training import accuracy_comparison
from ..present import RunView, teacher_accuracy
from ..present.family import FamilyMember, family_members
from ..present.family_story import leader_caption, leader_title, rows_from_views, table_records
from ._live import LiveFigure
from ._monitor import RunsMonitor, waiting

CHART_WIDTH = 760
PANEL_WIDTH = 480


def member_of(view: RunView, members: list[FamilyMember]) -> FamilyMember | None:
    """The family member a run belongs to: by its label (a family experiment's job names are the
    members' labels), else by its method; None for the scratch student and other runs."""
    by_label = {m.spec.label: m for m in members}
    by_name = {m.name: m for m in members}
    return by_label.get(view.label) or by_name.get(view.method.name)


def results_html(view_rows: list[dict[str, str]]) -> str:
    """The results table (``family_story.table_records``) as an HTML table."""
    if not view_rows:
        return ""
    head = "".join(f"<th style='text-align:left;padding:2px 10px'>{html.escape(k)}</th>" for k in view_rows[0])
    body = "".join("<tr>" + "".join(f"<td style='padding:2px 10px'>{html.escape(v)}</td>" for v in row.values()) + "</tr>"
                   for row in view_rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class FamilyMonitor(RunsMonitor, W.VBox):
    """Live accuracy, results table and member panels of a "Which distillation?" experiment.

    ``experiment_or_runs``: an ``Experiment`` (as ``family_configs`` + ``Experiment.start`` build it),
    or a ``Job``, ``RunReader`` or run folder, or a list or ``{label: run}`` dict of them.
    ``interval_ms`` is the poll and redraw interval."""

    monitor_name = "family monitor"

    def __init__(self, experiment_or_runs: Any, interval_ms: float = 1000, autostart: bool = True) -> None:
        self._follow(experiment_or_runs)
        members = family_members()
        self.members = {v.label: member_of(v, members) for v in self.views}
        controls = self._run_controls()
        self.accuracy_chart = LiveFigure(waiting("Test accuracy: waiting for the first evaluation"), width=CHART_WIDTH)
        self.caption = W.HTML()
        self.table = W.HTML()
        self.panel_charts: dict[str, list[LiveFigure]] = {}  # per run label, created with its first figures
        self.panel_captions: dict[str, list[W.HTML]] = {}
        self._panel_boxes: dict[str, W.VBox] = {}
        self.panels = W.VBox()
        header = W.HTML("<b>Which distillation?</b> The same student, teacher and batches, one method per run, beside "
                        "a student trained from the labels alone. The caption says who leads now.")
        super().__init__([header, controls,
                          self.accuracy_chart.widget, self.caption, self.table, self.panels, self.errors])
        self._start_polling(interval_ms, autostart, "kdviz-family-monitor")

    def _tick(self) -> bool:
        done, changed = self._read_runs()
        if any(changed.values()) or done:
            self._draw(done)
        self._update_status()
        return not done

    def _draw(self, done: bool) -> None:
        runs = [{"label": v.label, "colour": v.colour, "records": v.evals} for v in self.views if v.evals]
        if self._teacher_acc is None:
            self._teacher_acc = teacher_accuracy(self.views)
        rows = rows_from_views(self.views)
        if runs:
            self.accuracy_chart.show(accuracy_comparison(runs, teacher_accuracy=self._teacher_acc, title=leader_title(rows)))
        self.caption.value = html.escape(leader_caption(rows, finished=done, teacher_acc=self._teacher_acc))
        self.table.value = results_html(table_records(rows))
        for view in self.views:
            member = self.members.get(view.label)
            if member is not None and member.panel is not None:
                try:  # one member's failing panel must not stop the others from drawing
                    self._draw_panel(view, list(member.panel(view)))
                except Exception as exc:  # noqa: BLE001  (shown under the monitor, once)
                    self._report(exc)

    def _draw_panel(self, view: RunView, figures: list) -> None:
        """Show a member's panel figures in place (new ones get their own live chart and caption)."""
        charts = self.panel_charts.setdefault(view.label, [])
        captions = self.panel_captions.setdefault(view.label, [])
        if len(figures) > len(charts):
            for panel in figures[len(charts):]:
                charts.append(LiveFigure(panel.figure, width=PANEL_WIDTH))
                captions.append(W.HTML())
            title = W.HTML(f"<b style='color:{view.colour}'>{html.escape(view.label)}</b>")
            cells = [W.VBox([c.widget, t]) for c, t in zip(charts, captions)]
            self._panel_boxes[view.label] = W.VBox([title, W.Box(cells, layout=W.Layout(flex_flow="row wrap"))])
            self.panels.children = [self._panel_boxes[v.label] for v in self.views if v.label in self._panel_boxes]
        for chart, caption, panel in zip(charts, captions, figures):
            chart.show(panel.figure)
            caption.value = html.escape(panel.caption)


__all__ = ["FamilyMonitor", "member_of", "results_html"]
