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
Each render also carries Streamlit's theme (``theme.backgroundColor``, ``theme.textColor``): in a
dark theme the player draws its background, text, axes and gridlines in those colours.
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import plotly

from ..paths import cache_root
from ..present.temperature import PLAYER_JS

COMPONENT_NAME = "kdviz_soft_targets_player"
# The component's folders, one per content: ``soft-targets-`` and 12 hex digits of its stamp. Only
# folders named so are ever removed, and only when stale (``remove_stale_folders``).
FOLDER_PATTERN = re.compile(r"soft-targets-[0-9a-f]{12}")
KEEP_NEWEST = 3  # folders kept whatever their age (the current one always is)
STALE_AFTER_S = 24 * 3600  # an older folder may still serve a server started before a change

_INDEX_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><script src="plotly.min.js"></script>
<style>html, body { margin: 0; padding: 0; background: transparent; }</style></head>
<body><div id="root"></div>
<script>__PLAYER__</script>
<script>
const send = (type, extra) => window.parent.postMessage(Object.assign({ isStreamlitMessage: true, type }, extra), "*");
const resize = () => send("streamlit:setFrameHeight", { height: document.documentElement.scrollHeight });
let player = null, drawn = null;
// Streamlit sends its theme with each render (backgroundColor, textColor, ...); the player follows a dark one
const colours = (theme) => theme ? { background: theme.backgroundColor, text: theme.textColor } : null;
window.addEventListener("message", (event) => {
  const msg = event.data;
  if (!msg || msg.type !== "streamlit:render") return;
  const args = msg.args;
  if (!player) player = kdvizTemperaturePlayer(document.getElementById("root"), Plotly,
    (index, T) => send("streamlit:setComponentValue", { value: { T, index, id: args.spec.id }, dataType: "json" }));
  const stamp = args.spec.id + "|" + args.rev + "|" + args.image_format;
  const themed = player.theme(colours(msg.theme), stamp === drawn);
  if (stamp !== drawn) { drawn = stamp; player.show(args.spec, args.index, args.image_format).then(resize); }
  else themed.then(resize);
});
new ResizeObserver(resize).observe(document.body);
send("streamlit:componentReady", { apiVersion: 1 });
</script></body></html>
"""


def component_folder(root: Path | None = None) -> Path:
    """The component's static folder (``index.html`` and a copy of plotly's ``plotly.min.js``),
    written once per content under ``cache_root()/streamlit-components``; earlier versions there
    are removed once stale (``remove_stale_folders``)."""
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
    else:
        os.utime(folder)  # in use again: its age counts from now
    remove_stale_folders(folder)
    return folder


def remove_stale_folders(current: Path, keep: int = KEEP_NEWEST, stale_after_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove earlier versions of the component beside ``current``; returns what was removed.

    Only real folders (no links) named like ours (``FOLDER_PATTERN``) are candidates, never
    ``current``; of those, the ``keep - 1`` most recently written or used are kept and, of the rest,
    only those untouched for ``stale_after_s`` seconds go (another process may still serve a newer
    one). A folder that cannot be removed (in use, no permission) is left as it is."""
    candidates = []
    for entry in current.parent.iterdir():
        if entry.name == current.name or not FOLDER_PATTERN.fullmatch(entry.name):
            continue
        try:
            if entry.is_symlink() or not entry.is_dir():
                continue
            candidates.append((entry.stat().st_mtime, entry))
        except OSError:
            continue  # removed meanwhile by another process
    candidates.sort(reverse=True)
    cutoff = time.time() - stale_after_s
    removed = []
    for mtime, entry in candidates[max(keep - 1, 0):]:
        if mtime < cutoff:
            try:
                shutil.rmtree(entry)
                removed.append(entry)
            except OSError:
                pass
    return removed


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


__all__ = ["soft_targets_player", "component_folder", "remove_stale_folders", "COMPONENT_NAME"]
