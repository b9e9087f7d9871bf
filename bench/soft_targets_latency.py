"""Drag-to-redraw latency of the soft-targets temperature slider in Chromium (issue 14: p50 < 50 ms).

Measured in a real headless Chromium (Playwright, Debian's /usr/bin/chromium) from the key press on
the slider to the first frame painted after the probability chart's title changed (a
MutationObserver on the title, then ``requestAnimationFrame`` and a zero timeout), in three places:

* **app**: ``streamlit run app.py`` from this working tree, the soft-targets page (the slider and
  the charts are one browser-side component, ``kdviz.app.temperature``);
* **widget**: the Jupyter ``TemperatureExplorer``'s player (``kdviz.widgets.temperature``), its
  anywidget front end loaded in a plain page with a minimal stand-in for anywidget's model;
* **baseline** (``--baseline``): the same page of an older commit (``--baseline-rev``, by default the
  last one before the component, ``git archive``), where a slider move was a server rerun.

All places are open at once in one browser (each app on its own server) and their moves are
interleaved: one move on each place per round, the order reversed every other round, so a burst
of load from other work hits every place alike. Each place gets ``--moves`` arrow-key presses
(right, turning round every 12), one at a time. Reported: p50/p95 per place and, for each two
places, the median of the per-round ratios with its IQR, on the browser's latency (wall) and on
the CPU time of the browser and servers from key press to redraw (``bench/_paired.py``).

    python bench/soft_targets_latency.py [--moves 40] [--baseline] [--baseline-rev REV] [--no-app] [--no-widget]
                                         [--quick]
"""
from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from _paired import Sample, children_cpu_s, describe, interleave, load_note  # noqa: E402
from _support.browser import free_port, launch_chromium, start_streamlit, stop_streamlit  # noqa: E402

