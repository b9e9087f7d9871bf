"""The lab in a real browser: Debian's Chromium (Playwright) against `streamlit run app.py`.

Shoots the soft-targets page once its player has drawn (its slider is tested in
test_browser_soft_targets.py); starts training and watches the accuracy chart gain points with no
user action; stops it; closes a tab and checks that its jobs stop. Screenshots go to artifacts/ (never to
docs/images/: the README's pictures come from scripts/screenshots.py on the defaults, a test's short runs
would replace them). Skipped without /usr/bin/chromium unless KDVIZ_REQUIRE_BROWSER=1.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from _support.browser import playwright_or_skip
from _support.polling import wait_for as poll

pytestmark = pytest.mark.browser
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
sync_api = playwright_or_skip()


def new_page(browser, url: str, path: str = ""):
    page = browser.new_page(viewport={"width": 1400, "height": 1900})
    page.goto(f"{url}/{path}")
    return page


JS_PLOT = """([kind, text]) => {
  const TYPES = {f8: Float64Array, f4: Float32Array, i4: Int32Array, i2: Int16Array, i1: Int8Array,
                 u4: Uint32Array, u2: Uint16Array, u1: Uint8Array};
  const dec = v => {  // plotly 6+ ships numpy arrays as {dtype, bdata: base64}
    if (!v) return [];
    if (v.bdata !== undefined) {
      const bytes = Uint8Array.from(atob(v.bdata), c => c.charCodeAt(0));
      return Array.from(new TYPES[v.dtype](bytes.buffer));
    }
    return Array.from(v);
  };
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const title = (gd.layout.title && gd.layout.title.text) || '';
    const ytitle = (gd.layout.yaxis && gd.layout.yaxis.title && gd.layout.yaxis.title.text) || '';
    if ((kind === 'title' ? title : ytitle).includes(text))
      return {title, traces: gd.data.map(t => ({name: t.name, x: dec(t.x), y: dec(t.y)}))};
  }
  return null;
}"""


def plot(page, kind: str, text: str):
    """The first plotly chart whose title (or y-axis title) contains ``text``: its traces' data."""
    return page.evaluate(JS_PLOT, [kind, text])


def wait_for(predicate, timeout: float, what: str):
    """``predicate()``'s first truthy value, polled every 0.25 s (each poll is a round trip to the page)."""
    return poll(predicate, timeout, what, pause=0.25)


def main(page):
    """The page's main area (the header has its own "Stop" while a script runs)."""
    return page.get_by_test_id("stMainBlockContainer")


def set_epochs(page, n: int):
    """Move the Epochs slider to ``n`` with the arrow keys."""
    thumb = page.get_by_role("slider", name="Epochs")
    thumb.focus()
    now = int(thumb.input_value())
    for _ in range(abs(n - now)):
        page.keyboard.press("ArrowRight" if n > now else "ArrowLeft")
    wait_for(lambda: thumb.input_value() == str(n), 30, f"the Epochs slider at {n}")
    time.sleep(1.0)  # let the rerun that carries the new value finish
    return thumb


def ready_train_page(browser, url: str):
    """The train page and its Start button, once enabled (the teacher trains in the background first)."""
    page = new_page(browser, url, "train_student")
    start = page.get_by_role("button", name="Start KD and scratch students")
    wait_for(lambda: start.count() and start.is_enabled(), 180, "the teacher to be ready")
    return page, start


def shoot(page, name: str) -> None:
    height = page.evaluate("document.querySelector('[data-testid=\"stMainBlockContainer\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": min(2400, int(height) + 140)})
    page.mouse.move(5, 5)  # no tooltip over the picture
    time.sleep(1.5)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def player_drawn(page):
    """The soft-targets player's frame (a custom component) once its two charts are drawn, else None."""
    for frame in page.frames:
        if "soft_targets_player" in frame.url:
            try:
                drawn = "() => [...document.querySelectorAll('.kdviz-tp-bars, .kdviz-tp-curve')].filter(e => e.data).length"
                return frame if frame.evaluate(drawn) >= 2 else None
            except sync_api.Error:  # the frame is still loading
                return None
    page.wait_for_timeout(250)  # lets Playwright take in the page's new frames meanwhile
    return None


def test_soft_targets_page_screenshot(server, browser):
    """The README's picture of the soft-targets page; its behaviour is tests/browser/test_browser_soft_targets.py's."""
    page = new_page(browser, server)
    wait_for(lambda: player_drawn(page), 240, "the soft-targets player to draw")  # after the background teacher
    assert not page.get_by_text("Traceback").count()
    shoot(page, "soft_targets")
    page.close()


def test_training_charts_update_live_and_stop(server, browser, runs_root):
    page, start = ready_train_page(browser, server)
    set_epochs(page, 100)  # a long run (2,200 steps), so Stop has something to stop
    t0 = time.monotonic()
    start.click()
    first = wait_for(lambda: (plot(page, "ytitle", "test accuracy") or {}).get("traces"), 120, "the accuracy chart")
    n0 = len(first[0]["x"])
    wait_for(lambda: len(plot(page, "ytitle", "test accuracy")["traces"][0]["x"]) > n0 + 2, 120,
             "the accuracy chart to gain points with no user action")
    main(page).get_by_role("button", name="Stop", exact=True).click()
    print(f"stop clicked after {time.monotonic() - t0:.1f} s", flush=True)
    wait_for(lambda: main(page).get_by_text("stopped", exact=False).count() >= 2, 60, "both jobs to show 'stopped'")
    states = [json.loads((p / "status.json").read_text())["state"] for p in runs_root.iterdir() if "student" in p.name]
    assert sorted(states) == ["stopped", "stopped"]
    # a full default run for the README picture: the KD student ends above the scratch student
    set_epochs(page, 8)  # the default
    start.click()
    running = main(page).get_by_role("button", name="Running…")
    wait_for(lambda: running.count(), 60, "the default run to start")
    wait_for(lambda: not running.count() and main(page).get_by_text("finished", exact=False).count() >= 2, 240,
             "the default run to finish")
    print(f"default run done after {time.monotonic() - t0:.1f} s", flush=True)
    # the slower charts redraw at most every few seconds, so the finished run's curve follows shortly
    wait_for(lambda: len(plot(page, "ytitle", "test accuracy")["traces"][0]["y"]) >= 20, 30,
             "the accuracy chart to show the whole finished run")
    acc = plot(page, "ytitle", "test accuracy")["traces"]
    assert acc[0]["name"] == "KD student" and acc[1]["name"] == "scratch student" and len(acc[0]["y"]) >= 20
    shoot(page, "train_student")
    page.close()


def test_closing_the_tab_stops_its_jobs(server, browser, runs_root):
    page, start = ready_train_page(browser, server)
    before = {p.name for p in runs_root.iterdir()}
    set_epochs(page, 100)  # long enough that it cannot finish before the tab closes
    start.click()
    wait_for(lambda: plot(page, "ytitle", "test accuracy"), 120, "training to start")
    new = [runs_root / n for n in {p.name for p in runs_root.iterdir()} - before]
    assert len(new) == 2
    main(page).get_by_role("button", name="Pause", exact=True).click()  # so they cannot finish on their own

    def states():
        return sorted(json.loads((p / "status.json").read_text()).get("state") for p in new)

    wait_for(lambda: states() == ["paused", "paused"], 120, "both jobs to pause")
    page.close()  # no goodbye: the websocket just closes

    wait_for(lambda: states() == ["stopped", "stopped"], 90, "the jobs of the closed tab to stop")
    assert states() == ["stopped", "stopped"]
