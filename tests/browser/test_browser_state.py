"""State in a real browser: settings, controls and charts agree across pages, reloads and datasets.

Debian's Chromium (Playwright) against `streamlit run app.py` (issue 14: bugs 1, 2, 5, 7 and the
settings in the URL). Each test moves real controls, leaves the page through the sidebar or a reload,
comes back and reads the controls and the charts again. Skipped without /usr/bin/chromium unless
KDVIZ_REQUIRE_BROWSER=1.
"""
from __future__ import annotations

import json
import time

import pytest

from _support.browser import playwright_or_skip
from _support.polling import wait_for as poll

pytestmark = pytest.mark.browser
sync_api = playwright_or_skip()


def wait_for(predicate, timeout: float, what: str):
    return poll(predicate, timeout, what, pause=0.25)


def script_done(page) -> bool:
    return page.get_by_test_id("stApp").get_attribute("data-test-script-state") == "notRunning"


def main(page):
    return page.get_by_test_id("stMainBlockContainer")


def problems(page) -> list[str]:
    """Raw exceptions and the messages ``kdviz.app.errors`` shows instead of a traceback."""
    found = [e.inner_text()[:300] for e in page.get_by_test_id("stException").all()]
    for text in ("something unexpected went wrong", "Traceback", "has no key"):
        found += [e.inner_text()[:300] for e in main(page).get_by_text(text).all()]
    return found


def settle(page, what: str, timeout: float = 120) -> None:
    """Wait until no script run is under way (twice, a moment apart: a rerun can follow a rerun)."""
    for _ in range(2):
        time.sleep(0.4)
        wait_for(lambda: script_done(page), timeout, what)


def open_page(browser, url: str, path: str = ""):
    page = browser.new_page(viewport={"width": 1400, "height": 1900})
    page.goto(f"{url}/{path}")
    return page


