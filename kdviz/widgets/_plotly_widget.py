"""``FigureWidget``: plotly's ``go.FigureWidget`` made to render reliably while data streams in.

Seen with plotly 7.1, anywidget 0.11 and JupyterLab 4.6 (the lab and monitor charts of issue 5),
three ways a live chart stayed empty or froze, each fixed here without changing what is drawn:

1. **Figure sent after the comm opened.** ``go.FigureWidget`` opens its comm before it knows its
   data, then sends traces and layout in follow-up messages, which anywidget holds until the
   front end module has loaded. plotly's view reads the figure once, when it first draws; a view
   drawn in between stayed empty. Fix: open the comm after the constructor has run, so the
   opening state holds the figure.
2. **plotly.js loaded once per chart, within 2 s.** plotly ships its 5 MB front end as the
   widget's ``_esm`` text and anywidget imports it from a fresh ``blob:`` URL for every chart.
   anywidget gives a model 2 s to load and initialise and then drops every update to it: with
   several charts appearing at once on a slow machine, charts froze. Fix: a small module that
   imports plotly's bundle once per page (the module promise is kept on ``globalThis``), reports
   the model ready at once, holds the updates that arrive while plotly.js loads and replays them
   through plotly's own handlers, in order, once it has.
3. **Updates during the first draw.** plotly's view listens for updates before its first
   ``newPlot`` has finished; an update landing in between is lost or throws. Fix: hold the view's
   update handlers until plotly reports the first frame drawn (its ``plotlywidget-after-render``
   event); if any update came in meanwhile, draw again from the model, which plotly keeps up to
   date with every update.

The browser side is checked by ``tests/test_browser_jupyter.py``; these fixes can go once plotly's
widget handles the cases itself.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import plotly
import plotly.graph_objects as go

_SHIM = r"""
const KEY = Symbol.for(__KEY__);
const SOURCE = __SOURCE__;
const PY2JS = ["_py2js_addTraces", "_py2js_deleteTraces", "_py2js_moveTraces", "_py2js_restyle", "_py2js_relayout",
               "_py2js_update", "_py2js_animate", "_py2js_removeLayoutProps", "_py2js_removeTraceProps"];

function loadPlotlyWidget() {  // plotly's bundle, compiled and run once per page
  if (!globalThis[KEY]) {
    const url = URL.createObjectURL(new Blob([SOURCE], { type: "text/javascript" }));
    globalThis[KEY] = import(url).finally(() => URL.revokeObjectURL(url));
  }
  return globalThis[KEY];
}

export default function () {
  let plotlyWidget = null;  // plotly's { initialize, render } for this model, once loaded
  let ready = null;         // resolves when plotly's model side is set up
  let drawing = null;       // the gate of the view whose first frame is being set up right now
  let replaying = null;     // { key: value } served by get() while a held update is replayed
  const handlers = {};      // plotly's model-level listeners, by event

  function wrap(model) {
    const on = (event, callback, ...rest) => {
      const gate = drawing;
      if (!gate) {  // a model-level listener: never held; remembered for replays
        (handlers[event] = handlers[event] || []).push(callback);
        return model.on(event, callback, ...rest);
      }
      return model.on(event, function (...args) {
        if (gate.dead) return;
        if (!gate.ready) { gate.missed = true; return; }
        return callback.apply(this, args);
      }, ...rest);
    };
    const get = (key) => (replaying && key in replaying ? replaying[key] : model.get(key));
    return new Proxy(model, {
      get(target, prop) {
        if (prop === "on") return on;
        if (prop === "get") return get;
        const value = Reflect.get(target, prop);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  }

  return {
    initialize(context) {
      // Return at once (anywidget drops every update to a model not ready within 2 s) and hold
      // the updates that arrive while plotly.js loads; replay them, in order, once it has.
      const model = context.model, held = [];
      let live = false;
      for (const key of PY2JS) {
        model.on("change:" + key, () => {
          const value = model.get(key);
          if (!live && value !== null && value !== undefined) held.push([key, value]);
        });
      }
      ready = loadPlotlyWidget().then((module) => {
        plotlyWidget = module.default();
        plotlyWidget.initialize({ ...context, model: wrap(model) });
        live = true;
        for (const [key, value] of held.splice(0)) {
          replaying = { [key]: value };
          try { for (const callback of handlers["change:" + key] || []) callback(); } finally { replaying = null; }
        }
      });
    },
    async render(context) {
      await ready;
      let cleanup = null, gate = null, removed = false, attempts = 0;
      const draw = () => {  // hold the view's update handlers until plotly has drawn its first frame
        gate = { ready: false, missed: false, dead: false };
        const mine = gate;
        const onDrawn = (event) => {
          if (!event.detail || event.detail.element !== context.el) return;
          document.removeEventListener("plotlywidget-after-render", onDrawn);
          mine.ready = true;
          if (mine.missed && !removed && attempts < 5) redraw();  // the model holds every update
        };
        document.addEventListener("plotlywidget-after-render", onDrawn);
        attempts += 1;
        drawing = mine;
        try { cleanup = plotlyWidget.render(context); } finally { drawing = null; }
      };
      const redraw = () => {
        gate.dead = true;
        if (typeof cleanup === "function") cleanup();
        draw();
      };
      draw();
      return () => {
        removed = true;
        gate.dead = true;
        if (typeof cleanup === "function") cleanup();
      };
    },
  };
}
"""


def shared_plotly_esm() -> str:
    """The ES module of :class:`FigureWidget`: plotly's bundle as a string, loaded once per page."""
    bundle = (Path(plotly.__file__).parent / "package_data" / "widgetbundle.js").read_text(encoding="utf-8")
    key = json.dumps(f"kdviz:plotly-widget:{plotly.__version__}")
    return _SHIM.replace("__KEY__", key).replace("__SOURCE__", json.dumps(bundle))


class FigureWidget(go.FigureWidget):
    """``go.FigureWidget`` with the three fixes of this module; use it exactly like plotly's.

    Importing this module imports plotly's widget class, whose first import pulls in nbformat and
    jsonschema (seconds on a slow machine): that belongs in the import cell, not in a cell that
    draws while jobs train.
    """

    _esm = shared_plotly_esm()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._kdviz_defer_open = True
        try:
            super().__init__(*args, **kwargs)
        finally:
            self._kdviz_defer_open = False
        self.open()

    def open(self) -> None:
        if not getattr(self, "_kdviz_defer_open", False):
            super().open()


__all__ = ["FigureWidget", "shared_plotly_esm"]
