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

``--baseline`` also times an older commit (``--baseline-rev``, by default the last one before the
stops player; ``git archive``) on the same runs folder (the baseline model is trained once and
shared), in the same run, so the table has before and after;
``--no-cache`` this tree with the slider caches off (``KDVIZ_SLIDER_CACHE=0``); ``--tree NAME=PATH``
any other working tree (a copy with a proposed page change). Beside each slider's p50 the progress
lines on stderr give the p50 from the key press to the end of the script run as the browser sees it.
The baseline model is trained with ``KDVIZ_TEACHER_EPOCHS`` (1 here unless set): latency does not
depend on how well it is trained.

Paired: every tree runs its own server at once and, per slider, every tree's page is open in the
same browser; the moves are interleaved (one move per tree per round, the order reversed every
other round, ``bench/_paired.py``), so a burst of load from other work hits every tree alike. Each
other tree is compared with this tree as the median of the per-round latency ratios with its IQR,
wall (the browser's latency) and CPU (browser and servers, key press to redraw).

    python bench/compression_slider_latency.py [--datasets digits,mnist] [--sliders sparsity,bits,rank]
                                               [--moves 20] [--baseline] [--baseline-rev REV] [--no-cache]
                                               [--tree NAME=PATH] [--runs FOLDER] [--data ../shared/data/mnist]
                                               [--quick]
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

from _paired import Sample, children_cpu_s, describe, interleave, load_note  # noqa: E402
from soft_targets_latency import head_tree, percentile, start_app  # noqa: E402

from _support.browser import launch_chromium, stop_streamlit  # noqa: E402

TARGET_MS = 300.0
BASELINE_REV = "8dc09cb^"  # the last commit before the stops player: every slider move was a server rerun
DATASET_LABELS = {"digits": "Digits 8x8 (bundled, offline)", "mnist": "MNIST 28x28"}
# slider: (page link, slider's accessible name prefix, sentinel chart key, its range)
SLIDERS = {
    "sparsity": ("Pruning", "Sparsity: fraction of weights removed", "accuracy-vs-sparsity", (0.0, 0.99)),
    "bits": ("Quantization", "Bits per weight", "codebook-histogram", (1, 8)),
    "rank": ("Quantization", "Rank r of", "singular-spectrum", (1, 10_000)),
}
ERRORS: list[str] = []  # sliders whose moves stopped early, and why
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


class CompressionPlace:
    """One tree's slider on one page, instrumented: ``move()`` presses the next key of ``PATTERN``
    (turning round at the slider's ends), waits for the redraw (90 s at most) and returns its
    latency (the browser's clock) and the CPU time of every process this bench started (browser,
    servers) from the key press until the redraw was seen; ``moves`` keeps (latency ms, whether the
    position was seen before) per move."""

    def __init__(self, tree: str, page, doc, thumb, player: bool, chart_key: str, bounds: tuple[float, float]):
        self.tree, self.page, self.doc, self.thumb, self.player = tree, page, doc, thumb, player
        page.wait_for_function("document.querySelector('[data-testid=\"stApp\"]').getAttribute('data-test-script-state') "
                               "!== 'running'", timeout=300_000)
        self.sentinel = (f".kdviz-sp-chart[data-key='{chart_key}'] .gtitle" if player
                         else f".st-key-chart-{chart_key} .gtitle")
        doc.locator(self.sentinel).first.wait_for(timeout=300_000)
        time.sleep(1.0)
        doc.evaluate(INSTRUMENT, [chart_key, player])
        low, high = (float(v) for v in thumb.evaluate("e => [e.min, e.max]"))
        self.bounds = (low, high) if player else (max(bounds[0], low), min(bounds[1], high))  # a player counts stops
        self.seen, self.flip, self.moves = {self.read()}, False, []

    def read(self):
        # both kinds are an <input type=range>; a server page may redraw it for a while after a move
        return self.thumb.evaluate("e => e.value", timeout=120_000)

    def next_key(self, value: float) -> str:
        low, high = self.bounds
        if value >= high or value <= low:
            self.flip = value >= high  # at an end the pattern turns round
            return "ArrowLeft" if value >= high else "ArrowRight"
        key = PATTERN[len(self.moves) % len(PATTERN)]
        return ("ArrowLeft" if key == "ArrowRight" else "ArrowRight") if self.flip else key

    def move(self) -> Sample:
        value = float(self.read())
        key = self.next_key(value)
        self.page.bring_to_front()
        self.thumb.focus()
        before = self.doc.evaluate("window.__kd.lat.length")
        cpu = children_cpu_s()
        self.page.keyboard.press(key)
        try:
            self.doc.wait_for_function(f"window.__kd.lat.length > {before}", timeout=90_000)
        except Exception as exc:
            title = self.doc.locator(self.sentinel).first.text_content()
            raise RuntimeError(f"{self.tree}: no redraw after {key} at {value} (title now {title!r}, "
                               f"slider {self.read()})") from exc
        used = children_cpu_s() - cpu
        latency_ms = self.doc.evaluate("window.__kd.lat[window.__kd.lat.length - 1]")
        now = self.read()
        self.moves.append((latency_ms, now in self.seen))
        self.seen.add(now)
        time.sleep(0.3)  # a user's next step
        server = self.doc.evaluate("window.__kd.server.map(v => Number.isNaN(v) ? -1 : v)")
        if server and server[-1] >= 0:
            SERVER_MS.append(server[-1])
        return Sample(latency_ms / 1000, used)


def time_slider(browser, urls: dict[str, str], dataset: str, slider: str, moves: int,
                wait_s: float) -> dict[str, tuple[list[tuple[float, bool]], list[Sample]]]:
    """Every tree's page of ``slider`` open at once (opened one after another: the first may train the
    shared baseline), their moves interleaved (``bench/_paired.py``): per tree, its (latency,
    revisit) moves and its samples."""
    places, pages = {}, []
    try:
        for tree, url in urls.items():
            print(f"{tree}: {dataset} {slider}", file=sys.stderr, flush=True)
            page, doc, thumb, player = open_slider(browser, url, dataset, slider, wait_s)
            pages.append(page)
            places[tree] = CompressionPlace(tree, page, doc, thumb, player, SLIDERS[slider][2], SLIDERS[slider][3])
        samples = interleave_keeping_pairs({tree: place.move for tree, place in places.items()}, moves,
                                           f"{dataset} {slider}")
    finally:
        for page in pages:
            page.close()
    for tree, place in places.items():
        del place.moves[len(samples[tree]):]  # a move of a pair left incomplete by an error
    for tree, place in places.items():
        lat = sorted(ms for ms, _ in place.moves) or [float("nan")]
        kind = "a browser-side player" if place.player else "a server slider"
        print(f"  {tree}: p50 {statistics.median(lat):.0f} ms, max {lat[-1]:.0f} ms; {kind}", file=sys.stderr, flush=True)
    if SERVER_MS:
        print(f"  server sliders: key press to end of the script run p50 {statistics.median(SERVER_MS):.0f} ms",
              file=sys.stderr, flush=True)
        SERVER_MS.clear()
    names = list(places)
    for other in names[1:]:  # printed now: a later slider that breaks loses nothing measured here
        label = f"{slider} {dataset}: {other} / {names[0]}" + (" (x faster)" if other.startswith("last") else "")
        print(describe(label, samples[other], samples[names[0]], digits=2), flush=True)
    return {tree: (place.moves, samples[tree]) for tree, place in places.items()}


def interleave_keeping_pairs(sides: dict, moves: int, what: str) -> dict[str, list[Sample]]:
    """``interleave``; when a move fails (a page that stopped answering), the complete pairs so far,
    with the error in ``ERRORS``."""
    got: dict[str, list[Sample]] = {}
    try:
        return interleave(sides, moves, on_pair=lambda index, samples: got.update(samples))
    except Exception as exc:  # noqa: BLE001 - reported, the other sliders go on
        ERRORS.append(f"{what}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
        print(f"  {what}: stopped: {ERRORS[-1]}", file=sys.stderr, flush=True)
        complete = min((len(v) for v in got.values()), default=0)
        return {name: got.get(name, [])[:complete] for name in sides}


def table(rows: list[tuple[str, str, str, list[tuple[float, bool]]]]) -> str:
    """p50/p95 over all moves, and p50 over new and over revisited positions."""
    lines = [f"| {'slider':<9} | {'dataset':<7} | {'tree':<26} | {'p50 ms':>6} | {'p95 ms':>6} | {'moves':>5} | "
             f"{'p50 new':>7} | {'p50 revisit':>11} |", "|" + "|".join("-" * w for w in (11, 9, 28, 8, 8, 7, 9, 13)) + "|"]
    for slider, dataset, tree, moves in rows:
        lat = [ms for ms, _ in moves]
        new, old = [ms for ms, seen in moves if not seen], [ms for ms, seen in moves if seen]
        p50 = statistics.median(lat)
        verdict = "" if dataset != "mnist" or tree.startswith("last") else (" PASS" if p50 < TARGET_MS else " FAIL")
        med = lambda xs: f"{statistics.median(xs):.0f}" if xs else "-"  # noqa: E731
        lines.append(f"| {slider:<9} | {dataset:<7} | {tree:<26} | {p50:6.0f} | {percentile(lat, 0.95):6.0f} | "
                     f"{len(lat):5d} | {med(new):>7} | {med(old):>11} |{verdict}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="digits,mnist")
    parser.add_argument("--sliders", default="sparsity,bits,rank")
    parser.add_argument("--moves", type=int, default=20, help="moves per tree and slider, i.e. interleaved pairs")
    parser.add_argument("--baseline", action="store_true", help="also time the tree of --baseline-rev (git archive)")
    parser.add_argument("--baseline-rev", default=BASELINE_REV,
                        help=f"commit of the baseline (default {BASELINE_REV}: the server-rerun sliders)")
    parser.add_argument("--no-cache", action="store_true",
                        help="also time this tree with the slider caches off (KDVIZ_SLIDER_CACHE=0)")
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PATH",
                        help="also time another working tree (e.g. a copy with a proposed page change)")
    parser.add_argument("--runs", help="runs folder to use (and keep): a baseline trained there is reused")
    parser.add_argument("--data", default=os.environ.get("KDVIZ_DATA", str(HERE.parents[1] / "shared" / "data" / "mnist")))
    parser.add_argument("--wait", type=float, default=900, help="seconds to wait for the baseline model to train")
    parser.add_argument("--quick", action="store_true", help="smoke run: digits, the sparsity slider, 4 moves")
    args = parser.parse_args(argv)
    if args.quick:
        args.datasets, args.sliders, args.moves = "digits", "sparsity", min(args.moves, 4)
    return args


def start_trees(trees: list[tuple[str, Path, dict]], runs: Path, work: Path) -> tuple[dict[str, str], list]:
    """One server per tree (its own environment), all on the same runs folder: (urls by tree, processes)."""
    urls, procs = {}, []
    try:
        for i, (name, tree, env) in enumerate(trees):
            saved = {key: os.environ.get(key) for key in env}
            os.environ.update(env)
            try:
                proc, urls[name] = start_app(tree, runs, work / f"tree{i}.log")
                procs.append(proc)
            finally:
                for key, value in saved.items():
                    os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    except BaseException:
        for proc in procs:
            stop_streamlit(proc)
        raise
    return urls, procs


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    datasets, sliders = args.datasets.split(","), args.sliders.split(",")
    os.environ["KDVIZ_DATA"] = args.data
    os.environ.setdefault("KDVIZ_TEACHER_EPOCHS", "1")
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="kdviz-compression-latency-"))
    runs = Path(args.runs) if args.runs else work / "runs"
    trees = [("this tree", HERE.parent, {})]
    trees += [("this tree, caches off", HERE.parent, {"KDVIZ_SLIDER_CACHE": "0"})] if args.no_cache else []
    trees += [(name, Path(path), {}) for name, _, path in (t.partition("=") for t in args.tree)]
    trees += [(f"last {args.baseline_rev} (baseline)", head_tree(args.baseline_rev), {})] if args.baseline else []
    results = {}
    urls, procs = start_trees(trees, runs, work)
    try:
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            try:
                for d in datasets:
                    for s in sliders:
                        results[d, s] = time_slider(browser, urls, d, s, args.moves, args.wait)
            finally:
                browser.close()
    finally:
        for proc in procs:
            stop_streamlit(proc)
    report(results, datasets, sliders, [name for name, _, _ in trees])


def report(results, datasets: list[str], sliders: list[str], names: list[str]) -> None:
    rows = [(s, d, name, results[d, s][name][0]) for d in datasets for s in sliders for name in names
            if results[d, s][name][0]]
    print(f"compression sliders, key press to painted redraw, Chromium headless (target p50 < {TARGET_MS:.0f} ms on "
          "MNIST); the trees' moves interleaved in one browser, order reversed every other round")
    print(table(rows))
    if len(names) > 1:
        print("\nper-pair ratios other tree / this tree, median [IQR]; wall: the browser's latency, CPU: browser + "
              "servers from key press to redraw")
        for d in datasets:
            for s in sliders:
                mine = results[d, s][names[0]][1]
                for other in names[1:]:
                    label = f"{s} {d}: {other} / this tree" + (" (x faster)" if other.startswith("last") else "")
                    if mine:
                        print(describe(label, results[d, s][other][1], mine, digits=2))
    for error in ERRORS:
        print(f"stopped early: {error}")
    print(load_note())


if __name__ == "__main__":
    main()
