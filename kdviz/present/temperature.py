"""The temperature range and the log-spaced grid of every temperature control, in one place.

Soft targets are ``q_i = exp(z_i / T) / sum_j exp(z_j / T)`` (Hinton, Vinyals, Dean 2015, eq. 1).
Both UIs let the reader move T over ``[T_MIN, T_MAX]`` on a log scale: the Streamlit page through a
slider over ``TEMPERATURES`` (nice values, an E10-like series per decade, so it reads 1, 2, 4, 5,
10, 20 exactly), the Jupyter explorer through a log slider over the same bounds. An exact T typed
by hand may lie outside the grid; ``nearest_temperature`` puts the slider next to it.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .player_look import LOOK_JS

T_MIN, T_MAX = 0.1, 100.0
# Mantissas of an E10-like series: one arrow-key press moves T by about a quarter of an octave.
MANTISSAS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)


def _check_bounds(t_min: float, t_max: float) -> None:
    for name, value in (("t_min", t_min), ("t_max", t_max)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a positive finite temperature, got {value!r}")
    if t_min >= t_max:
        raise ValueError(f"t_min must be below t_max, got t_min = {t_min:g} and t_max = {t_max:g}")


def temperature_grid(t_min: float = T_MIN, t_max: float = T_MAX) -> tuple[float, ...]:
    """The slider's temperatures: every ``m * 10**k`` (``m`` in ``MANTISSAS``) in [t_min, t_max],
    with both bounds included, ascending."""
    _check_bounds(t_min, t_max)
    low, high = math.floor(math.log10(t_min)), math.ceil(math.log10(t_max))
    values = {round(m * 10.0**k, 6) for k in range(low, high + 1) for m in MANTISSAS}
    return tuple(sorted({v for v in values if t_min <= v <= t_max} | {float(t_min), float(t_max)}))


TEMPERATURES: tuple[float, ...] = temperature_grid()


def nearest_temperature(T: float, options: Sequence[float] = TEMPERATURES) -> float:
    """The option closest to ``T`` on a log scale (a T beyond the grid gets the nearest end)."""
    if not isinstance(T, (int, float)) or isinstance(T, bool) or not math.isfinite(T) or T <= 0:
        raise ValueError(f"temperature must be a positive finite number, got {T!r}")
    opts = np.asarray(options, dtype=np.float64)
    if opts.size == 0 or np.any(opts <= 0):
        raise ValueError("the temperature options must be a non-empty list of positive numbers")
    return float(opts[np.argmin(np.abs(np.log(opts) - math.log(T)))])


def check_slider_temperature(T: float, t_min: float = T_MIN, t_max: float = T_MAX) -> float:
    """``T`` as a float if a slider over [t_min, t_max] can show it, else a ``ValueError`` naming the range."""
    _check_bounds(t_min, t_max)
    if isinstance(T, bool) or not isinstance(T, (int, float)) or not math.isfinite(T):
        raise ValueError(f"T must be a finite number, got {T!r}")
    if not t_min <= T <= t_max:
        raise ValueError(f"T must be in [{t_min:g}, {t_max:g}] for the slider, got {T:g}")
    return float(T)


def format_temperature(T: float) -> str:
    """``4.0`` -> ``"4"``, ``0.12`` -> ``"0.12"``: how every control and title writes a temperature."""
    return f"{T:g}"


__all__ = ["T_MIN", "T_MAX", "MANTISSAS", "TEMPERATURES", "temperature_grid", "nearest_temperature",
           "check_slider_temperature", "format_temperature", "frame_temperatures", "explorer_spec", "stop_index",
           "PLAYER_JS", "BARS_CAPTION", "CURVE_CAPTION"]


# ---- the soft-targets explorer, drawn in the browser -----------------------------------------
BARS_CAPTION = ("Filled bars: T = {T}; outlines: T = 1. Raise T and the wrong classes the teacher finds similar "
                "rise out of the floor.")
CURVE_CAPTION = ("The dot is the current T. Entropy climbs from nearly 0 (one-hot) to ln {k} (all classes equal); "
                 "the useful range sits on the slope.")
_BUILD_T = 2.0  # the base figures are drawn at a T != 1, so the bars carry their T = 1 outline trace


def frame_temperatures(typed_T: float | None = None, grid: Sequence[float] = TEMPERATURES) -> tuple[float, ...]:
    """The explorer's slider stops: ``grid`` plus an exactly typed T (which may lie beyond it), ascending."""
    values = {float(T) for T in grid}
    if typed_T is not None:
        values.add(float(check_slider_temperature(typed_T, min(typed_T, T_MIN), max(typed_T, T_MAX))))
    return tuple(sorted(values))


