"""The sidebar: every page in one of three sections, all in view (sixteen pages in one collapsed list
showed ten behind "View more", and the browser test of every page missed the rest)."""
from dataclasses import replace

import pytest

from _support.apptest import lab_app
import kdviz.app.navigation as navigation
from kdviz.methods.base import SECTIONS


def test_pages_are_grouped_into_the_three_sections_in_order():
    sections = navigation.lab_sections()
    assert list(sections) == list(SECTIONS)
    titles = {section: [page.title for page in pages] for section, pages in sections.items()}
    assert {"Soft targets", "Which distillation?", "Specialists", "ProjectionNet", "Transformers"} <= set(titles["Distillation"])
    assert {"Pruning", "Lottery tickets & N:M", "Quantization-aware training", "Post-training quantization",
            "Deep Compression"} <= set(titles["Compression"])
    assert titles["Runs and papers"] == ["Compare runs", "Reproduce", "Sweeps", "Your model"]
    assert [p.title for p in navigation.lab_pages()] == [t for section in SECTIONS for t in titles[section]]


def test_a_page_in_an_unknown_section_is_refused_by_name(monkeypatch):
    bad = replace(navigation.SHARED_PAGES[0], section="Misc")
    monkeypatch.setattr(navigation, "SHARED_PAGES", (bad, *navigation.SHARED_PAGES[1:]))
    with pytest.raises(ValueError, match="'Compare runs': 'Misc'"):
        navigation.lab_pages()


def test_the_app_builds_its_sectioned_navigation(lab_env):
    at = lab_app(60).run()
    assert not at.exception
    assert at.title and at.title[0].value  # the default page ran inside the sectioned navigation
