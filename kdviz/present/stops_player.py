"""A slider over precomputed stops, redrawn in the browser: the compression explorers' player.

The pruning and quantization sliders re-evaluate a trained model per position; rerunning the page
for each move cost 0.3 to 0.65 s from key press to redraw on MNIST on a 2-core machine (issue 14:
target under 0.3 s), most of it drawing four charts, metrics and a table again. Instead the server
evaluates every stop once (``stops_spec``: per stop the plotly JSON of each chart, the metrics,
an optional warning and a table) and ``STOPS_JS`` redraws a stop from that by itself
(``Plotly.react`` per chart: a diff, no server). The page learns the stop afterwards
(``onPick(index, value)``), only to keep its state and its downloads in step.

The spec is plain JSON: ``id`` (changes exactly when the content does), ``label`` (the slider's),
``labels`` and ``values`` per stop, ``slots`` (``key``, ``caption``, ``stem`` per chart),
``frames`` (per stop: ``charts``, ``metrics`` [{label, value, delta, tone}], ``note``, ``table``
{columns, rows}) and ``table_caption``.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import plotly.io as pio

from .player_look import LOOK_JS

TONES = ("good", "bad", "off")  # a metric's delta: green, red, grey


@dataclass(frozen=True)
class Metric:
    """One number shown above the charts: ``value`` and an optional ``delta`` line in ``tone``."""

    label: str
    value: str
    delta: str = ""
    tone: str = "off"
    help: str = ""

    def __post_init__(self) -> None:
        if self.tone not in TONES:
            raise ValueError(f"tone must be one of {TONES}, got {self.tone!r}")


@dataclass
class Stop:
    """One slider position: its readout ``label`` and ``value``, one figure per slot (None: the slot
    stays empty), the metrics, a warning ``note`` ("" for none) and an optional ``table``."""

    label: str
    value: float
    charts: Sequence[Any]
    metrics: Sequence[Metric] = ()
    note: str = ""
    table: pd.DataFrame | None = None
    caption: dict[str, str] = field(default_factory=dict)  # per slot key: a caption for this stop only


@dataclass(frozen=True)
class Slot:
    """A chart's place in the player: its ``key`` (``data-key`` in the page), caption and file stem."""

    key: str
    caption: str = ""


def _figure_json(fig: Any) -> Any:
    if fig is None or isinstance(fig, dict):
        return fig
    return json.loads(pio.to_json(fig, validate=False))


def _table_json(table: pd.DataFrame | None) -> dict | None:
    if table is None:
        return None
    rows = [[None if (isinstance(v, float) and not np.isfinite(v)) else (v.item() if hasattr(v, "item") else v)
             for v in row] for row in table.itertuples(index=False)]
    return {"columns": [str(c) for c in table.columns], "rows": rows}


def stops_spec(label: str, slots: Sequence[Slot], stops: Sequence[Stop], table_caption: str = "") -> dict:
    """The player's spec (see the module docstring) for ``stops`` in slider order.

    Every stop must give one chart per slot; stops need distinct values, ascending."""
    if not stops:
        raise ValueError("a player needs at least one stop")
    values = [float(s.value) for s in stops]
    if any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"stop values must be distinct and ascending, got {values}")
    for stop in stops:
        if len(stop.charts) != len(slots):
            raise ValueError(f"stop {stop.label!r} has {len(stop.charts)} charts for {len(slots)} slots")
    frames = [{"charts": [_figure_json(f) for f in stop.charts],
               "metrics": [vars(m) for m in stop.metrics] if stop.metrics else [],
               "note": stop.note, "table": _table_json(stop.table),
               "captions": [stop.caption.get(slot.key, slot.caption) for slot in slots]} for stop in stops]
    body = {"label": label, "labels": [s.label for s in stops], "values": values,
            "slots": [{"key": s.key, "stem": s.key} for s in slots], "frames": frames, "table_caption": table_caption}
    text = json.dumps(body, sort_keys=True, default=str)
    return {"id": hashlib.sha1(text.encode()).hexdigest()[:16], **json.loads(text)}


def nearest_stop(spec: dict, value: float) -> int:
    """The index of the stop of ``spec`` nearest to ``value`` (exact when ``value`` is a stop)."""
    return int(np.argmin(np.abs(np.asarray(spec["values"], dtype=float) - float(value))))


