"""The "Which distillation?" page in a real browser: Debian's Chromium (Playwright) against
`streamlit run app.py` on digits (a 2-epoch teacher).

Move the Epochs slider, Start every registered method (the default choice) and the scratch student:
each one's accuracy curve gains points with no user action. Stop, drop the last method (its chip's x
button), go to another page through the sidebar and back: the choice, the slider and every run's chart
are still there, and the runs stopped. Skipped without /usr/bin/chromium unless KDVIZ_REQUIRE_BROWSER=1.
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from _support.browser import playwright_or_skip, start_streamlit, stop_streamlit
from _support.polling import wait_for as poll

pytestmark = pytest.mark.browser
sync_api = playwright_or_skip()
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
TITLE = "Which distillation?"
START = "Start the chosen methods and scratch"
EPOCHS = re.compile("^Epochs")  # not a member's knob ("warm-up epochs")
# The traces of the chart whose y-axis title holds "test accuracy" (plotly 6 ships arrays as base64).
JS_ACCURACY = """() => {
  const TYPES = {f8: Float64Array, f4: Float32Array, i4: Int32Array, i2: Int16Array, i1: Int8Array};
  const dec = v => !v ? [] : v.bdata === undefined ? Array.from(v)
      : Array.from(new TYPES[v.dtype](Uint8Array.from(atob(v.bdata), c => c.charCodeAt(0)).buffer));
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const y = (gd.layout.yaxis && gd.layout.yaxis.title && gd.layout.yaxis.title.text) || '';
    if (y.includes('test accuracy')) return gd.data.map(t => ({name: t.name, n: dec(t.x).length}));
  }
  return null;
}"""


@pytest.fixture(scope="module")
def family_server(request, runs_root):
    """`streamlit run app.py` with a 2-epoch teacher (seconds on digits) on this module's runs folder; every run
    of the experiment trains at once (the lab's default, 2 jobs, would queue the others behind 30 s paced runs)."""
    env = dict(os.environ, KDVIZ_RUNS=str(runs_root), KDVIZ_SESSION_GRACE_S="2", PYTHONUNBUFFERED="1",
               KDVIZ_TEACHER_EPOCHS="2", KDVIZ_REFRESH_S="0.7", KDVIZ_MAX_JOBS="8",
               KDVIZ_FAMILY_PACE_S="300")  # paced runs outlast the test, so Stop has runs to stop (under CI load
    # the 30-s default let every run finish before the curves were read and Stop pressed)
    ARTIFACTS.mkdir(exist_ok=True)
    proc, url = start_streamlit(REPO, env, ARTIFACTS / "streamlit-browser-family.log", timeout=60)
    request.addfinalizer(lambda: stop_streamlit(proc))
    return url


def wait_for(predicate, timeout: float, what: str):
    return poll(predicate, timeout, what, pause=0.25)


def main(page):
    return page.get_by_test_id("stMainBlockContainer")


def settle(page) -> None:
    for _ in range(2):
        time.sleep(0.4)
        wait_for(lambda: page.get_by_test_id("stApp").get_attribute("data-test-script-state") == "notRunning", 90,
                 "the page's script run")


def chips(page) -> list[str]:
    """The chosen methods, as the multiselect shows them."""
    box = main(page).get_by_test_id("stMultiSelect").first
    return [tag.get_attribute("aria-label") for tag in box.locator(".react-aria-ComboBox [data-tag]").all()]


def go(page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    heading = main(page).locator("h1").first
    wait_for(lambda: heading.count() and heading.inner_text().strip() == title, 90, f"the {title!r} page")
    settle(page)


def test_a_run_charts_live_and_the_choices_survive_a_page_switch(family_server, browser, runs_root):
    page = browser.new_page(viewport={"width": 1400, "height": 1900})
    page.goto(f"{family_server}/family")
    start = main(page).get_by_role("button", name=START)
    wait_for(lambda: start.count() and start.is_enabled(), 120, "the teacher to be ready")
    settle(page)
    chosen = chips(page)  # every registered method, by default
    thumb = main(page).get_by_role("slider", name=EPOCHS)
    thumb.focus()
    page.keyboard.press("ArrowLeft")  # 400 -> 399 epochs: carried by every run, and kept after the switch
    wait_for(lambda: thumb.input_value() == "399", 30, "the Epochs slider at 399")
    settle(page)
    start.click()
    traces = wait_for(lambda: page.evaluate(JS_ACCURACY), 90, "the accuracy chart")
    first = {t["name"]: t["n"] for t in traces}
    assert set(first) == {"scratch student", *chosen}

    now: dict[str, int] = {}

    def every_curve_grew() -> bool:
        now.update({t["name"]: t["n"] for t in page.evaluate(JS_ACCURACY)})
        return all(now[name] > first[name] + 1 for name in first)

    try:
        wait_for(every_curve_grew, 90, "every method's accuracy curve to gain points with no user action")
    except AssertionError as exc:  # say which curve stood still (points per curve: first seen, last seen)
        raise AssertionError(f"{exc}; points first {first}, last {now}; {main(page).inner_text()[-1500:]}") from None
    main(page).get_by_role("button", name="Stop", exact=True).click()
    students = [p for p in runs_root.iterdir() if p.name.endswith("student")]
    assert len(students) == 1 + len(chosen)
    assert {json.loads((p / "config.json").read_text())["epochs"] for p in students} == {399}
    main(page).get_by_role("button", name=f"Remove {chosen[-1]}", exact=True).click()  # a choice to find again
    settle(page)
    assert chips(page) == chosen[:-1]

    go(page, "Train a student")
    go(page, TITLE)
    assert chips(page) == chosen[:-1]
    assert main(page).get_by_role("slider", name=EPOCHS).input_value() == "399"
    kept = page.evaluate(JS_ACCURACY)  # the runs are still drawn, every one of them
    assert kept and {t["name"] for t in kept} == {"scratch student", *chosen}
    states: dict[str, str] = {}

    def every_run_ended() -> bool:  # stopped; a run may also have finished in the moment before Stop
        states.update({p.name: json.loads((p / "status.json").read_text())["state"] for p in students})
        return set(states.values()) <= {"stopped", "finished"} and "stopped" in states.values()

    try:
        wait_for(every_run_ended, 90, "every run to stop")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; states {states}") from None
    assert not page.get_by_test_id("stException").count()
    page.close()
