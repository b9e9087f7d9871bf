"""The "Lottery tickets & N:M" page in a real browser: Debian's Chromium (Playwright) against
`streamlit run app.py` on digits. Choose 2 rounds with the slider and Start: the mask-overlap chart gains
points with no user action while the rounds train, each round starting on its own once the round before it
has finished (its run folder names that round's as init_from). Skipped without /usr/bin/chromium unless
KDVIZ_REQUIRE_BROWSER=1.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from _support.browser import playwright_or_skip, start_streamlit, stop_streamlit
from _support.polling import wait_for as poll

pytestmark = pytest.mark.browser
sync_api = playwright_or_skip()
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
# Points per run in the mask-overlap chart (plotly 6 ships arrays as base64).
JS_OVERLAP = """() => {
  const TYPES = {f8: Float64Array, f4: Float32Array, i4: Int32Array, i2: Int16Array, i1: Int8Array};
  const dec = v => !v ? [] : v.bdata === undefined ? Array.from(v)
      : Array.from(new TYPES[v.dtype](Uint8Array.from(atob(v.bdata), c => c.charCodeAt(0)).buffer));
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    if ((gd.layout.title.text || '').includes('Mask overlap'))
      return Object.fromEntries(gd.data.map(t => [t.name, dec(t.x).length]));
  }
  return null;
}"""


@pytest.fixture(scope="module")
def lottery_server(request, runs_root):
    env = dict(os.environ, KDVIZ_RUNS=str(runs_root), KDVIZ_SESSION_GRACE_S="2", PYTHONUNBUFFERED="1",
               KDVIZ_REFRESH_S="0.5")
    ARTIFACTS.mkdir(exist_ok=True)
    proc, url = start_streamlit(REPO, env, ARTIFACTS / "streamlit-browser-lottery.log", timeout=60)
    request.addfinalizer(lambda: stop_streamlit(proc))
    return url


def wait_for(predicate, timeout: float, what: str):
    return poll(predicate, timeout, what, pause=0.2)


def settle(page) -> None:
    for _ in range(2):
        time.sleep(0.4)
        wait_for(lambda: page.get_by_test_id("stApp").get_attribute("data-test-script-state") == "notRunning", 90,
                 "the page's script run")


def test_the_ticket_search_charts_live_and_starts_each_round_on_its_own(lottery_server, browser, runs_root):
    page = browser.new_page(viewport={"width": 1400, "height": 1900})
    page.goto(f"{lottery_server}/lottery")
    main = page.get_by_test_id("stMainBlockContainer")
    start = main.get_by_role("button", name="Start: lottery tickets")
    wait_for(lambda: start.count() and start.is_enabled(), 120, "the Start button")
    settle(page)
    thumb = main.get_by_role("slider", name="Rounds of pruning")
    thumb.focus()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")  # 4 -> 2 rounds
    wait_for(lambda: thumb.input_value() == "2", 30, "the rounds slider at 2")
    settle(page)
    start.click()
    seen: list[dict] = []

    def grown() -> bool:
        points = page.evaluate(JS_OVERLAP) or {}
        if points and (not seen or points != seen[-1]):
            seen.append(points)
        return len(seen) >= 3 and "ticket 2" in seen[-1]

    try:
        wait_for(grown, 150, "the overlap chart to change on its own until round 2 is charted")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; charts seen {seen}; {main.inner_text()[-1500:]}") from None
    folders = {json.loads((p / "config.json").read_text())["name"].rsplit("-", 1)[-1]: p
               for p in runs_root.iterdir() if (p / "config.json").is_file() and "lottery-" in p.name}
    assert Path(json.loads((folders["ticket2"] / "config.json").read_text())["init_from"]) == folders["ticket1"]
    assert not page.get_by_test_id("stException").count()
    page.close()
