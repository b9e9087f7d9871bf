"""The soft-targets explorer as a Streamlit component: the temperature slider redraws in the browser.

A slider move used to be a server round trip (0.24 to 0.70 s from drag to redraw, issue 14) though
the server computed in 8 ms. Now ``kdviz.present.temperature.explorer_spec`` precomputes, per
slider stop, what changes with T (softmax(z / T), Hinton, Vinyals, Dean 2015, eq. 1) and the page
hands it to ``PLAYER_JS`` in a small component (a static ``index.html`` beside plotly's own
``plotly.min.js``, no new dependency). A move redraws the probability bars, their title and caption
and the entropy curve's marker in the browser; the component then reports the stop
(``{"T": ..., "index": ...}``), so the page's state follows without redrawing anything.

The component speaks Streamlit's iframe protocol directly (``streamlit:componentReady``,
``streamlit:render``, ``streamlit:setComponentValue``, ``streamlit:setFrameHeight``). It takes a new
stop from the server only when the server changed T or the content (``rev`` or the spec's ``id``
differ from what it drew), so a rerun that merely echoes a move never snaps the slider back.
"""
from __future__ import annotations

import functools
import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import plotly

from ..paths import cache_root
from ..present.temperature import PLAYER_JS

COMPONENT_NAME = "kdviz_soft_targets_player"

_INDEX_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><script src="plotly.min.js"></script>
<style>html, body { margin: 0; padding: 0; background: transparent; }</style></head>
<body><div id="root"></div>
<script>__PLAYER__</script>
<script>
const send = (type, extra) => window.parent.postMessage(Object.assign({ isStreamlitMessage: true, type }, extra), "*");
const resize = () => send("streamlit:setFrameHeight", { height: document.documentElement.scrollHeight });
let player = null, drawn = null;
window.addEventListener("message", (event) => {
  const msg = event.data;
  if (!msg || msg.type !== "streamlit:render") return;
  const args = msg.args;
  if (!player) player = kdvizTemperaturePlayer(document.getElementById("root"), Plotly,
    (index, T) => send("streamlit:setComponentValue", { value: { T, index, id: args.spec.id }, dataType: "json" }));
  const stamp = args.spec.id + "|" + args.rev + "|" + args.image_format;
  if (stamp !== drawn) { drawn = stamp; player.show(args.spec, args.index, args.image_format).then(resize); }
});
new ResizeObserver(resize).observe(document.body);
send("streamlit:componentReady", { apiVersion: 1 });
</script></body></html>
"""


def component_folder(root: Path | None = None) -> Path:
    """The component's static folder (``index.html`` and a copy of plotly's ``plotly.min.js``),
    written once per content under ``cache_root()/streamlit-components``."""
    html = _INDEX_HTML.replace("__PLAYER__", PLAYER_JS)
    plotly_js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    stamp = hashlib.sha1(f"{html}{plotly.__version__}".encode()).hexdigest()[:12]
    folder = (root or cache_root()) / "streamlit-components" / f"soft-targets-{stamp}"
    if not (folder / "index.html").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(plotly_js, folder / "plotly.min.js")
        tmp = folder / "index.html.tmp"
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(folder / "index.html")  # written last: its presence means the folder is complete
    return folder


@functools.lru_cache(maxsize=1)
def _component() -> Callable[..., Any]:
    import streamlit.components.v1 as components

    return components.declare_component(COMPONENT_NAME, path=str(component_folder()))


def soft_targets_player(spec: dict, index: int, rev: int, key: str, on_change: Callable[[], None],
                        image_format: str = "png") -> Any:
    """Draw the explorer for ``spec`` (``present.temperature.explorer_spec``) at stop ``index``.

    ``rev``: bump it whenever the server sets T itself (typed T, restored state), so the browser
    moves the slider; ``on_change`` runs when the user moves it (the value is in
    ``st.session_state[key]``: ``{"T", "index", "id"}``). Returns that value, or None before a move.
    """
    return _component()(spec=spec, index=int(index), rev=int(rev), image_format=image_format, key=key,
                        on_change=on_change, default=None)


__all__ = ["soft_targets_player", "component_folder", "COMPONENT_NAME"]