def explorer_spec(logits: Sequence[float], class_names: Sequence[str], typed_T: float | None = None) -> dict:
    """Everything a browser needs to redraw the soft-targets explorer at any slider stop by itself.

    ``bars`` and ``curve``: the plotly JSON of ``probability_bars`` and ``entropy_curve`` (drawn
    once); ``frames``: per stop of ``frame_temperatures(typed_T)``, what changes with T
    (``figures.soft_targets.soft_target_frames``, Hinton et al. 2015, eq. 1) plus the caption;
    ``labels``: each stop as the controls write it; ``id``: changes exactly when the content does,
    so a browser redraws the figures only for a new sample, teacher or typed T.
    """
    import hashlib
    import json

    import plotly.io as pio

    from ..figures.soft_targets import entropy_curve, probability_bars, soft_target_frames

    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    names = [str(name) for name in class_names]
    if z.size != len(names) or z.size < 2 or not np.all(np.isfinite(z)):
        raise ValueError(f"need one finite logit per class ({len(names)} classes), got {z.size} values")
    temps = frame_temperatures(typed_T)
    frames = soft_target_frames(z, temps, names)
    for frame in frames:
        frame["caption"] = BARS_CAPTION.format(T=format_temperature(frame["T"]))
    figures = [probability_bars(z, _BUILD_T, names), entropy_curve(z, _BUILD_T, T_MIN, T_MAX)]
    bars, curve = (json.loads(pio.to_json(fig, validate=False)) for fig in figures)
    digest = hashlib.sha1(z.tobytes() + json.dumps([names, temps]).encode()).hexdigest()[:16]
    return {"id": digest, "temperatures": list(temps), "labels": [format_temperature(T) for T in temps],
            "frames": frames, "bars": bars, "curve": curve, "curve_caption": CURVE_CAPTION.format(k=z.size)}


def stop_index(spec: dict, T: float) -> int:
    """The slider stop of ``spec`` nearest to ``T`` on a log scale (exact when T is a stop)."""
    return int(np.argmin(np.abs(np.log(np.asarray(spec["temperatures"])) - math.log(T))))


