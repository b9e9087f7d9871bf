"""The Specialists page in a real browser: Debian's Chromium (Playwright) against `streamlit run` of a
one-page lab (the shared harness: navigation, sidebar, kept settings) on digits. Open the page with
pacing on in its link (``?spec_pace=True``) and Start: the generalist's accuracy curve gains points with no user action; Stop ends
the pipeline (the generalist stops, no specialist starts). Skipped without /usr/bin/chromium unless
KDVIZ_REQUIRE_BROWSER=1.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from _support.browser import one_page_server, playwright_or_skip
from _support.polling import wait_for as poll

pytestmark = pytest.mark.browser
sync_api = playwright_or_skip()
REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "kdviz" / "app" / "pages" / "specialists.py"
ARTIFACTS = REPO / "artifacts"
# Points per trace of the chart that draws the generalist (plotly 6 ships arrays as base64).
JS_CURVES = """() => {
  const TYPES = {f8: Float64Array, f4: Float32Array, i4: Int32Array, i2: Int16Array, i1: Int8Array};
  const dec = v => !v ? [] : v.bdata === undefined ? Array.from(v)
      : Array.from(new TYPES[v.dtype](Uint8Array.from(atob(v.bdata), c => c.charCodeAt(0)).buffer));
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    if (gd.data.some(t => t.name === 'generalist'))
      return Object.fromEntries(gd.data.map(t => [t.name, dec(t.x).length]));
  }
  return null;
}"""


@pytest.fixture(scope="module")
def specialists_server(request, runs_root, tmp_path_factory):
    return one_page_server(request, tmp_path_factory.mktemp("specialists-app"), PAGE, "Specialists", runs_root,
                           ARTIFACTS / "streamlit-browser-specialists.log", KDVIZ_REFRESH_S="0.7")


def wait_for(predicate, timeout: float, what: str):
    return poll(predicate, timeout, what, pause=0.25)


def settle(page) -> None:
    for _ in range(2):
        time.sleep(0.4)
        wait_for(lambda: page.get_by_test_id("stApp").get_attribute("data-test-script-state") == "notRunning", 90,
                 "the page's script run")


def states(runs_root: Path) -> dict[str, str]:
    return {p.name.split("-", 2)[-1]: json.loads((p / "status.json").read_text())["state"]
            for p in runs_root.iterdir() if (p / "status.json").is_file() and (p / "config.json").is_file()}


def test_the_generalists_curve_grows_live_and_stop_ends_the_pipeline(specialists_server, browser, runs_root):
    page = browser.new_page(viewport={"width": 1400, "height": 1900})
    page.goto(f"{specialists_server}/?spec_pace=True&spec_epochs=30")  # the only page is the root; runs paced to 20 s
    main = page.get_by_test_id("stMainBlockContainer")
    start = main.get_by_role("button", name="Start", exact=True)
    wait_for(lambda: start.count() and start.is_enabled(), 120, "the Start button")
    settle(page)
    start.click()
    first = wait_for(lambda: page.evaluate(JS_CURVES), 90, "the accuracy chart of the generalist")
    seen = {}

    def grew() -> bool:
        seen.update(page.evaluate(JS_CURVES) or {})
        return seen.get("generalist", 0) > first["generalist"] + 1

    try:
        wait_for(grew, 60, "the generalist's curve to grow with no input")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; points first {first}, last {seen}; {main.inner_text()[-1500:]}") from None
    main.get_by_role("button", name="Stop", exact=True).click()
    try:
        wait_for(lambda: states(runs_root).get("generalist") == "stopped", 60, "the generalist to stop")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {states(runs_root)}") from None
    generalist = next(p for p in runs_root.iterdir() if p.name.endswith("-generalist"))
    saved = json.loads((generalist / "config.json").read_text())
    assert saved["epochs"] == 30 and saved["pace_s"] == 20.0  # the link's settings reached the run
    time.sleep(2.0)  # no specialist starts after Stop
    assert not any(name.startswith("specialist") for name in states(runs_root))
    assert "will not start" in main.inner_text()
    assert not page.get_by_test_id("stException").count()
    page.close()
