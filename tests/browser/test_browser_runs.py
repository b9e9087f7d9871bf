"""Compare runs in a real browser with several real runs: rows ticked in the table become curves, a
method filter narrows the table, no error shows, and the accuracy chart's legend stays clear of its
title and of its plot (bounding boxes of the rendered SVG)."""
from __future__ import annotations

from pathlib import Path

import pytest

from _support.browser import playwright_or_skip
from _support.polling import wait_for

pytestmark = pytest.mark.browser
playwright_or_skip()

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
ROW_PX = 35  # st.dataframe's default row height (the header row too)


@pytest.fixture(scope="module")
def runs(runs_root):
    """A 1-epoch teacher, two KD students and two scratch students on digits (tiny MLPs)."""
    import torch

    from kdviz.engine import TrainConfig, start

    torch.set_num_threads(1)
    common = dict(dataset="digits", model="mlp", epochs=2, runs_root=str(runs_root))
    teacher = start(TrainConfig(name="teacher", model_options={"hidden": [32]}, **common))
    assert teacher.wait(180).state == "finished"
    jobs = [start(TrainConfig(method="kd", teacher=str(teacher.path), T=t, name=f"kd-T{t}",
                              model_options={"hidden": [8]}, **common)) for t in (2.0, 8.0)]
    jobs += [start(TrainConfig(method="ce", name=f"scratch-{s}", seed=s, model_options={"hidden": [8]}, **common))
             for s in (1, 2)]
    assert [j.wait(180).state for j in jobs] == ["finished"] * 4
    return [teacher, *jobs]


def script_done(page) -> bool:
    return page.get_by_test_id("stApp").get_attribute("data-test-script-state") == "notRunning"


def settle(page) -> None:
    page.wait_for_timeout(300)
    wait_for(lambda: script_done(page), 60, "the page's script to finish")


def problems(page) -> list[str]:
    """Exceptions and error boxes on the page."""
    main = page.get_by_test_id("stMainBlockContainer")
    found = [e.inner_text()[:300] for e in page.get_by_test_id("stException").all()]
    found += [e.inner_text()[:300] for e in main.get_by_test_id("stAlertContentError").all()]
    return found + [e.inner_text()[:300] for e in main.get_by_text("something unexpected went wrong").all()]


def chips(page) -> list[str]:
    """The runs the "Runs to compare" box holds, as its chips read ("name · method")."""
    return page.evaluate("Object.values(Object.fromEntries([...document.querySelectorAll("
                         "'.st-key-cr_selected [data-tag-index]')].map(e => [e.dataset.tagIndex, e.innerText])))")


def table_names(page) -> list[str]:
    """The run names in the table's rows, top to bottom, from the grid's accessible cells (the canvas
    draws them; ``glide-cell-1-<row>`` is the name column of data row ``row``)."""
    cells = page.evaluate("[...document.querySelectorAll('.st-key-cr_table table [id^=\"glide-cell-1-\"]')]"
                          ".map(e => [Number(e.id.split('-').pop()), e.textContent])")
    return [name for _, name in sorted(cells)]


def ticked_names(page) -> list[str]:
    """The run names whose rows the grid shows ticked."""
    names = table_names(page)
    rows = page.evaluate("[...document.querySelectorAll('.st-key-cr_table table tr[aria-rowindex]')]"
                         ".filter(e => e.getAttribute('aria-selected') === 'true')"
                         ".map(e => Number(e.getAttribute('aria-rowindex')) - 2)")
    return sorted(names[r] for r in rows if 0 <= r < len(names))


def compared(page, name: str) -> bool:
    return any(c.startswith(name + " · ") for c in chips(page))


def tick_run(page, table, name: str, joins: bool = True) -> None:
    """Click the selection box of the table row that shows run ``name`` (found by name, not by place:
    a run that starts meanwhile, such as the lab's own teacher, joins the table at the top on the next
    rerun and moves every row down), and wait until the run joined the compared runs (or, with
    ``joins=False``, left them)."""
    settle(page)
    names = wait_for(lambda: table_names(page), 30, "the table's rows")
    assert name in names, (name, names)
    assert compared(page, name) != joins, (name, chips(page))
    box = table.bounding_box()
    page.mouse.click(box["x"] + 14, box["y"] + ROW_PX * (names.index(name) + 1) + ROW_PX / 2)
    try:
        wait_for(lambda: compared(page, name) == joins, 30, f"run {name} to {'join' if joins else 'leave'} the compared runs")
    except AssertionError:
        page.screenshot(path=str(ARTIFACTS / "browser-runs-failure.png"), full_page=True)
        raise
    settle(page)


def overlap(a: dict, b: dict) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


