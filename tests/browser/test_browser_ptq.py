"""The Post-training quantization page in a real browser: its charts appear once the baseline has
trained, and the per-layer chart changes when the bits slider moves.

The page is served by its file path (``streamlit run`` of a harness that navigates to it, as app.py
does) until it joins the lab's navigation. Debian's Chromium through Playwright.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from _support.browser import one_page_server, playwright_or_skip
from _support.polling import wait_for as poll

pytestmark = pytest.mark.browser
sync_api = playwright_or_skip()
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
PAGE = REPO / "kdviz/app/pages/ptq.py"
SLIDER = "Bits of the layer-by-layer view"
JS_CHARTS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => ({
    title: (el.layout && el.layout.title && el.layout.title.text) || '',
    y: (el.data || []).map(t => Array.from(t.y || []))}))"""


@pytest.fixture(scope="module")
def ptq_url(request, tmp_path_factory, runs_root) -> str:
    return one_page_server(request, tmp_path_factory.mktemp("ptq-app"), PAGE, "Post-training quantization", runs_root,
                           ARTIFACTS / "streamlit-browser-ptq.log", KDVIZ_TEACHER_EPOCHS="2")


def layer_chart(page, bits: int):
    """The per-layer noise chart once its title names ``bits``, else None."""
    for chart in page.evaluate(JS_CHARTS):
        if f"breaks accuracy first at {bits} bits" in chart["title"]:
            return chart
    return None


def test_layer_chart_appears_and_follows_the_bits_slider(ptq_url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(ptq_url)
    before = poll(lambda: layer_chart(page, 3), 180, "the per-layer chart at 3 bits", pause=0.5)
    assert len(before["y"]) == 2 and len(before["y"][0]) == 3  # SQNR and drop bars for fc1, fc2, fc3
    thumb = page.get_by_role("slider", name=SLIDER)
    thumb.focus()
    page.keyboard.press("ArrowLeft")  # 3 -> 2 bits
    poll(lambda: thumb.input_value() == "2", 30, "the slider at 2", pause=0.25)
    after = poll(lambda: layer_chart(page, 2), 60, "the per-layer chart at 2 bits", pause=0.5)
    assert after["y"][0] != before["y"][0]  # 2 bits: every layer's output SQNR is lower
    assert all(a < b for a, b in zip(after["y"][0], before["y"][0]))
    time.sleep(0.2)
    assert not page.get_by_test_id("stException").count()
    page.close()
