"""The ProjectionNet page in a real browser: Debian's Chromium (Playwright) against `streamlit run` of the
page on digits (no teacher needed: every run owns its trainer).

Press Start once; with no further input, the probe digits' chart (the projection net's p(class) beside the
fixed bits) and the loss-parts chart change as the background runs train. Skipped without
/usr/bin/chromium unless KDVIZ_REQUIRE_BROWSER=1.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from _support.browser import one_page_server, playwright_or_skip
from _support.polling import wait_for as poll

pytestmark = pytest.mark.browser
sync_api = playwright_or_skip()
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
PAGE = REPO / "kdviz" / "app" / "pages" / "projection.py"
# The p(class) heatmap's values and the loss chart's number of points (plotly 6 ships arrays as base64).
JS_LIVE = """() => {
  const TYPES = {f8: Float64Array, f4: Float32Array, i4: Int32Array, i2: Int16Array, i1: Int8Array, u1: Uint8Array};
  const dec = v => !v ? [] : v.bdata === undefined ? [].concat(...v)
      : Array.from(new TYPES[v.dtype](Uint8Array.from(atob(v.bdata), c => c.charCodeAt(0)).buffer));
  const out = {probs: null, loss: 0};
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    for (const t of gd.data || []) {
      if (t.name === 'p(class)') out.probs = dec(t.z).map(v => v.toFixed(4)).join(',');
      if ((t.name || '').startsWith('λ1')) out.loss = dec(t.x).length;
    }
  }
  return out;
}"""


@pytest.fixture(scope="module")
def projection_server(request, tmp_path_factory, runs_root):
    """`streamlit run` of a one-page app (the page, the shared sidebar, as ``app.py`` runs it) on 127.0.0.1;
    four jobs at once (the page trains a projection net per bit budget)."""
    return one_page_server(request, tmp_path_factory.mktemp("projection-app"), PAGE, "ProjectionNet", runs_root,
                           ARTIFACTS / "streamlit-browser-projection.log", KDVIZ_MAX_JOBS="4")


def wait_for(predicate, timeout: float, what: str):
    return poll(predicate, timeout, what, pause=0.2)


def test_the_live_charts_change_without_input(projection_server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    page.goto(f"{projection_server}/?pn_epochs=40")  # long enough to be watched while it trains
    main = page.get_by_test_id("stMainBlockContainer")
    start = main.get_by_role("button", name="Start training")
    wait_for(lambda: start.count() and start.is_enabled(), 120, "the Start button")
    start.click()
    first = wait_for(lambda: (lambda s: s if s["probs"] else None)(page.evaluate(JS_LIVE)), 180,
                     "the probe digits' chart")
    later: dict = {}

    def moved() -> bool:
        later.update(page.evaluate(JS_LIVE))
        return bool(later["probs"]) and later["probs"] != first["probs"] and later["loss"] > first["loss"]

    try:
        wait_for(moved, 120, "p(class) and the loss parts to change with no user action")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; loss points first {first['loss']}, last {later.get('loss')}; "
                             f"{main.inner_text()[-1200:]}") from None
    stop = main.get_by_role("button", name="Stop", exact=True)
    if stop.is_enabled():  # the runs may have ended already (seconds on digits), or end right now
        try:
            stop.click(timeout=5000)
        except sync_api.TimeoutError:
            assert "finished" in main.inner_text(), "Stop could not be pressed and the runs have not finished"
    assert not page.get_by_test_id("stException").count()
    page.close()
