"""Movement pruning on the Pruning page in a real browser: Debian's Chromium (Playwright) against
`streamlit run` of the page (the app's own harness: navigation, sidebar, kept settings) on digits.

Start movement beside magnitude pruning of a 1-epoch baseline (paced to watch): with no further input
the sparsity/accuracy chart gains points for both runs, and the |W|-against-score scatter appears and
changes. Skipped without /usr/bin/chromium unless KDVIZ_REQUIRE_BROWSER=1."""
from __future__ import annotations

from pathlib import Path

import pytest

from _support.browser import one_page_server, playwright_or_skip
from _support.polling import wait_for as poll

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # a baseline, then two runs paced over 8 s: ~30 s
sync_api = playwright_or_skip()
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
PAGE = REPO / "kdviz" / "app" / "pages" / "pruning.py"
# Per chart (found by an axis title), the traces' names and x values (plotly 6 ships arrays as base64).
JS_CHART = """(axis) => {
  const TYPES = {f8: Float64Array, f4: Float32Array, i4: Int32Array, i8: BigInt64Array, i2: Int16Array, i1: Int8Array};
  const dec = v => !v ? [] : v.bdata === undefined ? Array.from(v)
      : Array.from(new TYPES[v.dtype](Uint8Array.from(atob(v.bdata), c => c.charCodeAt(0)).buffer), Number);
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const t = a => (gd.layout[a] && gd.layout[a].title && gd.layout[a].title.text) || '';
    if (t('yaxis').includes(axis) || t('xaxis').includes(axis))
      return {title: (gd.layout.title && gd.layout.title.text) || '',
              traces: gd.data.map(tr => ({name: tr.name, x: dec(tr.x).filter(v => v !== null)}))};
  }
  return null;
}"""


@pytest.fixture(scope="module")
def pruning_server(request, tmp_path_factory, runs_root):
    return one_page_server(request, tmp_path_factory.mktemp("movement-app"), PAGE, "Pruning", runs_root,
                           ARTIFACTS / "streamlit-browser-movement.log", KDVIZ_MOVEMENT_PACE_S="8")


def wait_for(predicate, timeout: float, what: str):
    return poll(predicate, timeout, what, pause=0.2)


def test_movement_chart_changes_without_input(pruning_server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    page.goto(pruning_server)  # the harness runs this one page as the default page, at the root
    main = page.get_by_test_id("stMainBlockContainer")
    start = main.get_by_role("button", name="Start movement vs magnitude")
    wait_for(lambda: start.count() and start.is_enabled(), 120, "the baseline to be ready")
    start.click()
    first = wait_for(lambda: page.evaluate(JS_CHART, "training step"), 60, "the movement progress chart")
    points = sum(len(t["x"]) for t in first["traces"])
    scatters = set()

    def moved() -> bool:  # no clicks: only the page's own timer redraws
        now = page.evaluate(JS_CHART, "training step") or {"traces": []}
        scatter = page.evaluate(JS_CHART, "movement score")
        if scatter:
            scatters.add(scatter["title"])
        names = {t["name"] for t in now["traces"]}
        return sum(len(t["x"]) for t in now["traces"]) > points + 2 and len(names) == 2 and len(scatters) >= 2

    wait_for(moved, 90, "both runs' points to grow and the scatter to change with no user action")
    page.screenshot(path=str(ARTIFACTS / "movement-live.png"))
    assert not page.get_by_test_id("stException").count()
    page.close()
