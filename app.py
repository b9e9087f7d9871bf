"""kdviz lab: `streamlit run app.py` (or `bash scripts/lab.sh`).

One page per topic. The method pages come from the method registry (each ``MethodSpec.pages``
names a file in ``kdviz/app/pages/``), so a new method adds its page without touching this file;
"Compare runs" and "Reproduce" (the papers' tables over seeds) belong to no single method. The sidebar (dataset, teacher and student sizes, chart
image format) is shared by every page.
"""
from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning: on a shared 2-core machine spinning threads made
# small training steps many times slower. Must be set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import streamlit as st  # noqa: E402

from kdviz.app import session  # noqa: E402
from kdviz.app.components import keep_settings  # noqa: E402
from kdviz.app.errors import user_errors  # noqa: E402
from kdviz.app.navigation import lab_sections  # noqa: E402
from kdviz.app.sidebar import render_sidebar  # noqa: E402

st.set_page_config(page_title="kdviz lab", page_icon=":material/science:", layout="wide")

PAGES = {section: [st.Page(p.path, title=p.title, icon=p.icon, default=p.default) for p in pages]
         for section, pages in lab_sections().items()}

page = st.navigation(PAGES, expanded=True)  # every page in view: collapsed, sixteen were cut to ten
session.attach()  # ?lab=<id> in the URL: a reloaded tab finds its runs again
keep_settings()  # before any widget: every page's settings survive the runs that do not draw them
with st.sidebar:
    st.markdown("### :material/science: kdviz lab")
    st.caption("Knowledge distillation, pruning and quantization, live.")
render_sidebar()
session.touch()
with user_errors(page.title):
    page.run()