TARGET_MS = 50.0
BASELINE_REV = "665f960^"  # the last commit before the browser-side component: a move was a server rerun
PLAYER_TITLE = ".kdviz-tp-bars .gtitle"
# A key press starts the clock; the first painted frame (requestAnimationFrame, then a zero timeout)
# after the bars' title, the bars' shapes and the entropy marker have all changed stops it.
# ``player``: the explorer component/widget; else the charts drawn by the page itself.
INSTRUMENT = """(player) => {
  const chart = (text) => player ? document.querySelector(text === 'Soft' ? '.kdviz-tp-bars' : '.kdviz-tp-curve')
    : [...document.querySelectorAll('.js-plotly-plot')].find(gd => ((gd.querySelector('.gtitle') || {}).textContent || '').includes(text));
  const read = () => {
    const bars = chart('Soft'), curve = chart('Higher temperature');
    if (!bars || !curve) return null;
    const traces = curve.querySelectorAll('.scatterlayer .trace');
    const marker = traces.length ? traces[traces.length - 1].querySelector('path.point') : null;
    return [(bars.querySelector('.gtitle') || {}).textContent,
            [...bars.querySelectorAll('.trace.bars path')].map(p => p.getAttribute('d')).join(' '),
            marker ? marker.getAttribute('transform') : ''];
  };
  const kd = window.__kd = { t0: null, start: null, lat: [] };
  document.addEventListener('keydown', () => { kd.t0 = performance.now(); kd.start = read(); }, true);
  new MutationObserver(() => {
    if (kd.t0 === null) return;
    const now = read();
    if (!now || !kd.start || now.some((v, i) => v === kd.start[i])) return;
    const t0 = kd.t0; kd.t0 = null;
    requestAnimationFrame(() => setTimeout(() => kd.lat.push(performance.now() - t0), 0));
  }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
}"""
TITLE_HAS = "([sel, text]) => ((document.querySelector(sel) || {}).textContent || '').includes(text)"
WIDGET_PAGE = """<!doctype html><html><body style="width: 1000px"><div id="out"></div>
<script type="module">
import widget from "./esm.js";
const state = await (await fetch("./state.json")).json();
const handlers = {};
const model = {
  get: (key) => state[key],
  set: (key, value) => { state[key] = value; (handlers["change:" + key] || []).forEach((cb) => cb()); },
  save_changes: () => {},
  on: (event, cb) => { (handlers[event] = handlers[event] || []).push(cb); },
  off: (event, cb) => { handlers[event] = (handlers[event] || []).filter((h) => h !== cb); },
};
widget.render({ model, el: document.getElementById("out") });
</script></body></html>"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class SliderPlace:
    """One instrumented slider in an open page: ``move()`` presses an arrow key, waits for the redraw
    and returns its latency (the browser's clock, key press to painted frame) and the CPU time every
    process this bench started (browser, servers) used from the key press until the redraw was seen.
    Direction: right, turning round every 12 moves."""

    def __init__(self, name: str, page, frame, slider, kind: str, close=None):
        self.name, self.page, self.frame, self.slider, self.kind = name, page, frame, slider, kind
        self.moves, self.key, self.close = 0, "ArrowRight", close or (lambda: None)

    def move(self) -> Sample:
        if self.moves and self.moves % 12 == 0:
            self.key = "ArrowLeft" if self.key == "ArrowRight" else "ArrowRight"
        self.moves += 1
        self.page.bring_to_front()
        self.slider.focus()
        before = self.frame.evaluate("window.__kd.lat.length")
        cpu = children_cpu_s()
        self.page.keyboard.press(self.key)
        self.frame.wait_for_function(f"window.__kd.lat.length > {before}", timeout=60_000)
        used = children_cpu_s() - cpu
        latency_ms = self.frame.evaluate("window.__kd.lat[window.__kd.lat.length - 1]")
        time.sleep(0.25)  # a user's next step; lets a trailing server rerun finish
        return Sample(latency_ms / 1000, used)


def start_app(tree: Path, runs: Path, log: Path) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, KDVIZ_RUNS=str(runs), PYTHONPATH=str(tree), PYTHONUNBUFFERED="1",
               KDVIZ_CACHE=str(runs / "cache"))
    return start_streamlit(tree, env, log)


def open_app(browser, url: str, name: str) -> SliderPlace:
    """The app's soft-targets slider (whichever kind the page has), instrumented, in a new page."""
    page = browser.new_page(viewport={"width": 1400, "height": 1900})
    page.goto(url)
    deadline = time.monotonic() + 300  # the first visit trains the teacher
    while time.monotonic() < deadline:
        player = next((f for f in page.frames if "soft_targets_player" in f.url), None)
        if player is not None and player.locator(PLAYER_TITLE).count():
            player.wait_for_function(TITLE_HAS, arg=[PLAYER_TITLE, "T = 4"], timeout=60_000)
            player.evaluate(INSTRUMENT, True)
            return SliderPlace(name, page, player, player.locator("input[type=range]"), "component")
        if page.get_by_role("slider").count() and page.locator(".gtitle", has_text="Soft targets at T").count():
            time.sleep(1.0)
            page.evaluate(INSTRUMENT, False)
            return SliderPlace(name, page, page, page.get_by_role("slider").first, "server rerun")
        time.sleep(0.5)
    raise RuntimeError("the soft-targets explorer did not appear within 300 s")


def open_widget(browser) -> SliderPlace:
    """The Jupyter explorer's player (its anywidget module) in a plain page, on a small digits teacher;
    its ``close`` stops the page's little HTTP server."""
    import torch

    from kdviz import build_model, load_dataset
    from kdviz.present.temperature import explorer_spec, stop_index
    from kdviz.widgets.temperature import model_logits, player_esm

    torch.manual_seed(0)
    data = load_dataset("digits")
    model = build_model("mlp", input_shape=data.input_shape, num_classes=10, hidden=(64,))
    spec = explorer_spec(model_logits(model, data.test_images[:1])[0], data.class_names)
    folder = Path(tempfile.mkdtemp(prefix="kdviz-widget-bench-"))
    (folder / "esm.js").write_text(player_esm(), encoding="utf-8")
    (folder / "state.json").write_text(json.dumps({"spec": spec, "index": stop_index(spec, 4.0)}), encoding="utf-8")
    (folder / "index.html").write_text(WIDGET_PAGE, encoding="utf-8")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
    page.wait_for_function(TITLE_HAS, arg=[PLAYER_TITLE, "T = 4"], timeout=60_000)
    page.evaluate(INSTRUMENT, True)
    return SliderPlace("widget player, plain page", page, page, page.locator("input[type=range]"), "component",
                       close=server.shutdown)


def head_tree(rev: str = "HEAD") -> Path:
    """The tree of commit ``rev`` (default the last commit), unpacked in a temporary folder
    (``git archive``: reads, changes nothing)."""
    folder = Path(tempfile.mkdtemp(prefix="kdviz-head-"))
    archive = folder / "head.tar"
    subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), rev], cwd=ROOT, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "tree", filter="data")
    return folder / "tree"


