"""The Generations page in a real browser: Debian's Chromium (Playwright) against `streamlit run app.py`
on digits. Choose 2 born-again generations with the slider and Start: generation 0's accuracy curve gains
points with no user action, generation 1 starts on its own once generation 0 has finished (its run folder
names generation 0's as its teacher) and its curve appears; Stop ends the chain. Skipped without
/usr/bin/chromium unless KDVIZ_REQUIRE_BROWSER=1.
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
# Points per run in the chart whose traces are the chain's runs (plotly 6 ships arrays as base64).
JS_RUNS = """() => {
  const TYPES = {f8: Float64Array, f4: Float32Array, i4: Int32Array, i2: Int16Array, i1: Int8Array};
  const dec = v => !v ? [] : v.bdata === undefined ? Array.from(v)
      : Array.from(new TYPES[v.dtype](Uint8Array.from(atob(v.bdata), c => c.charCodeAt(0)).buffer));
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    if (gd.data.some(t => t.name === 'generation 0 · seed 0'))
      return Object.fromEntries(gd.data.map(t => [t.name, dec(t.x).length]));
  }
  return null;
}"""


@pytest.fixture(scope="module")
def generations_server(request, runs_root):
    env = dict(os.environ, KDVIZ_RUNS=str(runs_root), KDVIZ_SESSION_GRACE_S="2", PYTHONUNBUFFERED="1",
               KDVIZ_TEACHER_EPOCHS="2", KDVIZ_REFRESH_S="0.7")
    ARTIFACTS.mkdir(exist_ok=True)
    proc, url = start_streamlit(REPO, env, ARTIFACTS / "streamlit-browser-generations.log", timeout=60)
    request.addfinalizer(lambda: stop_streamlit(proc))
    return url


def wait_for(predicate, timeout: float, what: str):
    return poll(predicate, timeout, what, pause=0.25)


def settle(page) -> None:
    for _ in range(2):
        time.sleep(0.4)
        wait_for(lambda: page.get_by_test_id("stApp").get_attribute("data-test-script-state") == "notRunning", 90,
                 "the page's script run")


def test_a_born_again_chain_charts_live_and_starts_each_generation_on_its_own(generations_server, browser, runs_root):
    page = browser.new_page(viewport={"width": 1400, "height": 1900})
    page.goto(f"{generations_server}/generations")
    main = page.get_by_test_id("stMainBlockContainer")
    start = main.get_by_role("button", name="Start the chain")
    wait_for(lambda: start.count() and start.is_enabled(), 120, "the Start button")
    settle(page)
    thumb = main.get_by_role("slider", name="Born-again generations after generation 0")
    thumb.focus()
    page.keyboard.press("ArrowLeft")  # 3 -> 2 generations
    wait_for(lambda: thumb.input_value() == "2", 30, "the generations slider at 2")
    settle(page)
    start.click()
    first = wait_for(lambda: page.evaluate(JS_RUNS), 90, "the accuracy chart of generation 0")
    seen = {}

    def next_generation_charted() -> bool:
        seen.update(page.evaluate(JS_RUNS) or {})
        return seen.get("generation 0 · seed 0", 0) > first["generation 0 · seed 0"] + 1 and "generation 1 · seed 0" in seen

    try:
        wait_for(next_generation_charted, 120, "generation 0's curve to grow and generation 1 to start, with no input")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; points first {first}, last {seen}; {main.inner_text()[-1500:]}") from None
    main.get_by_role("button", name="Stop", exact=True).click()

    def states() -> dict[str, str]:
        return {p.name.split("-", 2)[-1]: json.loads((p / "status.json").read_text())["state"]
                for p in runs_root.iterdir() if "-ban-" in p.name and (p / "status.json").is_file()}

    final = {"finished", "stopped", "failed"}
    try:  # Stop ends the chain: the running generation stops and the later ones never start
        wait_for(lambda: set(states().values()) <= final, 60, "every run of the chain to end")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {states()}") from None
    folders = {p.name.split("-", 2)[-1]: p for p in runs_root.iterdir() if "-ban-" in p.name}
    ended = states()
    assert ended["ban-g0-s0"] == "finished"
    assert Path(json.loads((folders["ban-g1-s0"] / "config.json").read_text())["teacher"]) == folders["ban-g0-s0"]
    time.sleep(2.0)  # no later generation starts after Stop
    assert states() == ended
    assert not page.get_by_test_id("stException").count()
    page.close()