def test_compare_runs_ticks_rows_filters_and_keeps_the_legend_off_the_title(server, browser, runs):
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(server)
    nav = page.get_by_test_id("stSidebarNav")
    nav.wait_for(timeout=60_000)
    nav.get_by_role("link", name="Compare runs", exact=True).click()
    table = page.locator(".st-key-cr_table")
    table.wait_for(timeout=60_000)
    settle(page)
    page.wait_for_timeout(1000)  # the grid draws on a canvas after the element appears
    for job in runs:  # every run of the fixture, wherever its row is
        tick_run(page, table, Path(job.path).name)
    in_box = sorted(c.split(" · ")[0] for c in chips(page))
    assert in_box == sorted(Path(job.path).name for job in runs), in_box
    assert ticked_names(page) == in_box  # the grid's ticks and the box agree
    chart = page.locator(".st-key-chart-compare-accuracy")
    chart.locator(".legend").wait_for(timeout=60_000)
    assert not problems(page), problems(page)
    wait_for(lambda: chart.locator(".legend .traces").count() == len(runs), 30, "one legend entry per ticked run")
    title, legend = chart.locator(".gtitle").bounding_box(), chart.locator(".legend").bounding_box()
    plot = chart.locator(".nsewdrag").first.bounding_box()  # the plot area's drag layer
    assert not overlap(title, legend), (title, legend)
    assert not overlap(plot, legend), (plot, legend)
    assert legend["y"] > plot["y"] + plot["height"]  # under the plot, not over the title
    page.screenshot(path=str(ARTIFACTS / "browser-compare-runs.png"), full_page=True)
    total = page.locator(".st-key-chart-compare-loss .scatterlayer path.js-line").first  # the total loss: "ink"
    assert luminance(total.evaluate("e => getComputedStyle(e).stroke")) < 0.35
    final = page.locator(".st-key-chart-final-accuracy")
    ticks = [float(t.text_content().replace("−", "-")) for t in final.locator(".xtick text").all() if t.text_content().strip()]
    assert ticks and max(ticks) <= 100, ticks
    methods = page.locator(".st-key-cr_methods")  # filter: only the KD students
    methods.click()
    page.get_by_role("option").filter(has_text="KD").first.click()
    page.keyboard.press("Escape")
    settle(page)
    text = page.get_by_test_id("stMainBlockContainer").inner_text()
    assert "2 of " in text and "runs shown" in text  # the two KD students (the lab may have started a teacher too)
    assert chart.locator(".legend .traces").count() == len(runs)  # filtered-out runs stay compared
    kd_names = sorted(Path(job.path).name for job in runs[1:3])
    # the grid redraws its canvas (and the accessible cells read here) a moment after the script ends
    wait_for(lambda: sorted(table_names(page)) == kd_names, 30, "the table to show only the KD students")
    wait_for(lambda: ticked_names(page) == kd_names, 30, "the KD students' rows to stay ticked")
    tick_run(page, table, kd_names[0], joins=False)  # a click on a ticked row unticks it: the run leaves the box
    assert ticked_names(page) == kd_names[1:] and len(chips(page)) == len(runs) - 1
    assert not problems(page), problems(page)
    page.close()


def luminance(css: str) -> float:
    """Relative brightness 0-1 of a CSS ``rgb(r, g, b)`` colour."""
    r, g, b = (int(v) for v in css[css.index("(") + 1:css.index(")")].split(",")[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def test_charts_follow_the_dark_theme_and_keep_run_colours(dark_server, browser, runs):
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(f"{dark_server}/runs")
    table = page.locator(".st-key-cr_table")
    table.wait_for(timeout=60_000)
    settle(page)
    page.wait_for_timeout(1000)
    tick_run(page, table, Path(runs[0].path).name)  # the fixture's teacher
    chart = page.locator(".st-key-chart-compare-accuracy")
    chart.locator(".gtitle").wait_for(timeout=60_000)
    page.wait_for_timeout(500)
    background = chart.locator(".main-svg").first.evaluate("e => getComputedStyle(e).backgroundColor")
    title = chart.locator(".gtitle").evaluate("e => getComputedStyle(e).fill")
    tick = chart.locator(".ytick text").first.evaluate("e => getComputedStyle(e).fill")
    line = chart.locator(".scatterlayer path.js-line").first.evaluate("e => getComputedStyle(e).stroke")
    assert luminance(background) < 0.2 and luminance(title) > 0.7 and luminance(tick) > 0.4, (background, title, tick)
    from kdviz.methods import get_method

    def rgb(hex_colour: str) -> str:
        return "rgb({},{},{})".format(*(int(hex_colour.lstrip("#")[i:i + 2], 16) for i in (0, 2, 4)))

    method_colours = {rgb(get_method(name).colour) for name in ("teacher", "kd", "scratch")}
    assert line.replace(" ", "") in method_colours  # the run keeps its method's colour
    total = page.locator(".st-key-chart-compare-loss .scatterlayer path.js-line").first
    total.wait_for(timeout=30_000)
    assert luminance(total.evaluate("e => getComputedStyle(e).stroke")) > 0.6  # black ink turned light
    assert not problems(page), problems(page)
    page.close()
