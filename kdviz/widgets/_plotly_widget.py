"""``FigureWidget``: plotly's ``go.FigureWidget`` made to render reliably while data streams in.

Seen with plotly 7.1, anywidget 0.11 and JupyterLab 4.6 (the lab and monitor charts of issue 5),
three ways a live chart stayed empty or froze, each fixed here without changing what is drawn:

1. **Figure sent after the comm opened.** ``go.FigureWidget`` opens its comm before it knows its
   data, then sends traces and layout in follow-up messages, which anywidget holds until the
   front end module has loaded. plotly's view reads the figure once, when it first draws; a view
   drawn in between stayed empty. Fix: open the comm after the constructor has run, so the
   opening state holds the figure.
2. **plotly.js loaded once per chart.** plotly ships its 5 MB front end as the widget's ``_esm``
   text and anywidget imports it from a fresh ``blob:`` URL for every chart. anywidget gives a
   model 2 s to load its module and then drops every update to it: with several charts appearing
   at once on a slow machine, charts froze. Fix: a small module that imports plotly's bundle once
   per page (the module promise is kept on ``globalThis``) and hands plotly's widget to anywidget.
3. **Updates during the first draw.** plotly's view listens for updates before its first
   ``newPlot`` has finished; an update landing in between is lost or throws. Fix: hold the view's
   update handlers until plotly reports the first frame drawn (its ``plotlywidget-after-render``
   event); if any update came in meanwhile, draw again from the model, which plotly keeps up to
   date with every update.

On a very slow machine the first chart of a page can still miss anywidget's 2 s window while
plotly.js loads (fix 2 makes every later chart instant); such a chart shows its opening figure.
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

function loadPlotlyWidget() {
  if (!globalThis[KEY]) {
    const url = URL.createObjectURL(new Blob([SOURCE], { type: "text/javascript" }));
    globalThis[KEY] = import(url).finally(() => URL.revokeObjectURL(url));
  }
  return globalThis[KEY];
}

export default async function () {
  const plotlyWidget = (await loadPlotlyWidget()).default();  // { initialize, render } for one model
  let drawing = null;  // the gate of the view whose first frame is being set up right now

  function gated(model) {
    const on = (event, callback, ...rest) => {
      const gate = drawing;
      if (!gate) return model.on(event, callback, ...rest);  // a model-level listener: never held
      return model.on(event, function (...args) {
        if (gate.dead) return;
        if (!gate.ready) { gate.missed = true; return; }
        return callback.apply(this, args);
      }, ...rest);
    };
    return new Proxy(model, {
      get(target, prop) {
        if (prop === "on") return on;
        const value = Reflect.get(target, prop);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  }

  return {
    initialize(context) {
      return plotlyWidget.initialize({ ...context, model: gated(context.model) });
    },
    render(context) {
      let cleanup = null, gate = null, removed = false, attempts = 0;
      const draw = () => {
        gate = { ready: false, missed: false, dead: false };
        const mine = gate;
        const onDrawn = (event) => {
          if (!event.detail || event.detail.element !== context.el) return;
          document.removeEventListener("plotlywidget-after-render", onDrawn);
          mine.ready = true;
          if (mine.missed && !removed && attempts < 5) redraw();  // the model has every update
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
