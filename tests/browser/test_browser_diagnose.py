"""The Diagnose view (Train a student page) in a real browser: Debian's Chromium (Playwright) against
`streamlit run app.py` on digits with a 2-epoch teacher.

A short unpaced KD + scratch pair trains (T and epochs from the page's link); once both have ended
the "Diagnose: why did KD help or not?" expander appears. Opened, it must draw its four charts in
plotly (bars really rendered, titles not cut), name the runs by the labels the accuracy chart gives
them (never by their folder names), and its captions and titles must agree with the numbers drawn:
the classes the agreement caption lists are the bars under 90 %, the gain chart's "helped on N and
hurt on M" counts its bars, the gain caption's overall accuracies are the runs' final test accuracies
read here from their metrics.jsonl, and the class-weighted mean of the bars is their difference.
Skipped without /usr/bin/chromium unless KDVIZ_REQUIRE_BROWSER=1.
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest

from _support.browser import playwright_or_skip, start_streamlit, stop_streamlit
from _support.polling import wait_for as poll
from _support.run_files import metric_lines

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # 25-40 s: a server, a teacher, two students
sync_api = playwright_or_skip()
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
T, EPOCHS = 2, 20  # 100 labelled digits, batch 16: 140 steps a student, a second or two unpaced
DIAGNOSE = "Diagnose: why did KD help or not?"
# Every plotly chart on the page: its title, y-axis title, traces (name, x, y, text) and how many bars
# and points its SVG holds (plotly 6 ships numpy arrays as base64).
JS_CHARTS = """() => {
  const TYPES = {f8: Float64Array, f4: Float32Array, i4: Int32Array, i2: Int16Array, i1: Int8Array,
                 u4: Uint32Array, u2: Uint16Array, u1: Uint8Array};
  const dec = v => !v ? [] : v.bdata === undefined ? Array.from(v)
      : Array.from(new TYPES[v.dtype](Uint8Array.from(atob(v.bdata), c => c.charCodeAt(0)).buffer));
  return Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => ({
    title: (gd.layout.title && gd.layout.title.text) || '',
    ytitle: (gd.layout.yaxis && gd.layout.yaxis.title && gd.layout.yaxis.title.text) || '',
    traces: gd.data.map(t => ({name: t.name, type: t.type, x: dec(t.x).map(String), y: dec(t.y),
                               text: t.text ? Array.from(t.text) : []})),
    drawn: gd.querySelectorAll('.bars .point path, .scatterlayer .point').length,
    titleShown: (gd.querySelector('.gtitle') || {textContent: ''}).textContent,
  }));
}"""


@pytest.fixture(scope="module")
def diagnose_server(request, runs_root):
    env = dict(os.environ, KDVIZ_RUNS=str(runs_root), KDVIZ_SESSION_GRACE_S="2", PYTHONUNBUFFERED="1",
               KDVIZ_TEACHER_EPOCHS="2", KDVIZ_REFRESH_S="0.7")
    ARTIFACTS.mkdir(exist_ok=True)
    proc, url = start_streamlit(REPO, env, ARTIFACTS / "streamlit-browser-diagnose.log", timeout=60)
    request.addfinalizer(lambda: stop_streamlit(proc))
    return url


def wait_for(predicate, timeout: float, what: str):
    return poll(predicate, timeout, what, pause=0.25)


def plain(title: str) -> str:
    """A chart title without its markup (``<b>``, the ``<br>`` of a wrapped title)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", title)).strip()


def chart(charts: list[dict], words: str) -> dict:
    found = [c for c in charts if words in plain(c["title"])]
    assert len(found) == 1, f"one chart titled with {words!r}: {[plain(c['title']) for c in charts]}"
    return found[0]


def caption(captions: list[str], start: str) -> str:
    found = [c for c in captions if c.startswith(start)]
    assert len(found) == 1, f"one caption starting {start!r}: {captions}"
    return found[0]


def run_folders(runs_root: Path) -> dict[str, Path]:
    """``{"kd": folder, "scratch": folder}`` of the pair, told apart by their config.json."""
    found = {}
    for path in runs_root.iterdir():
        config = json.loads((path / "config.json").read_text()) if (path / "config.json").is_file() else {}
        if config.get("teacher") and config.get("method") == "kd":
            found["kd"] = path
        elif config.get("method") == "ce" and config.get("train_subset"):
            found["scratch"] = path
    return found


