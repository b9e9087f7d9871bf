"""The light/dark look shared by the browser-side players (soft targets, slider stops).

A player draws plotly figures built on the server in the figures' own light colours. Streamlit
sends its theme with each render (``theme.backgroundColor``, ``theme.textColor``) and JupyterLab
exposes its colours as CSS variables; ``LOOK_JS`` turns either into a dark look (background, text,
a muted text and a grid colour mixed from the two) when the background is dark, and copies a figure
into that look: paper, plot, fonts, axes, gridlines, legend, annotations, and black "ink" traces in
the text colour. Data colours are kept. A light host gets the figures unchanged.
"""
from __future__ import annotations

# ``kdvizLook(root, prefix)``: ``set(colours)`` (``{background, text}`` as any CSS colours, or null)
# returns whether the look changed and paints ``root``'s CSS variables ``--<prefix>-text``,
# ``-muted``, ``-background``; ``themed(fig)`` a copy of ``fig`` ({data, layout}) in the look;
# ``mute(title)`` a title whose grey spans use the muted colour; ``dark`` whether the look is dark.
LOOK_JS = r"""
// Clears ``root`` for a player whose CSS classes start with ``prefix``, writes the styles every player
// shares (font, colours from the look's variables, the controls row, the slider in ``accent``) and
// returns ``make(tag, cls, parent)``, which appends a new element (to ``root`` by default).
function kdvizElements(root, prefix, accent) {
  const make = (tag, cls, parent) => { const e = document.createElement(tag); if (cls) e.className = cls; (parent || root).appendChild(e); return e; };
  root.innerHTML = "";
  make("style").textContent = `
    .${prefix} { font-family: "Source Sans Pro", "Source Sans 3", sans-serif; color: var(--${prefix}-text, #222);
      background: var(--${prefix}-background, transparent); }
    .${prefix}-controls { display: flex; align-items: center; gap: 12px; flex-wrap: wrap; margin: 4px 0 8px; }
    .${prefix}-controls label { font-size: 14px; }
    .${prefix}-slider { flex: 1 1 260px; min-width: 200px; accent-color: ${accent}; }`;
  root.classList.add(prefix);
  return make;
}

function kdvizLook(root, prefix) {
  const probe = document.createElement("span"); probe.hidden = true; root.appendChild(probe);
  function rgbOf(css) {  // [r, g, b] of any CSS colour (hex, rgb(a), a var(...) of the page)
    probe.style.color = ""; probe.style.color = css || "";
    const parts = (getComputedStyle(probe).color.match(/[\d.]+/g) || []).map(Number);
    return probe.style.color && parts.length >= 3 ? parts.slice(0, 3) : null;
  }
  const css = (rgb) => `rgb(${rgb.map(Math.round).join(", ")})`;
  const mix = (a, b, share) => a.map((v, k) => v * share + b[k] * (1 - share));
  const brightness = (rgb) => (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / 255;
  // A dark look ({background, text, muted, grid}: rgb() strings) from the host's colours, or null: the
  // figures' own light colours (a light host, or none given).
  function darkLook(colours) {
    const bg = colours && rgbOf(colours.background), fg = colours && rgbOf(colours.text);
    if (!bg || !fg || brightness(bg) >= 0.5) return null;
    return { background: css(bg), text: css(fg), muted: css(mix(fg, bg, 0.7)), grid: css(mix(fg, bg, 0.18)) };
  }
  const INK = new Set(["#000000", "#000", "black"]);  // outlines drawn in the text colour on dark
  let look = null;
  const mute = (title) => look ? String(title).replace(/color:\s*#(555555|555)\b/g, "color:" + look.muted) : title;
  function themed(fig) {  // a copy of fig in the current look (data colours kept)
    const data = JSON.parse(JSON.stringify(fig.data)), layout = JSON.parse(JSON.stringify(fig.layout));
    if (!look) return { data, layout };
    const text = look.text, withColour = (o) => Object.assign({}, o, { color: text });
    Object.assign(layout, { paper_bgcolor: look.background, plot_bgcolor: look.background, font: withColour(layout.font),
      modebar: { bgcolor: "rgba(0,0,0,0)", color: look.muted, activecolor: text } });
    layout.legend = Object.assign({}, layout.legend, { font: withColour((layout.legend || {}).font) });
    if (layout.title) layout.title = Object.assign({}, layout.title, { text: mute(layout.title.text), font: withColour(layout.title.font) });
    for (const key of Object.keys(layout).filter((k) => /^[xy]axis\d*$/.test(k)))
      layout[key] = Object.assign({}, layout[key], { color: text, tickfont: withColour(layout[key].tickfont),
        gridcolor: look.grid, linecolor: look.grid, zerolinecolor: look.grid });
    if (layout.coloraxis && layout.coloraxis.colorbar)
      layout.coloraxis.colorbar = Object.assign({}, layout.coloraxis.colorbar, { tickfont: withColour(layout.coloraxis.colorbar.tickfont) });
    for (const note of layout.annotations || []) note.font = withColour(note.font);
    for (const shape of layout.shapes || [])  // threshold and reference lines drawn in black
      if (shape.line && INK.has(String(shape.line.color).toLowerCase())) shape.line = Object.assign({}, shape.line, { color: text });
    for (const trace of data) {
      for (const part of [trace.line, trace.marker, trace.marker && trace.marker.line])
        if (part && typeof part.color === "string" && INK.has(part.color.toLowerCase())) part.color = text;
      if (trace.colorbar) trace.colorbar = Object.assign({}, trace.colorbar, { tickfont: withColour(trace.colorbar.tickfont),
        title: Object.assign({}, trace.colorbar.title, { font: withColour((trace.colorbar.title || {}).font) }) });
    }
    return { data, layout };
  }
  function paint() {
    root.style.setProperty(`--${prefix}-text`, look ? look.text : "");
    root.style.setProperty(`--${prefix}-muted`, look ? look.muted : "");
    root.style.setProperty(`--${prefix}-background`, look ? look.background : "");
    root.style.colorScheme = look ? "dark" : "";  // the slider's own parts too
    root.dataset.theme = look ? "dark" : "light";
  }
  paint();
  return {
    set(colours) {
      const next = darkLook(colours);
      if (JSON.stringify(next) === JSON.stringify(look)) return false;
      look = next; paint(); return true;
    },
    themed, mute,
    get dark() { return look !== null; },
  };
}
"""

__all__ = ["LOOK_JS"]
