"""The Transformers page in a real browser: Debian's Chromium (Playwright) against `streamlit run` of the
page (the app's own harness) on digits. Start a distilled ViT student beside one trained alone (paced):
with no further input the student's attention maps for the probe digit change on screen while it trains.
Skipped without /usr/bin/chromium unless KDVIZ_REQUIRE_BROWSER=1."""
from __future__ import annotations

from pathlib import Path

import pytest

from _support.browser import one_page_server, playwright_or_skip
from _support.polling import wait_for as poll

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # a 1-epoch ViT teacher, then a paced run: ~40 s
sync_api = playwright_or_skip()
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
PAGE = REPO / "kdviz" / "app" / "pages" / "transformers.py"
# The student's head-maps chart (found by its title): every trace's z values, flattened (plotly 6 ships
# arrays as base64 with a dtype).
JS_MAPS = """(who) => {
  const TYPES = {f8: Float64Array, f4: Float32Array, i4: Int32Array, i2: Int16Array, i1: Int8Array};
  const dec = v => !v ? [] : v.bdata === undefined ? Array.from(v).flat()
      : Array.from(new TYPES[v.dtype](Uint8Array.from(atob(v.bdata), c => c.charCodeAt(0)).buffer), Number);
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const title = (gd.layout.title && gd.layout.title.text) || '';
    if (title.includes(who) && title.includes('class token looks'))
      return gd.data.map(tr => dec(tr.z).map(v => Math.round(v * 1e6) / 1e6).join(','));
  }
  return null;
}"""


@pytest.fixture(scope="module")
def vit_server(request, tmp_path_factory, runs_root):
    return one_page_server(request, tmp_path_factory.mktemp("vit-app"), PAGE, "Transformers", runs_root,
                           ARTIFACTS / "streamlit-browser-transformers.log", KDVIZ_VIT_DISTILL_PACE_S="20")


def wait_for(predicate, timeout: float, what: str):
    return poll(predicate, timeout, what, pause=0.2)


def test_the_attention_maps_change_while_the_student_trains(vit_server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 2200})
    page.goto(vit_server)
    main = page.get_by_test_id("stMainBlockContainer")
    start = main.get_by_role("button", name="Start distilled and alone students")
    try:
        wait_for(lambda: start.count() and start.is_enabled(), 150, "the ViT teacher to be ready")
    except AssertionError:
        page.screenshot(path=str(ARTIFACTS / "browser-transformers-failure.png"), full_page=True)
        raise
    start.click()
    first = wait_for(lambda: page.evaluate(JS_MAPS, "TinyBERT student"), 90, "the student's attention maps")
    assert len(first) == 4  # 2 layers x 2 heads
    teacher_first = page.evaluate(JS_MAPS, "teacher")
    wait_for(lambda: (page.evaluate(JS_MAPS, "TinyBERT student") or first) != first, 90,
             "the student's maps to change with no user action")
    assert page.evaluate(JS_MAPS, "teacher") == teacher_first and len(teacher_first) == 16  # the teacher's stay
    assert not page.get_by_test_id("stException").count()
    page.close()