def test_diagnose_charts_render_with_the_runs_labels_and_captions_that_match_them(diagnose_server, browser, runs_root):
    from kdviz.data import load_dataset

    t0 = time.monotonic()
    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    page.goto(f"{diagnose_server}/train_student?tr_T={T}&tr_epochs={EPOCHS}&tr_pace=False")
    main = page.get_by_test_id("stMainBlockContainer")
    start = main.get_by_role("button", name="Start KD and scratch students")
    wait_for(lambda: start.count() and start.is_enabled(), 90, "the teacher to be ready")
    start.click()
    expander = main.get_by_test_id("stExpander").filter(has_text=DIAGNOSE)
    wait_for(lambda: expander.count(), 60, "the Diagnose section after both students ended")
    expander.get_by_text(DIAGNOSE).click()
    titles = ("agrees with the teacher least", "Distillation helped on", "Dark knowledge at T", "calibration: ECE")

    def diagnose_drawn():
        charts = page.evaluate(JS_CHARTS)
        shown = [c for c in charts if any(w in plain(c["title"]) for w in titles) and c["drawn"]]
        return charts if len(shown) == 4 else None

    charts = wait_for(diagnose_drawn, 30, "the four Diagnose charts to render")
    starts = ("Test images of each class", "Per-class test accuracy of", "Mean probability the teacher's",
              "The teacher's test images grouped")

    def captions_shown():  # a caption is drawn after its chart: wait for the last one too
        shown = [c.inner_text().strip() for c in expander.get_by_test_id("stCaptionContainer").all()]
        return shown if all(any(c.startswith(s) for c in shown) for s in starts) else None

    captions = wait_for(captions_shown, 30, "the four Diagnose captions")
    folders = run_folders(runs_root)
    configs = {k: json.loads((p / "config.json").read_text()) for k, p in folders.items()}
    final = {k: metric_lines(p, "eval")[-1]["test_acc"] for k, p in folders.items()}

    # the runs' labels: as the page's accuracy chart names them, and never their folder names
    accuracy = next(c for c in charts if "test accuracy" in c["ytitle"] and "Dark" not in c["title"])
    labels = {t["name"] for t in accuracy["traces"]}
    agreement = chart(charts, "agrees with the teacher least")
    kd_label = agreement["traces"][0]["name"]
    (scratch_label,) = labels - {kd_label}
    assert kd_label in labels and plain(agreement["title"]).startswith(kd_label)
    assert not {kd_label, scratch_label} & {configs["kd"]["name"], configs["scratch"]["name"], *(p.name for p in folders.values())}
    for c in charts:  # every title is drawn whole by plotly (a wrapped title is not cut off)
        assert plain(c["title"]).replace(" ", "") == c["titleShown"].replace(" ", ""), c["title"]

    # agreement: the caption's classes under 90 % are the bars under 90 %; the title's worst class is the lowest bar
    bars = dict(zip(agreement["traces"][0]["x"], agreement["traces"][0]["y"]))
    below = [k for k, v in bars.items() if v < 90]
    assert caption(captions, "Test images of each class").endswith(f"Below 90 %: {', '.join(below) or 'none'}.")
    assert plain(agreement["title"]).endswith(f"least on class {min(bars, key=bars.get)}")

    # gain: the title counts the bars; the caption names both runs and their final test accuracies
    gain = chart(charts, "Distillation helped on")["traces"][0]
    up, down = sum(v > 0 for v in gain["y"]), sum(v < 0 for v in gain["y"])
    assert plain(chart(charts, "Distillation helped on")["title"]) == f"Distillation helped on {up} classes and hurt on {down}"
    assert caption(captions, "Per-class test accuracy of") == (
        f"Per-class test accuracy of {kd_label} minus {scratch_label}'s: "
        f"{100 * final['kd']:.1f}% against {100 * final['scratch']:.1f}% overall.")
    assert gain["text"] == [f"{v:+.1f}" for v in gain["y"]]
    counts = np.bincount(load_dataset("digits").test_labels.numpy(), minlength=10)
    weighted = float(np.dot(counts, gain["y"]) / counts.sum())  # per-class gains weighted by class size
    assert weighted == pytest.approx(100 * (final["kd"] - final["scratch"]), abs=1e-4)  # metrics hold float32

    # dark knowledge at the run's T on its labelled transfer set; the teacher's ECE the same in title and caption
    assert chart(charts, f"Dark knowledge at T = {T}")
    dark = caption(captions, "Mean probability the teacher's soft targets")
    assert f"at T = {T} put on the other classes of the student's {configs['kd']['train_subset']} training images" in dark
    ece = re.search(r"ECE = ([\d.]+)%", plain(chart(charts, "calibration: ECE")["title"])).group(1)
    assert caption(captions, "The teacher's test images grouped").endswith(f"= {ece}%.")
    assert not page.get_by_test_id("stException").count()
    expander.screenshot(path=str(ARTIFACTS / "browser-diagnose.png"))
    print(f"diagnose test: {time.monotonic() - t0:.1f} s after the page opened", flush=True)
    page.close()
