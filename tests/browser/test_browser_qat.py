"""The quantization-aware training page in a real browser: Debian's Chromium (Playwright) against
`streamlit run` of the page (the app's own harness: navigation, sidebar, kept settings) on digits.

Start an LSQ fine-tune at 2 bits of a 1-epoch baseline: with no further input the step-size chart gains
points and the weight grid moves while it trains, and the accuracy-against-bits chart gains the LSQ point
when it ends. Skipped without /usr/bin/chromium unless KDVIZ_REQUIRE_BROWSER=1."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from _support.browser import one_page_server, playwright_or_skip
from _support.polling import wait_for as poll

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # a baseline, then a paced 8 s run: ~30 s
sync_api = playwright_or_skip()
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
PAGE = REPO / "kdviz" / "app" / "pages" / "qat.py"
# Per chart (found by its x- or y-axis title), the traces' names and x values (plotly 6 ships arrays as base64).
JS_CHART = """(axis) => {
  const TYPES = {f8: Float64Array, f4: Float32Array, i4: Int32Array, i8: BigInt64Array, i2: Int16Array, i1: Int8Array};
  const dec = v => !v ? [] : v.bdata === undefined ? Array.from(v)
      : Array.from(new TYPES[v.dtype](Uint8Array.from(atob(v.bdata), c => c.charCodeAt(0)).buffer), Number);
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const t = a => (gd.layout[a] && gd.layout[a].title && gd.layout[a].title.text) || '';
    if (t('yaxis').includes(axis) || t('xaxis').includes(axis))
      return gd.data.map(tr => ({name: tr.name, x: dec(tr.x).filter(v => v !== null)}));
  }
  return null;
}"""


@pytest.fixture(scope="module")
def qat_server(request, tmp_path_factory, runs_root):
    return one_page_server(request, tmp_path_factory.mktemp("qat-app"), PAGE, "Quantization-aware training", runs_root,
                           ARTIFACTS / "streamlit-browser-qat.log", KDVIZ_QAT_PACE_S="8")


def wait_for(predicate, timeout: float, what: str):
    return poll(predicate, timeout, what, pause=0.2)


def main(page):
    return page.get_by_test_id("stMainBlockContainer")


def test_the_live_charts_change_without_input(qat_server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1900})
    page.goto(qat_server)  # the harness's only page
    start = main(page).get_by_role("button", name="Start fine-tuning")
    wait_for(lambda: start.count() and start.is_enabled(), 120, "the baseline to be ready")
    wait_for(lambda: page.evaluate(JS_CHART, "test accuracy"), 60, "the PTQ curve")
    time.sleep(0.8)
    start.click()
    first = wait_for(lambda: page.evaluate(JS_CHART, "step size"), 60, "the step-size chart")
    grid_first = wait_for(lambda: page.evaluate(JS_CHART, "weight value"), 60, "the weight-grid chart")
    points = {t["name"]: len(t["x"]) for t in first}
    grids_seen = {tuple(round(v, 6) for v in grid_first[1]["x"])}

    def moved() -> bool:  # no clicks: only the page's own timer redraws
        now = page.evaluate(JS_CHART, "step size") or []
        grid = page.evaluate(JS_CHART, "weight value")
        if grid and len(grid) > 1:
            grids_seen.add(tuple(round(v, 6) for v in grid[1]["x"]))
        return any(len(t["x"]) > points.get(t["name"], 0) + 1 for t in now) and len(grids_seen) >= 2

    wait_for(moved, 60, "the step sizes to gain points and the grid to move with no user action")
    wait_for(lambda: any(t["name"] == "LSQ" for t in page.evaluate(JS_CHART, "test accuracy") or []), 90,
             "the finished run's point on the accuracy-against-bits chart")
    assert not page.get_by_test_id("stException").count()
    page.close()
