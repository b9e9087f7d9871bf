"""Streamlit components whose charts redraw in the browser: a static folder per player.

A slider that reruns the server costs a round trip per move (0.24 to 1.5 s from drag to redraw on a
2-core machine, issue 14) though the server often computes in milliseconds. A player instead gets
every slider stop's drawing at once (a "spec") and redraws by itself; it then reports the stop, so
the page's state follows without redrawing anything. Each player is a static ``index.html`` beside
plotly's own ``plotly.min.js`` (no new dependency), written once per content under
``cache_root()/streamlit-components/<name>-<12 hex digits>``.

The page speaks Streamlit's iframe protocol directly (``streamlit:componentReady``,
``streamlit:render``, ``streamlit:setComponentValue``, ``streamlit:setFrameHeight``). It takes a new
stop from the server only when the server changed it or the content (``rev`` or the spec's ``id``
differ from what it drew), so a rerun that merely echoes a move never snaps the slider back. Each
render also carries Streamlit's theme (``theme.backgroundColor``, ``theme.textColor``): in a dark
theme the player draws in those colours (``kdviz.present.player_look``).
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

KEEP_NEWEST = 3  # folders kept whatever their age (the current one always is)
STALE_AFTER_S = 24 * 3600  # an older folder may still serve a server started before a change

# ``__PLAYER__``: the player's JavaScript; ``__FACTORY__``: its constructor ``(root, Plotly, onPick)``
# returning ``{show(spec, index, format) -> Promise, theme(colours, redraw) -> Promise}``;
# ``__VALUE__``: the name the reported value carries (``{<name>: value, index, id}``).
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
  if (!player) player = __FACTORY__(document.getElementById("root"), Plotly,
    (index, value) => send("streamlit:setComponentValue", { value: { __VALUE__: value, index, id: args.spec.id }, dataType: "json" }));
  const stamp = args.spec.id + "|" + args.rev + "|" + args.image_format;
  const themed = player.theme(colours(msg.theme), stamp === drawn);
  if (stamp !== drawn) { drawn = stamp; player.show(args.spec, args.index, args.image_format).then(resize); }
  else themed.then(resize);
});
new ResizeObserver(resize).observe(document.body);
send("streamlit:componentReady", { apiVersion: 1 });
</script></body></html>
"""


def page_html(player_js: str, factory: str, value_name: str) -> str:
    """The component's ``index.html`` for a player (see ``_INDEX_HTML``)."""
    return (_INDEX_HTML.replace("__PLAYER__", player_js).replace("__FACTORY__", factory)
            .replace("__VALUE__", value_name))


def folder_pattern(name: str) -> re.Pattern:
    """The folders of player ``name``: the name, a hyphen and 12 hex digits of its content's stamp."""
    return re.compile(re.escape(name) + r"-[0-9a-f]{12}")


def component_folder(name: str, html: str, root: Path | None = None) -> Path:
    """Player ``name``'s static folder (``html`` as ``index.html`` and a copy of plotly's
    ``plotly.min.js``), written once per content under ``(root or cache_root())/streamlit-components``;
    earlier versions there are removed once stale (``remove_stale_folders``)."""
    plotly_js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    stamp = hashlib.sha1(f"{html}{plotly.__version__}".encode()).hexdigest()[:12]
    folder = (root or cache_root()) / "streamlit-components" / f"{name}-{stamp}"
    if not (folder / "index.html").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(plotly_js, folder / "plotly.min.js")
        tmp = folder / "index.html.tmp"
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(folder / "index.html")  # written last: its presence means the folder is complete
    else:
        os.utime(folder)  # in use again: its age counts from now
    remove_stale_folders(folder, folder_pattern(name))
    return folder


def remove_stale_folders(current: Path, pattern: re.Pattern, keep: int = KEEP_NEWEST,
                         stale_after_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove earlier versions of the component beside ``current``; returns what was removed.

    Only real folders (no links) whose names match ``pattern`` are candidates, never ``current``; of
    those, the ``keep - 1`` most recently written or used are kept and, of the rest, only those
    untouched for ``stale_after_s`` seconds go (another process may still serve a newer one). A
    folder that cannot be removed (in use, no permission) is left as it is."""
    candidates = []
    for entry in current.parent.iterdir():
        if entry.name == current.name or not pattern.fullmatch(entry.name):
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


@functools.lru_cache(maxsize=8)
def declared(component_name: str, folder: str) -> Callable[..., Any]:
    """The Streamlit component served from ``folder`` (declared once per process and folder)."""
    import streamlit.components.v1 as components

    return components.declare_component(component_name, path=folder)


__all__ = ["page_html", "folder_pattern", "component_folder", "remove_stale_folders", "declared", "KEEP_NEWEST",
           "STALE_AFTER_S"]
