"""Replays in a real Chromium against `streamlit run app.py` (issue 14: "a play button over the mask
snapshots"): a finished prune-and-fine-tune run's mask chart has a play button, and pressing it
redraws the mask (its heatmap and title) with every message to the server held back, so the replay
is the browser's own. Skipped without /usr/bin/chromium unless KDVIZ_REQUIRE_BROWSER=1.
"""
from __future__ import annotations

import re

import pytest

from _support.browser import playwright_or_skip
from _support.polling import wait_for as poll

pytestmark = pytest.mark.browser
sync_api = playwright_or_skip()

# The mask chart of the live section: its title says "... kept at step N"; z read as plain numbers.
JS_MASK = """() => {
  const TYPES = {f8: Float64Array, f4: Float32Array, i4: Int32Array, i2: Int16Array, i1: Int8Array,
                 u4: Uint32Array, u2: Uint16Array, u1: Uint8Array};
  const dec = v => v && v.bdata !== undefined
    ? Array.from(new TYPES[v.dtype](Uint8Array.from(atob(v.bdata), c => c.charCodeAt(0)).buffer))
    : (v || []).flat();
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const index = plots.findIndex(gd => gd.layout && gd.layout.updatemenus && gd.layout.updatemenus.length
    && String((gd.layout.title && gd.layout.title.text) || '').includes('kept at step'));
  if (index < 0) return null;
  const gd = plots[index];
  return {index, title: gd.layout.title.text, z: dec(gd.data[0].z), frames: (gd._transitionData._frames || []).length,
          buttons: gd.layout.updatemenus[0].buttons.map(b => b.label)};
}"""


@pytest.fixture(scope="module", autouse=True)
def quick_baseline():
    """A short baseline (set before the module's server starts)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KDVIZ_TEACHER_EPOCHS", "2")
        yield


def step(mask: dict) -> int:
    """The training step in the mask chart's title ("fc1: about 19.9% of weights kept at step 44")."""
    return int(re.search(r"kept at step (\d+)", mask["title"]).group(1))


def wait_for(predicate, timeout: float, what: str):
    return poll(predicate, timeout, what, pause=0.25)


def test_play_redraws_the_finished_runs_mask_without_the_server(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    held = {"on": False, "queue": [], "server": None}

    def route(ws):
        upstream = held["server"] = ws.connect_to_server()
        ws.on_message(lambda message: held["queue"].append(message) if held["on"] else upstream.send(message))

    page.route_web_socket(re.compile(r".*/_stcore/stream"), route)
    page.goto(f"{server}/pruning?pr_live_epochs=2&pr_live_target=0.8")  # a short run, through the page's link
    start = page.get_by_role("button", name="Start pruning")
    wait_for(lambda: start.count() and start.is_enabled(), 300, "the baseline to be ready")
    start.click()
    mask = wait_for(lambda: page.evaluate(JS_MASK), 300, "the finished run's mask replay")
    assert mask["buttons"][0] == "▶ Play" and mask["frames"] >= 2
    assert step(mask) > 0, mask["title"]  # the last snapshot is shown first
    page.wait_for_timeout(1000)  # the page has settled: no rerun is under way
    held["on"] = True  # from here on nothing reaches the server
    chart = page.locator(".js-plotly-plot").nth(mask["index"])
    chart.locator(".updatemenu-button", has_text="Play").click()
    early = wait_for(lambda: (lambda m: m if m and step(m) < step(mask) else None)(page.evaluate(JS_MASK)),
                     10, "the mask to change under Play")
    assert early["z"] != mask["z"], "the title moved but the mask did not"
    assert not held["queue"], f"Play sent {len(held['queue'])} messages to the server: a rerun, not a replay"
    final = wait_for(lambda: (lambda m: m if m and step(m) == step(mask) else None)(page.evaluate(JS_MASK)),
                     60, "the replay to end on the last snapshot")
    assert final["z"] == mask["z"]
    assert not page.get_by_text("Traceback").count()
    held["on"] = False
    page.close()
