"""Exports for both UIs: "code for these settings" and a self-contained HTML session report.

* :func:`reproduce_code` turns run configs into a short Python script that trains the same runs with
  kdviz's engine (only the settings that differ from ``TrainConfig``'s defaults are spelled out, so
  the script reads like the page's controls).
* :func:`session_report` writes one HTML file with the page's settings, its charts (interactive,
  plotly.js embedded once, so the file opens offline) and the code above.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from ..engine import TrainConfig

_SKIPPED_FIELDS = {"runs_root", "name"}  # where and under what folder name: the reader's choice


def _identifier(label: str, taken: set[str]) -> str:
    name = re.sub(r"\W+", "_", label.strip().lower()).strip("_") or "run"
    if name[0].isdigit():
        name = f"run_{name}"
    base, n = name, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def changed_settings(config: TrainConfig) -> dict[str, Any]:
    """The fields of ``config`` that differ from ``TrainConfig()``'s defaults, in field order."""
    default = TrainConfig()
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(TrainConfig)
            if f.name not in _SKIPPED_FIELDS and getattr(config, f.name) != getattr(default, f.name)}


def _config_call(settings: Mapping[str, Any], teacher_var: str | None) -> str:
    parts = []
    for key, value in settings.items():
        text = teacher_var if key == "teacher" and teacher_var else repr(value)
        parts.append(f"{key}={text}")
    lines, line = [], "TrainConfig("
    for part in parts:
        if len(line) + len(part) > 96:
            lines.append(line.rstrip())
            line = "    "
        line += part + ", "
    return "\n".join(lines + [line.rstrip(", ") + ")"])


def reproduce_code(runs: Sequence[tuple[str, TrainConfig]], title: str = "these kdviz runs") -> str:
    """A Python script that trains ``runs`` (``(label, config)`` pairs) again with kdviz, one after
    the other, waiting for each and printing its final status. A run's teacher folder is kept as a
    path (the teacher run is reused, not retrained); run folders go to kdviz's runs root."""
    if not runs:
        raise ValueError("no runs to export: start a run first")
    taken: set[str] = set()
    out = [f'"""Train {title} again with kdviz (generated {_dt.date.today().isoformat()})."""',
           "from kdviz.engine import TrainConfig, start", ""]
    teachers: dict[str, str] = {}
    for label, config in runs:
        if config.teacher and config.teacher not in teachers:
            var = _identifier("teacher_run", taken)
            teachers[config.teacher] = var
            out.append(f"{var} = {config.teacher!r}  # the finished teacher run these students learn from")
    if teachers:
        out.append("")
    for label, config in runs:
        var = _identifier(label, taken)
        call = _config_call(changed_settings(config), teachers.get(config.teacher or ""))
        out += [f"# {label}", f"{var} = start({call})", f"print({label!r}, {var}.wait().to_dict())", ""]
    return "\n".join(out).rstrip() + "\n"


def _settings_table(settings: Mapping[str, Any]) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in settings.items())
    return f"<table class='settings'>{rows}</table>"


def session_report(title: str, settings: Mapping[str, Any], charts: Sequence[tuple[str, go.Figure]],
                   code: str | None = None, notes: Sequence[str] = ()) -> str:
    """A self-contained HTML page: ``title``, the ``settings`` as a table, each ``(caption, figure)``
    as an interactive chart (plotly.js embedded once) and ``code`` (e.g. :func:`reproduce_code`)."""
    if not charts and not settings:
        raise ValueError("nothing to report: no settings and no charts")
    parts = []
    for i, (caption, fig) in enumerate(charts):
        div = fig.to_html(full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False})
        parts.append(f"<figure>{div}<figcaption>{html.escape(caption)}</figcaption></figure>")
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    body = [f"<h1>{html.escape(title)}</h1>", f"<p class='meta'>kdviz session report, {stamp}</p>",
            *[f"<p>{html.escape(n)}</p>" for n in notes], "<h2>Settings</h2>", _settings_table(settings),
            "<h2>Charts</h2>" if parts else "", *parts]
    if code:
        body += ["<h2>Code for these settings</h2>", f"<pre><code>{html.escape(code)}</code></pre>"]
    style = ("body{font-family:Inter,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
             "table.settings{border-collapse:collapse}table.settings th,table.settings td{border:1px solid #ddd;"
             "padding:4px 10px;text-align:left}figcaption{color:#555;font-size:.9em;margin-bottom:2em}"
             "pre{background:#f6f6f6;padding:1em;overflow-x:auto}.meta{color:#777}")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{style}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")


__all__ = ["changed_settings", "reproduce_code", "session_report"]