# ``kdvizStopsPlayer(root, Plotly, onPick)``: a range input over the spec's stops, the metrics, a
# warning line, the charts two by two and a table. ``show(spec, index, format)`` draws a spec (a
# Promise); a move redraws from the stop's frame in the browser, then reports ``onPick(index, value)``
# on the input's ``change``; ``theme(colours, redraw)`` follows a dark host.
STOPS_JS = LOOK_JS + r"""
function kdvizStopsPlayer(root, Plotly, onPick) {
  const make = kdvizElements(root, "kdviz-sp", "#0072b2");
  make("style").textContent = `
    .kdviz-sp-readout { font-weight: 600; min-width: 56px; font-variant-numeric: tabular-nums; }
    .kdviz-sp-metrics { display: flex; flex-wrap: wrap; gap: 12px 28px; margin: 2px 0 8px; }
    .kdviz-sp-metric { min-width: 150px; }
    .kdviz-sp-metric .label { font-size: 14px; color: var(--kdviz-sp-muted, #555); }
    .kdviz-sp-metric .value { font-size: 30px; line-height: 1.25; font-variant-numeric: tabular-nums; }
    .kdviz-sp-metric .delta { font-size: 14px; font-variant-numeric: tabular-nums; }
    .kdviz-sp-metric .good { color: #09ab3b; } .kdviz-sp-metric .bad { color: #ff2b2b; }
    .kdviz-sp-metric .off { color: var(--kdviz-sp-muted, #808495); }
    .kdviz-sp-note { background: rgba(255, 189, 69, 0.2); color: inherit; border-radius: 6px; padding: 10px 14px; margin: 4px 0 8px; font-size: 14px; }
    .kdviz-sp-charts { display: flex; flex-wrap: wrap; gap: 16px; }
    .kdviz-sp-chart { flex: 1 1 420px; min-width: 320px; }
    .kdviz-sp-caption { font-size: 13px; color: var(--kdviz-sp-muted, #666); margin: 2px 8px 8px; }
    .kdviz-sp-table { border-collapse: collapse; font-size: 13px; margin: 8px 0 4px; width: 100%; font-variant-numeric: tabular-nums; }
    .kdviz-sp-table th, .kdviz-sp-table td { border-bottom: 1px solid rgba(128, 128, 128, 0.25); padding: 4px 8px; text-align: right; }
    .kdviz-sp-table th:first-child, .kdviz-sp-table td:first-child { text-align: left; }
    .kdviz-sp-table th { font-weight: 600; color: var(--kdviz-sp-muted, #555); }`;
  const controls = make("div", "kdviz-sp-controls");
  const label = make("label", "", controls);
  const input = make("input", "kdviz-sp-slider", controls);
  input.type = "range"; input.min = 0; input.step = 1; input.id = "kdviz-sp-input"; label.htmlFor = input.id;
  const readout = make("output", "kdviz-sp-readout", controls);
  const metrics = make("div", "kdviz-sp-metrics"), note = make("div", "kdviz-sp-note"), charts = make("div", "kdviz-sp-charts");
  const table = make("table", "kdviz-sp-table"), tableCaption = make("div", "kdviz-sp-caption");
  note.setAttribute("role", "alert");
  let spec = null, index = -1, imageFormat = "png", boxes = [];
  const look = kdvizLook(root, "kdviz-sp");
  const config = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  const cfg = (stem) => Object.assign({}, config, { toImageButtonOptions: { format: imageFormat, filename: stem, scale: 2 } });
  const text = (parent, tag, cls, value) => { const e = make(tag, cls, parent); e.textContent = value; return e; };
  function drawMetrics(list) {
    metrics.innerHTML = "";
    for (const m of list) {
      const box = make("div", "kdviz-sp-metric", metrics);
      if (m.help) box.title = m.help;
      text(box, "div", "label", m.label); text(box, "div", "value", m.value);
      if (m.delta) text(box, "div", "delta " + m.tone, m.delta);
    }
  }
  function drawTable(t) {
    table.innerHTML = ""; table.hidden = !t;
    if (!t) return;
    const head = make("tr", "", make("thead", "", table)), body = make("tbody", "", table);
    for (const c of t.columns) text(head, "th", "", c);
    for (const row of t.rows) { const tr = make("tr", "", body); for (const v of row) text(tr, "td", "", v === null ? "" : typeof v === "number" ? v.toLocaleString("en-US", { maximumFractionDigits: 2 }) : v); }
  }
  function draw(i) {
    const f = spec.frames[i];
    index = i; input.value = i; readout.textContent = spec.labels[i];
    input.setAttribute("aria-valuetext", spec.labels[i]);
    root.dataset.value = spec.labels[i];
    drawMetrics(f.metrics); note.textContent = f.note; note.hidden = !f.note; drawTable(f.table);
    return Promise.all(boxes.map((box, k) => {
      box.caption.textContent = f.captions[k] || "";
      const fig = f.charts[k];
      box.root.hidden = !fig;
      if (!fig) return Promise.resolve();
      const themed = look.themed(fig);
      return Plotly.react(box.div, themed.data, themed.layout, cfg(spec.slots[k].stem));
    }));
  }
  input.addEventListener("input", () => draw(Number(input.value)));
  input.addEventListener("change", () => { if (onPick && spec) onPick(index, spec.values[index]); });
  return {
    show(next, i, format) {
      const layoutChanged = !spec || JSON.stringify(spec.slots) !== JSON.stringify(next.slots);
      spec = next; imageFormat = format || imageFormat;
      label.textContent = spec.label; input.setAttribute("aria-label", spec.label); input.max = spec.frames.length - 1;
      tableCaption.textContent = spec.table_caption || "";
      if (layoutChanged) {
        charts.innerHTML = "";
        boxes = spec.slots.map((slot) => {
          const box = make("div", "kdviz-sp-chart", charts); box.dataset.key = slot.key;
          return { root: box, div: make("div", "kdviz-sp-plot", box), caption: make("div", "kdviz-sp-caption", box) };
        });
      }
      return draw(Math.max(0, Math.min(i, spec.frames.length - 1)));
    },
    theme(colours, redraw = true) {
      if (!look.set(colours)) return Promise.resolve();
      return redraw && spec ? draw(index) : Promise.resolve();
    },
    select(i) { if (spec && i !== index) draw(i); },
    get index() { return index; },
  };
}
"""

__all__ = ["Metric", "Stop", "Slot", "stops_spec", "nearest_stop", "STOPS_JS", "TONES"]
