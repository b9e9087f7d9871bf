"""Drag-to-redraw latency of the compression sliders in Chromium (issue 14: p50 < 300 ms on MNIST).

Three sliders of the Streamlit app:

* **sparsity**: the Pruning page's "Prune with a slider" (sentinel: the accuracy-vs-sparsity chart);
* **bits**: the Quantization page's bits slider, k-means (sentinel: the codebook histogram);
* **rank**: the Quantization page's rank slider (sentinel: the singular-value spectrum).

A slider is either a browser-side player (``kdviz.app.stops_player``: every stop evaluated once on
the server, a move redrawn in the browser) or, in older trees, a Streamlit slider whose every move
reruns the page's fragment; the bench finds which one the page has. A key press on the slider starts
the clock (a capturing ``keydown`` listener in the document that holds it); it stops at the first
frame painted (``requestAnimationFrame``, then a zero timeout) once the sentinel chart's title has
changed and, for a server slider, Streamlit's app root says the script run is over
(``data-test-script-state``, which Streamlit's own end-to-end tests read). A player reports the
stop to the server afterwards (the exact box follows); that run is not on the path to the redraw.
Moves are arrow-key presses, one at a time, turning round at the slider's ends, so positions are
revisited as a user's drag revisits them.

``--baseline`` also times the last commit (``git archive HEAD``) on the same runs folder (the
baseline model is trained once and shared), in the same run, so the table has before and after;
``--no-cache`` this tree with the slider caches off (``KDVIZ_SLIDER_CACHE=0``); ``--tree NAME=PATH``
any other working tree (a copy with a proposed page change). Beside each slider's p50 the progress
lines on stderr give the p50 from the key press to the end of the script run as the browser sees it.
The baseline model is trained with ``KDVIZ_TEACHER_EPOCHS`` (1 here unless set): latency does not
depend on how well it is trained.

    python bench/compression_slider_latency.py [--datasets digits,mnist] [--sliders sparsity,bits,rank]
                                               [--moves 20] [--baseline] [--no-cache] [--tree NAME=PATH]
                                               [--runs FOLDER] [--data ../shared/data/mnist]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from soft_targets_latency import head_tree, percentile, start_app  # noqa: E402

from _support.browser import launch_chromium, stop_streamlit  # noqa: E402

TARGET_MS = 300.0
DATASET_LABELS = {"digits": "Digits 8x8 (bundled, offline)", "mnist": "MNIST 28x28"}
# slider: (page link, slider's accessible name prefix, sentinel chart key, its range)
SLIDERS = {
    "sparsity": ("Pruning", "Sparsity: fraction of weights removed", "accuracy-vs-sparsity", (0.0, 0.99)),
    "bits": ("Quantization", "Bits per weight", "codebook-histogram", (1, 8)),
    "rank": ("Quantization", "Rank r of", "singular-spectrum", (1, 10_000)),
}
SERVER_MS: list[float] = []  # key press to the end of the script run (the rest is the browser drawing)
PATTERN = ["ArrowRight"] * 5 + ["ArrowLeft"] * 2  # a drag that goes on and comes back a little
INSTRUMENT = """([chartKey, player]) => {
  const selector = player ? `.kdviz-sp-chart[data-key="${chartKey}"] .gtitle` : `.st-key-chart-${chartKey} .gtitle`;
  const title = () => ((document.querySelector(selector) || {}).textContent || '');
  const app = () => document.querySelector('[data-testid="stApp"]');
  const idle = () => player || app().getAttribute('data-test-script-state') !== 'running';
  const kd = window.__kd = { t0: null, start: null, lat: [], server: [], ran: player, done: null };
  document.addEventListener('keydown', () => { kd.t0 = performance.now(); kd.start = title(); kd.ran = player; kd.done = null; }, true);
  const check = () => {
    if (kd.t0 === null) return;
    if (!idle()) kd.ran = true;
    else if (kd.ran && kd.done === null) kd.done = performance.now();  // the script run is over
    if (title() === kd.start || !idle()) return;
    const t0 = kd.t0, done = kd.done; kd.t0 = null;
    requestAnimationFrame(() => setTimeout(() => { kd.server.push(done === null || player ? NaN : done - t0); kd.lat.push(performance.now() - t0); }, 0));
  };
  new MutationObserver(check).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
}"""


def choose_dataset(page, dataset: str) -> None:
    """Pick ``dataset`` in the sidebar's select box (digits is the default)."""
    if dataset == "digits":
        return
    box = page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first
    box.click()
    page.get_by_role("option", name=DATASET_LABELS[dataset], exact=True).click()


