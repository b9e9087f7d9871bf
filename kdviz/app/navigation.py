"""The lab's page list: every registered method's pages, plus the pages no single method owns.

``app.py`` turns these into ``st.Page`` objects. A method lists its pages in ``MethodSpec.pages``
(a file in ``kdviz/app/pages/``, a title, an icon, an order), so adding a method with its own page
edits neither ``app.py`` nor this module.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..methods import PageSpec, all_methods
from ..methods.base import SECTIONS

PAGES_DIR = Path(__file__).resolve().parent / "pages"

# Pages that belong to no single method: comparing any runs side by side, reproducing the papers' tables,
# post-training quantization of any finished run.
SHARED_PAGES = (PageSpec("runs", "Compare runs", ":material/stacked_line_chart:", order=20, section="Runs and papers"),
                PageSpec("reproduce", "Reproduce", ":material/fact_check:", order=25, section="Runs and papers"),
                PageSpec("sweeps", "Sweeps", ":material/grid_on:", order=27, section="Runs and papers"),
                PageSpec("your_model", "Your model", ":material/upload_file:", order=30, section="Runs and papers"),
                PageSpec("ptq", "Post-training quantization", ":material/tune:", order=42, section="Compression"))


@dataclass(frozen=True)
class LabPage:
    path: str
    title: str
    icon: str
    default: bool
    section: str = SECTIONS[0]


def lab_pages() -> list[LabPage]:
    """Every page of the lab, section by section (``SECTIONS``) and by order within one; a
    ``ValueError`` names a page whose file is missing, whose section is unknown, or a title two pages share."""
    specs = [*SHARED_PAGES, *(page for spec in all_methods() for page in spec.pages)]
    unknown = sorted({f"{page.title!r}: {page.section!r}" for page in specs if page.section not in SECTIONS})
    if unknown:
        raise ValueError(f"page sections must be one of {SECTIONS}; got {', '.join(unknown)}")
    specs.sort(key=lambda page: (SECTIONS.index(page.section), page.order))
    titles = [page.title for page in specs]
    duplicate = sorted({t for t in titles if titles.count(t) > 1})
    if duplicate:
        raise ValueError(f"two pages share the title(s) {duplicate}")
    pages = []
    for page in specs:
        path = PAGES_DIR / f"{page.module}.py"
        if not path.is_file():
            raise ValueError(f"page {page.title!r} names {path}, which does not exist")
        pages.append(LabPage(str(path), page.title, page.icon, page.default, page.section))
    if sum(p.default for p in pages) != 1:
        raise ValueError("exactly one page must be the default page")
    return pages


def lab_sections() -> dict[str, list[LabPage]]:
    """``lab_pages()`` grouped by sidebar section, in ``SECTIONS`` order (sections without pages left out)."""
    sections: dict[str, list[LabPage]] = {}
    for page in lab_pages():
        sections.setdefault(page.section, []).append(page)
    return sections
