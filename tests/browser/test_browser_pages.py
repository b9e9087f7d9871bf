"""Every page of the lab, as the method registry lists it, in a real browser: reached by clicking
its link in the sidebar, titled as registered, showing no exception; then a reload keeps the page."""
from __future__ import annotations

import pytest

from _support.browser import playwright_or_skip
from _support.polling import wait_for
from kdviz.app.navigation import lab_pages

pytestmark = pytest.mark.browser
playwright_or_skip()
PAGES = lab_pages()


def script_done(page) -> bool:
    """Streamlit's app root says whether a script run is under way (its own end-to-end tests read it)."""
    return page.get_by_test_id("stApp").get_attribute("data-test-script-state") == "notRunning"


def exceptions(page) -> list[str]:
    """Raw exceptions, and the one-line message ``kdviz.app.errors`` shows for an unexpected error."""
    found = [e.inner_text()[:300] for e in page.get_by_test_id("stException").all()]
    main = page.get_by_test_id("stMainBlockContainer")
    for text in ("something unexpected went wrong", "Traceback"):
        found += [e.inner_text()[:300] for e in main.get_by_text(text).all()]
    return found


def test_every_registered_page_is_reached_from_the_sidebar_and_shows_no_exception(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(server)
    nav = page.get_by_test_id("stSidebarNav")
    nav.wait_for(timeout=60_000)
    assert nav.get_by_role("link").count() == len(PAGES)
    heading = page.get_by_test_id("stMainBlockContainer").locator("h1").first
    seen = []
    for lab_page in PAGES:
        before = heading.inner_text().strip() if heading.count() else ""
        nav.get_by_role("link", name=lab_page.title, exact=True).click()
        if lab_page.default and not seen:
            wait_for(lambda: heading.count(), 60, "the default page's title")
        else:  # every page has its own title: wait until the new one replaced the old one
            wait_for(lambda: heading.count() and heading.inner_text().strip() != before, 60, f"the {lab_page.title!r} page")
        seen.append(heading.inner_text().strip())
        wait_for(lambda: script_done(page), 120, f"the {lab_page.title!r} page's script to finish")
        assert not exceptions(page), f"{lab_page.title}: {exceptions(page)}"
    assert len(set(seen)) == len(PAGES), f"some pages share a title or were not reached: {seen}"
    url = page.url  # the last page: a reload lands on it again
    page.reload()
    page.get_by_test_id("stSidebarNav").wait_for(timeout=60_000)
    assert page.url == url
    wait_for(lambda: page.get_by_test_id("stMainBlockContainer").locator("h1").count() and script_done(page), 60,
             "the page after a reload")
    assert not exceptions(page)
    page.close()
