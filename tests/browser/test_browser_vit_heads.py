"""The Transformers page's compression tab in a real browser: Debian's Chromium (Playwright) against
`streamlit run` of a one-page lab that calls ``render_vit_compression()`` (the app's own harness) on digits.

The preset ViT teacher trains first (1 epoch); then Start head pruning: with no further input the
head-importance heatmap changes while heads are removed (its crossed-out heads grow and its values move),
drawn by the page's own timer. Skipped without /usr/bin/chromium unless KDVIZ_REQUIRE_BROWSER=1."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from _support.browser import one_page_server, playwright_or_skip
from _support.polling import wait_for as poll

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # a 1-epoch ViT, then a paced 8 s fine-tune: ~30 s
sync_api = playwright_or_skip()
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
PAGE_SOURCE = ("import kdviz.methods.head_prune  # noqa: F401  (registered by kdviz.methods once the lead adds it)\n"
               "from kdviz.app.vit_compression_view import render_vit_compression\nrender_vit_compression()\n")
# The heatmap whose title names a step (the live one): its title, crossed-out heads and values.
JS_HEATMAP = """() => {
  const TYPES = {f8: Float64Array, f4: Float32Array};
  const dec = v => v.bdata === undefined ? v.flat() : Array.from(
      new TYPES[v.dtype](Uint8Array.from(atob(v.bdata), c => c.charCodeAt(0)).buffer), Number);
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const title = (gd.layout.title && gd.layout.title.text) || '';
    if (title.includes('Head importance at step') && gd.data.length)
      return {title: title, crossed: gd.data[0].text.flat().filter(t => t === '✕').length,
              z: dec(gd.data[0].z).map(v => Math.round(v * 1e4) / 1e4)};
  }
  return null;
}"""


@pytest.fixture(scope="module")
def vit_server(request, tmp_path_factory, runs_root):
    folder = tmp_path_factory.mktemp("vit-heads-app")
    page = folder / "vit_compression_tab.py"
    page.write_text(PAGE_SOURCE)
    return one_page_server(request, folder, page, "ViT compression", runs_root,
                           ARTIFACTS / "streamlit-browser-vit-heads.log", KDVIZ_VIT_PACE_S="8", KDVIZ_VIT_TABLE_RUNS="3")


def wait_for(predicate, timeout: float, what: str):
    return poll(predicate, timeout, what, pause=0.2)


def test_the_importance_heatmap_changes_while_heads_are_pruned(vit_server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1900})
    page.goto(vit_server)  # the harness's only page
    main = page.get_by_test_id("stMainBlockContainer")
    start = main.get_by_role("button", name="Start head pruning")
    wait_for(lambda: start.count() and start.is_enabled(), 120, "the ViT teacher and the pruning curves")
    time.sleep(0.8)
    start.click()
    first = wait_for(lambda: page.evaluate(JS_HEATMAP), 60, "the live importance heatmap")
    seen = {(first["crossed"], tuple(first["z"]))}

    def changed() -> bool:  # no clicks: only the page's own timer redraws
        now = page.evaluate(JS_HEATMAP)
        if now:
            seen.add((now["crossed"], tuple(now["z"])))
        return len({crossed for crossed, _ in seen}) >= 2 and len(seen) >= 3

    wait_for(changed, 90, "the heatmap to show more heads removed and new importances with no user action")
    assert max(crossed for crossed, _ in seen) > min(crossed for crossed, _ in seen)
    assert not page.get_by_test_id("stException").count()
    page.close()