def find_slider(page, name: str):
    """(the document that holds slider ``name``, its input, whether it is a browser-side player), or
    None while neither kind is drawn."""
    for frame in page.frames:
        if "stops_player" in frame.url:
            found = frame.locator(f"input[aria-label^='{name}']")
            if found.count() and frame.locator(".kdviz-sp-chart .gtitle").count():
                return frame, found.first, True
    thumb = page.get_by_role("slider", name=name)
    return (page, thumb.first, False) if thumb.count() else None


def open_slider(browser, url: str, dataset: str, slider: str, wait_s: float):
    """A page on ``slider``'s page and dataset with the slider drawn (the baseline may train first):
    (page, the slider's document, its input, whether it is a player)."""
    link, name = SLIDERS[slider][:2]
    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    page.goto(url)
    nav = page.get_by_test_id("stSidebarNav")
    nav.wait_for(timeout=90_000)
    nav.get_by_role("link", name=link, exact=True).click()
    page.get_by_role("heading", name=link).first.wait_for(timeout=90_000)
    choose_dataset(page, dataset)
    deadline = time.monotonic() + wait_s
    while (found := find_slider(page, name)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {slider} slider on the {link} page after {wait_s:g} s")
        page.wait_for_timeout(250)  # Playwright learns of new frames while it waits
    return (page, *found)


def move_and_time(page, doc, thumb, player: bool, chart_key: str, bounds: tuple[float, float],
                  moves: int) -> list[tuple[float, bool]]:
    """``moves`` arrow-key presses on ``thumb`` in ``doc`` (``PATTERN``, turning round at ``bounds``);
    each waits for its redraw (90 s at most). Returns (latency ms, whether the position was seen
    before) per move."""
    page.wait_for_function("document.querySelector('[data-testid=\"stApp\"]').getAttribute('data-test-script-state') "
                           "!== 'running'", timeout=300_000)
    sentinel = f".kdviz-sp-chart[data-key='{chart_key}'] .gtitle" if player else f".st-key-chart-{chart_key} .gtitle"
    doc.locator(sentinel).first.wait_for(timeout=300_000)
    time.sleep(1.0)
    doc.evaluate(INSTRUMENT, [chart_key, player])
    read = lambda: thumb.evaluate("e => e.value")  # noqa: E731 (both kinds are an <input type=range>)
    low, high = (float(v) for v in thumb.evaluate("e => [e.min, e.max]"))
    if not player:
        bounds = (max(bounds[0], low), min(bounds[1], high))
    else:
        bounds = (low, high)  # a player's input counts stops
    seen, revisits, flip = {read()}, [], False
    for i in range(moves):
        value = float(read())
        if value >= bounds[1] or value <= bounds[0]:
            flip = value >= bounds[1]  # at an end the pattern turns round
        key = PATTERN[i % len(PATTERN)]
        if flip:
            key = "ArrowLeft" if key == "ArrowRight" else "ArrowRight"
        if value >= bounds[1] or value <= bounds[0]:
            key = "ArrowLeft" if value >= bounds[1] else "ArrowRight"
        thumb.focus()
        before = doc.evaluate("window.__kd.lat.length")
        page.keyboard.press(key)
        try:
            doc.wait_for_function(f"window.__kd.lat.length > {before}", timeout=90_000)
        except Exception as exc:
            title = doc.locator(sentinel).first.text_content()
            raise RuntimeError(f"no redraw after {key} at {value} (title now {title!r}, slider {read()})") from exc
        now = read()
        revisits.append(now in seen)
        seen.add(now)
        time.sleep(0.3)  # a user's next step
    server = doc.evaluate("window.__kd.server.map(v => Number.isNaN(v) ? -1 : v)")
    SERVER_MS.extend(v for v in server if v >= 0)
    return list(zip(doc.evaluate("window.__kd.lat"), revisits))


def time_tree(browser, tree: Path, runs: Path, log: Path, datasets: list[str], sliders: list[str], moves: int,
              wait_s: float) -> dict[tuple[str, str], list[float]]:
    proc, url = start_app(tree, runs, log)
    results = {}
    try:
        for dataset in datasets:
            for slider in sliders:
                print(f"{tree.name}: {dataset} {slider}", file=sys.stderr, flush=True)
                page, doc, thumb, player = open_slider(browser, url, dataset, slider, wait_s)
                try:
                    results[dataset, slider] = move_and_time(page, doc, thumb, player, SLIDERS[slider][2],
                                                             SLIDERS[slider][3], moves)
                    lat = sorted(ms for ms, _ in results[dataset, slider])
                    where = ("a browser-side player (no server run on the way)" if player else
                             f"a server slider; key press to end of the script run p50 "
                             f"{statistics.median(SERVER_MS) if SERVER_MS else float('nan'):.0f} ms")
                    print(f"  p50 {statistics.median(lat):.0f} ms, max {lat[-1]:.0f} ms; {where}", file=sys.stderr, flush=True)
                    SERVER_MS.clear()
                finally:
                    page.close()
    finally:
        stop_streamlit(proc)
    return results


def table(rows: list[tuple[str, str, str, list[tuple[float, bool]]]]) -> str:
    """p50/p95 over all moves, and p50 over new and over revisited positions."""
    lines = [f"| {'slider':<9} | {'dataset':<7} | {'tree':<22} | {'p50 ms':>6} | {'p95 ms':>6} | {'moves':>5} | "
             f"{'p50 new':>7} | {'p50 revisit':>11} |", "|" + "|".join("-" * w for w in (11, 9, 24, 8, 8, 7, 9, 13)) + "|"]
    for slider, dataset, tree, moves in rows:
        lat = [ms for ms, _ in moves]
        new, old = [ms for ms, seen in moves if not seen], [ms for ms, seen in moves if seen]
        p50 = statistics.median(lat)
        verdict = "" if dataset != "mnist" or tree.startswith("last") else (" PASS" if p50 < TARGET_MS else " FAIL")
        med = lambda xs: f"{statistics.median(xs):.0f}" if xs else "-"  # noqa: E731
        lines.append(f"| {slider:<9} | {dataset:<7} | {tree:<22} | {p50:6.0f} | {percentile(lat, 0.95):6.0f} | "
                     f"{len(lat):5d} | {med(new):>7} | {med(old):>11} |{verdict}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="digits,mnist")
    parser.add_argument("--sliders", default="sparsity,bits,rank")
    parser.add_argument("--moves", type=int, default=20)
    parser.add_argument("--baseline", action="store_true", help="also time the last commit (git archive HEAD)")
    parser.add_argument("--no-cache", action="store_true",
                        help="also time this tree with the slider caches off (KDVIZ_SLIDER_CACHE=0)")
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PATH",
                        help="also time another working tree (e.g. a copy with a proposed page change)")
    parser.add_argument("--runs", help="runs folder to use (and keep): a baseline trained there is reused")
    parser.add_argument("--data", default=os.environ.get("KDVIZ_DATA", str(HERE.parents[1] / "shared" / "data" / "mnist")))
    parser.add_argument("--wait", type=float, default=900, help="seconds to wait for the baseline model to train")
    args = parser.parse_args()
    datasets, sliders = args.datasets.split(","), args.sliders.split(",")
    os.environ["KDVIZ_DATA"] = args.data
    os.environ.setdefault("KDVIZ_TEACHER_EPOCHS", "1")
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="kdviz-compression-latency-"))
    runs = Path(args.runs) if args.runs else work / "runs"
    trees = [("this tree", HERE.parent, {})]
    trees += [("this tree, caches off", HERE.parent, {"KDVIZ_SLIDER_CACHE": "0"})] if args.no_cache else []
    trees += [(name, Path(path), {}) for name, _, path in (t.partition("=") for t in args.tree)]
    trees += [("last commit (baseline)", head_tree(), {})] if args.baseline else []
    results = {}
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            for i, (name, tree, env) in enumerate(trees):
                os.environ.update(env)
                try:
                    results[name] = time_tree(browser, tree, runs, work / f"tree{i}.log", datasets,
                                              sliders, args.moves, args.wait)
                finally:
                    for key in env:
                        os.environ.pop(key, None)
        finally:
            browser.close()
    rows = [(s, d, name, results[name][d, s]) for d in datasets for s in sliders for name, _, _ in trees]
    print(f"compression sliders, key press to painted redraw, Chromium headless (target p50 < {TARGET_MS:.0f} ms on MNIST)")
    print(table(rows))
    print(f"machine: {len(os.sched_getaffinity(0))} cores, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
