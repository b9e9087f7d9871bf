"""The Sweeps page in a real browser: Debian's Chromium (Playwright) against `streamlit run` of the page
on digits, Ray started by the page inside the server (its temp dir under the test's tmp folder).

Type two temperatures and one alpha, move Seeds to 1 (two trials, run at once) and press Start: with
no further input the heatmap is drawn with empty cells, then fills in live, each cell a percentage.
Skipped without /usr/bin/chromium unless KDVIZ_REQUIRE_BROWSER=1."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from _support.ray_dirs import short_ray_dir
from _support.browser import one_page_server, playwright_or_skip
from _support.polling import wait_for as poll

pytest.importorskip("ray")
pytestmark = [pytest.mark.browser, pytest.mark.slow]  # a teacher, Ray's start, 4 short trials: ~40 s idle
sync_api = playwright_or_skip()
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
PAGE = REPO / "kdviz" / "app" / "pages" / "sweeps.py"
# The heatmap's z (null for an empty cell), found by its x-axis title.
JS_HEATMAP = """(axis) => {
  const TYPES = {f8: Float64Array, f4: Float32Array};
  const flat = v => Array.from(v).flatMap(r => (r !== null && typeof r === 'object') ? Array.from(r) : [r]);
  const dec = v => !v ? [] : v.bdata === undefined ? flat(v)
      : Array.from(new TYPES[v.dtype](Uint8Array.from(atob(v.bdata), c => c.charCodeAt(0)).buffer), Number);
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const t = (gd.layout.xaxis && gd.layout.xaxis.title && gd.layout.xaxis.title.text) || '';
    if (t.includes(axis) && gd.data[0].type === 'heatmap')
      return dec(gd.data[0].z).map(v => v === null || Number.isNaN(v) ? null : v);
  }
  return null;
}"""


@pytest.fixture(scope="module")
def sweep_server(request, tmp_path_factory, runs_root):
    ray_tmp = short_ray_dir(request)  # Ray's socket paths must stay short
    return one_page_server(request, tmp_path_factory.mktemp("sweep-app"), PAGE, "Sweeps", runs_root,
                           ARTIFACTS / "streamlit-browser-sweep.log", KDVIZ_SWEEP_STEPS="40", RAY_TMPDIR=str(ray_tmp))


def wait_for(predicate, timeout: float, what: str):
    return poll(predicate, timeout, what, pause=0.2)


def test_the_heatmap_fills_in_live(sweep_server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 2000})
    page.goto(sweep_server)
    main = page.get_by_test_id("stMainBlockContainer")
    start = main.get_by_role("button", name="Start")
    wait_for(lambda: start.count() and start.is_enabled(), 120, "the teacher to be ready")
    for label, text in (("Column values", "1, 4"), ("Row values", "0.9")):
        box = main.get_by_label(label, exact=True)
        box.fill(text)
        box.press("Enter")
    seeds = main.get_by_role("slider", name="Seeds")  # one seed: two trials, one round two at once
    seeds.focus()
    page.keyboard.press("ArrowLeft")
    wait_for(lambda: seeds.input_value() == "1", 30, "the Seeds slider at 1")
    page.wait_for_timeout(1000)
    start.click()
    seen = []

    def cells():
        z = page.evaluate(JS_HEATMAP, "temperature T")
        if z:
            seen.append(z)
        return z and all(v is not None for v in z) and len(z) == 2

    final = wait_for(lambda: cells() and seen[-1], 240, "every cell of the heatmap")
    assert any(None in z for z in seen), f"the heatmap was never seen before its cells filled in: {seen[:3]}"
    assert all(0 <= v <= 100 and math.isfinite(v) for v in final)
    page.close()