def row(name: str, samples: list[Sample] | None, note: str = "") -> str:
    if not samples:
        return f"| {name:<40} | {'-':>8} | {'-':>8} | {'-':>5} | {note}"
    lat = [1000 * x.wall for x in samples]
    p50 = statistics.median(lat)
    verdict = "PASS" if p50 < TARGET_MS else "FAIL"
    return f"| {name:<40} | {p50:8.1f} | {percentile(lat, 0.95):8.1f} | {len(lat):5d} | {verdict} {note}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=40, help="moves per place, i.e. interleaved pairs (default 40)")
    parser.add_argument("--baseline", action="store_true", help="also time the page of --baseline-rev")
    parser.add_argument("--baseline-rev", default=BASELINE_REV,
                        help=f"commit of the baseline page (default {BASELINE_REV}: the server-rerun slider)")
    parser.add_argument("--no-app", action="store_true")
    parser.add_argument("--no-widget", action="store_true")
    parser.add_argument("--quick", action="store_true", help="smoke run: 6 moves, a 1-epoch teacher")
    args = parser.parse_args(argv)
    if args.quick:
        args.moves = min(args.moves, 6)
        os.environ.setdefault("KDVIZ_TEACHER_EPOCHS", "1")
    return args


def open_places(browser, args, work: Path, servers: list) -> list[SliderPlace]:
    """Every place to time, open at once in one browser (each app on its own server)."""
    places = []
    if not args.no_app:
        proc, url = start_app(ROOT, work / "runs", work / "app.log")
        servers.append(proc)
        places.append(open_app(browser, url, "app, this tree"))
    if not args.no_widget:
        places.append(open_widget(browser))
    if args.baseline:
        proc, url = start_app(head_tree(args.baseline_rev), work / "head-runs", work / "head.log")
        servers.append(proc)
        places.append(open_app(browser, url, f"app, {args.baseline_rev}"))
    for place in places:
        if place.name.startswith("app"):
            place.name += f" ({place.kind})"
    return places


def ratio_pairs(names: list[str], baseline_rev: str) -> list[tuple[str, str]]:
    """(top, bottom) for every two places; the baseline on top (a speed-up: how many times faster)."""
    out = []
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            out.append((second, first) if baseline_rev in second else (first, second))
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="kdviz-latency-"))
    servers: list = []
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        places: list[SliderPlace] = []
        try:
            places = open_places(browser, args, work, servers)
            samples = interleave({p.name: p.move for p in places}, args.moves)
        finally:
            for place in places:
                place.close()
            for proc in servers:
                stop_streamlit(proc)
            browser.close()
    print(f"soft-targets slider, key press to painted redraw, Chromium headless (target p50 < {TARGET_MS:.0f} ms); "
          f"the places' moves interleaved in one browser, order reversed every other round")
    print(f"| {'where':<40} | {'p50 ms':>8} | {'p95 ms':>8} | {'moves':>5} |")
    print("\n".join(row(name, xs) for name, xs in samples.items()))
    print("\nper-pair ratios, median [IQR]; wall: the browser's latency, CPU: browser + servers from key press to redraw")
    for top, bottom in ratio_pairs(list(samples), args.baseline_rev):
        label = f"{top} / {bottom}" + (" (x faster)" if args.baseline_rev in top else "")
        print(describe(label, samples[top], samples[bottom], digits=2))
    if not args.baseline:
        print("(run --baseline to time the server-rerun slider of the commit before the component, in the same browser)")
    print(load_note())


if __name__ == "__main__":
    main()