# The player both UIs embed (an iframe component in Streamlit, an anywidget in Jupyter): a range
# input over the spec's stops and the two plotly charts. A move redraws from the precomputed frame
# in the browser (Plotly.animate without redraw and a title relayout, a few ms), then reports the stop
# through ``onPick``.
PLAYER_JS = LOOK_JS + r"""
function kdvizTemperaturePlayer(root, Plotly, onPick) {
  const make = kdvizElements(root, "kdviz-tp", "#d55e00");
  make("style").textContent = `
    .kdviz-tp-readout { font-weight: 600; min-width: 64px; font-variant-numeric: tabular-nums; }
    .kdviz-tp-charts { display: flex; flex-wrap: wrap; gap: 16px; }
    .kdviz-tp-chart { flex: 1 1 380px; min-width: 320px; }
    .kdviz-tp-caption { font-size: 13px; color: var(--kdviz-tp-muted, #666); margin: 2px 8px 0; }`;
  const controls = make("div", "kdviz-tp-controls");
  const label = make("label", "", controls);
  label.textContent = "Temperature T (log scale)";
  const input = make("input", "kdviz-tp-slider", controls);
  input.type = "range"; input.min = 0; input.step = 1; input.id = "kdviz-tp-T";
  input.setAttribute("aria-label", "Temperature T"); label.htmlFor = input.id;
  const readout = make("output", "kdviz-tp-readout", controls);
  const charts = make("div", "kdviz-tp-charts");
  const barsBox = make("div", "kdviz-tp-chart", charts), curveBox = make("div", "kdviz-tp-chart", charts);
  const barsDiv = make("div", "kdviz-tp-bars", barsBox), barsCaption = make("div", "kdviz-tp-caption", barsBox);
  const curveDiv = make("div", "kdviz-tp-curve", curveBox), curveCaption = make("div", "kdviz-tp-caption", curveBox);
  const FAST = { transition: { duration: 0 }, frame: { duration: 0, redraw: false }, mode: "immediate" };
  let spec = null, index = -1, imageFormat = "png";
  const look = kdvizLook(root, "kdviz-tp"), mute = look.mute, themed = look.themed;
  function rename(gd, trace, name) {
    gd.data[trace].name = name;
    for (const item of gd.querySelectorAll(".legend .traces")) {
      const legendTrace = item.__data__ && item.__data__[0] && item.__data__[0].trace;
      if (legendTrace && legendTrace.index === trace) item.querySelector(".legendtext").textContent = name;
    }
  }
  function draw(i) {
    const f = spec.frames[i], T = spec.labels[i];
    index = i; input.value = i; readout.textContent = "T = " + T;
    input.setAttribute("aria-valuetext", "T = " + T);
    // animate without redraw moves only the changed points (a full restyle recalculates the figure)
    // Both bar traces go into the animation: animating the bars alone drops the T = 1 outlines' trace
    // from the drawing (plotly.js, overlay bars, redraw: false)
    const bars = barsDiv.data.length > 1 ? [{ y: f.bars.y }, { y: barsDiv.data[1].y }] : [{ y: f.bars.y }];
    Plotly.animate(barsDiv, { data: bars, traces: bars.map((_, k) => k) }, FAST);
    if (barsDiv.data.length > 1 && barsDiv.data[1].visible !== f.bars.reference_visible)
      Plotly.restyle(barsDiv, { visible: [f.bars.reference_visible] }, [1]);
    Plotly.relayout(barsDiv, { "title.text": mute(f.bars.title) });
    const last = curveDiv.data.length - 1;
    Plotly.animate(curveDiv, { data: [{ x: f.marker.x, y: f.marker.y }], traces: [last] }, FAST);
    // A restyle of a legend name recalculates the whole figure (about 20 ms): set the name in the
    // figure's data (used by any later redraw or export) and in the legend's text node instead.
    rename(barsDiv, 0, f.bars.name);
    rename(curveDiv, last, f.marker.name);
    barsCaption.textContent = f.caption;
    root.dataset.temperature = T;
  }
  input.addEventListener("input", () => draw(Number(input.value)));
  input.addEventListener("change", () => { if (onPick && spec) onPick(index, spec.temperatures[index]); });
  const config = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  return {
    show(next, i, format) {
      spec = next; input.max = spec.frames.length - 1; imageFormat = format || imageFormat;
      curveCaption.textContent = spec.curve_caption;
      const cfg = (stem) => Object.assign({}, config, { toImageButtonOptions: { format: imageFormat, filename: stem, scale: 2 } });
      const bars = themed(spec.bars), curve = themed(spec.curve);
      return Promise.all([
        Plotly.react(barsDiv, bars.data, bars.layout, cfg("soft-targets")),
        Plotly.react(curveDiv, curve.data, curve.layout, cfg("entropy-vs-temperature")),
      ]).then(() => draw(Math.max(0, Math.min(i, spec.frames.length - 1))));
    },
    // The host's theme ({background, text}: any CSS colours; null: light). A dark one redraws the
    // background, text, axes and gridlines in its colours; the bars keep their data colours.
    theme(colours, redraw = true) {
      if (!look.set(colours)) return Promise.resolve();
      return redraw && spec ? this.show(spec, index) : Promise.resolve();
    },
    select(i) { if (spec && i !== index) draw(i); },
    get index() { return index; },
  };
}
"""