def go(page, title: str) -> None:
    """Click the sidebar link ``title`` and wait for that page to be drawn."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    heading = main(page).locator("h1").first
    wait_for(lambda: heading.count() and heading.inner_text().strip() == title, 90, f"the {title!r} page")
    settle(page, f"the {title!r} page's script")


def slider_value(page, name: str) -> str:
    return page.get_by_role("slider", name=name).first.input_value()


def press(page, name: str, key: str, times: int) -> None:
    """Move the slider ``name`` with the keyboard (one rerun at the end, when the key is released)."""
    thumb = page.get_by_role("slider", name=name).first
    thumb.focus()
    for _ in range(times):
        page.keyboard.press(key)
    settle(page, f"the rerun after moving {name!r}")



INIT = "Initialisation (Han et al. sec. 3.2)"


def test_quantizer_options_survive_switching_quantizers(server, browser):
    """Bug 1: k-means -> uniform -> binary -> product (PQ) -> k-means never loses section 1 or an option."""
    page = open_page(browser, server, "quantization")

    def bits_accuracy() -> str:
        """The Test accuracy the bits player (a component's iframe) shows; "" until it has drawn."""
        page.wait_for_timeout(50)  # lets Playwright take in the page's events (new frames) between polls
        for frame in page.frames:
            label = frame.locator(".kdviz-sp-controls label")
            if "stops_player" in frame.url and label.count() and label.first.inner_text() == "Bits per weight":
                box = frame.locator(".kdviz-sp-metric").filter(has_text="Test accuracy")
                return box.first.locator(".value").inner_text().strip() if box.count() else ""
        return ""

    main(page).get_by_text("1. Quantize with a slider").wait_for(timeout=240_000)
    wait_for(lambda: bits_accuracy().endswith("%"), 60, "the explorer's accuracy")
    time.sleep(2.0)  # the baseline's progress fragment has rerun the page once it finished: let that run end
    settle(page, "the quantization page")
    method = page.get_by_role("radiogroup", name="Method")

    def choose(name: str) -> None:
        method.get_by_role("radio", name=name).click()
        wait_for(lambda: method.get_by_role("radio", name=name).get_attribute("aria-checked") == "true", 30, name)
        settle(page, f"the {name} quantizer")
        assert not problems(page), (name, problems(page))
        assert main(page).get_by_text("1. Quantize with a slider").count() == 1, name
        wait_for(lambda: bits_accuracy().endswith("%"), 30, f"the {name} quantizer's accuracy")

    for name in ("uniform", "binary", "uniform", "product (PQ)", "k-means sharing"):  # the steps
        choose(name)
    init = page.get_by_role("radiogroup", name=INIT)
    init.get_by_text("random (Forgy)", exact=True).click()
    wait_for(lambda: init.get_by_role("radio", name="random (Forgy)").is_checked(), 30, "random initialisation")
    settle(page, "the k-means initialisation change")
    for name in ("uniform", "binary", "product (PQ)", "k-means sharing"):
        choose(name)
    # the k-means option chosen before the detour is still the one drawn
    assert init.get_by_role("radio", name="random (Forgy)").is_checked()
    page.close()


@pytest.mark.parametrize("detour", [("Compare runs",), ("Compare runs", "Pruning")], ids=["one page", "two pages"])
def test_train_settings_survive_other_pages(server, browser, detour):
    """Bug 2: alpha and epochs set on Train a student are still set after Compare runs (and Pruning).
    One detour once drew the controls at their defaults while the server kept the set values."""
    page = open_page(browser, server, "train_student")
    start = page.get_by_role("button", name="Start KD and scratch students")
    wait_for(lambda: start.count() and start.is_enabled(), 180, "the teacher to be ready")  # no rerun of its own after
    settle(page, "the train page")
    press(page, "Epochs", "ArrowRight", 5)  # the digits default 400 -> 405
    press(page, "alpha: weight of the soft targets", "ArrowLeft", 4)  # 0.90 -> 0.70
    assert (slider_value(page, "Epochs"), slider_value(page, "alpha: weight of the soft targets")) == ("405", "0.7")
    for title in (*detour, "Train a student"):
        go(page, title)
    assert slider_value(page, "Epochs") == "405"
    assert slider_value(page, "alpha: weight of the soft targets") == "0.7"
    assert not problems(page)
    page.close()


def stops_frame(page, label: str, timeout: float = 240):
    """The browser-side slider whose input is labelled ``label`` (``kdviz.app.stops_player``), once its
    charts are drawn."""
    def found():
        for frame in page.frames:
            if "stops_player" in frame.url and frame.locator(f"input[aria-label^='{label}']").count() \
                    and frame.locator(".kdviz-sp-chart .gtitle").count():
                return frame
        return None
    deadline = time.monotonic() + timeout
    while (frame := found()) is None:
        assert time.monotonic() < deadline, f"no drawn player for {label!r}"
        page.wait_for_timeout(250)  # not time.sleep: Playwright learns of new frames while it waits
    return frame


def player_reading(frame) -> tuple[str, str, str]:
    """(the readout, the accuracy metric, the accuracy chart's title) the player shows."""
    metric = frame.locator(".kdviz-sp-metric").filter(has_text="Test accuracy").locator(".value").inner_text()
    title = frame.locator(".kdviz-sp-chart[data-key='accuracy-vs-sparsity'] .gtitle").text_content()
    return frame.locator(".kdviz-sp-readout").inner_text(), metric, title


def test_pruning_slider_box_and_chart_agree_after_leaving_and_returning(server, browser):
    """The browser-side sparsity slider, its exact box and the charts agree after a drag, two other pages,
    and a typed value (which the slider moves to)."""
    page = open_page(browser, server, "pruning")
    frame = stops_frame(page, SPARSITY)
    settle(page, "the pruning page")
    readout, accuracy, title = player_reading(frame)
    assert readout == "0.8" and "80.0% of weights pruned" in title
    frame.locator("#kdviz-sp-input").focus()
    for _ in range(2):  # 0.8 -> 0.85 -> 0.88: redrawn in the browser, no server run needed
        page.keyboard.press("ArrowRight")
    wait_for(lambda: player_reading(frame)[0] == "0.88", 10, "the player to redraw at 0.88")
    moved = player_reading(frame)
    assert "88.0% of weights pruned" in moved[2] and moved[1] != accuracy and moved[1] in moved[2]
    box = page.get_by_role("spinbutton", name=SPARSITY_BOX)
    wait_for(lambda: box.input_value() == "0.88", 30, "the exact box to follow the slider")
    settle(page, "the rerun after the move")
    for title in ("Compare runs", "Quantization", "Pruning"):
        go(page, title)
    frame = stops_frame(page, SPARSITY)
    assert player_reading(frame) == moved
    assert page.get_by_role("spinbutton", name=SPARSITY_BOX).input_value() == "0.88"
    box = page.get_by_role("spinbutton", name=SPARSITY_BOX)
    box.fill("0.93")
    box.press("Enter")
    wait_for(lambda: player_reading(stops_frame(page, SPARSITY))[0] == "0.93", 60, "the slider to move to a typed value")
    assert "93.0% of weights pruned" in player_reading(stops_frame(page, SPARSITY))[2]
    assert not problems(page)
    page.close()


SPARSITY, SPARSITY_BOX = "Sparsity: fraction of weights removed", "Type an exact sparsity (or drag the slider below)"


def run_states(folders) -> list[str]:
    return sorted(json.loads((p / "status.json").read_text()).get("state", "") for p in folders)


def test_a_reloaded_tab_finds_its_runs_and_a_stopped_run_continues(server, browser, runs_root):
    """Bug 5: reloading mid-training shows the runs still training (the watchdog keeps them: the lab session
    is named in the URL), and after Stop, "Continue the stopped runs" resumes them in their own folders."""
    page = open_page(browser, server, "train_student")
    start = page.get_by_role("button", name="Start KD and scratch students")
    wait_for(lambda: start.count() and start.is_enabled(), 180, "the teacher to be ready")
    settle(page, "the train page")
    before = {p.name for p in runs_root.iterdir()}
    # The paper's 800-800 student for 100 epochs: it cannot finish during the test (the tiny default can)
    page.get_by_test_id("stSidebar").get_by_role("combobox").nth(2).click()
    page.get_by_role("option", name="MLP 800-800 (Hinton)").click()
    settle(page, "the rerun after picking the student")
    press(page, "Epochs", "End", 1)
    start.click()
    running = main(page).get_by_role("button", name="Running…")
    wait_for(lambda: running.count(), 60, "the run to start")
    folders = [runs_root / n for n in {p.name for p in runs_root.iterdir()} - before]
    assert len(folders) == 2
    page.reload()
    wait_for(lambda: main(page).get_by_role("button", name="Running…").count(), 90, "the reloaded tab to show the run")
    assert not main(page).get_by_text("Press Start").count()
    time.sleep(6)  # three times the server's grace period: the closed websocket's jobs would be stopped by now
    assert set(run_states(folders)) <= {"running", "queued"}, run_states(folders)
    main(page).get_by_role("button", name="Stop", exact=True).click()
    wait_for(lambda: run_states(folders) == ["stopped", "stopped"], 90, "both runs to stop")
    again = main(page).get_by_role("button", name="Continue the stopped runs")
    wait_for(lambda: again.count() and again.is_enabled(), 60, "the Continue button")
    again.click()
    wait_for(lambda: set(run_states(folders)) <= {"running", "queued"}, 90, "both runs to continue")
    assert {p.name for p in runs_root.iterdir()} - before == {p.name for p in folders}  # in their own folders
    wait_for(lambda: main(page).get_by_role("button", name="Stop", exact=True).is_enabled(), 60, "Stop enabled")
    main(page).get_by_role("button", name="Stop", exact=True).click()
    wait_for(lambda: run_states(folders) == ["stopped", "stopped"], 90, "both runs to stop again")
    assert not problems(page)
    page.close()


def test_a_start_click_followed_at_once_by_another_page_is_not_lost(server, browser, runs_root):
    """Bug 8: Start, then another page within a fraction of a second: the runs start, and back on the page
    they are shown (the click is handled by its callback before any page is drawn)."""
    page = open_page(browser, server, "train_student")
    start = page.get_by_role("button", name="Start KD and scratch students")
    wait_for(lambda: start.count() and start.is_enabled(), 180, "the teacher to be ready")
    settle(page, "the train page")
    before = {p.name for p in runs_root.iterdir()}
    press(page, "Epochs", "End", 1)  # 100 epochs: still running when we come back
    start.click()
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Compare runs", exact=True).click()
    wait_for(lambda: len({p.name for p in runs_root.iterdir()} - before) == 2, 60, "the two runs' folders")
    go(page, "Train a student")
    wait_for(lambda: main(page).get_by_role("button", name="Running…").count(), 60, "the runs shown on the page")
    folders = [runs_root / n for n in {p.name for p in runs_root.iterdir()} - before]
    main(page).get_by_role("button", name="Stop", exact=True).click()
    wait_for(lambda: run_states(folders) == ["stopped", "stopped"], 90, "both runs to stop")
    page.close()
