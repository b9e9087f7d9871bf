"""kdviz lab: `streamlit run app.py` (or `bash scripts/lab.sh`).

One page per topic, listed in ``PAGES``: a later topic adds its page with one line. The sidebar
(dataset, teacher and student sizes, chart image format) is shared by every page.
"""
from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning: on a shared 2-core machine spinning threads made
# small training steps many times slower. Must be set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import streamlit as st  # noqa: E402

from kdviz.app import session  # noqa: E402
from kdviz.app.errors import user_errors  # noqa: E402
from kdviz.app.sidebar import render_sidebar  # noqa: E402

st.set_page_config(page_title="kdviz lab", page_icon=":material/science:", layout="wide")

PAGES = [
    st.Page("kdviz/app/pages/soft_targets.py", title="Soft targets", icon=":material/thermostat:", default=True),
    st.Page("kdviz/app/pages/train_student.py", title="Train a student", icon=":material/school:"),
    st.Page("kdviz/app/pages/runs.py", title="Compare runs", icon=":material/stacked_line_chart:"),
    st.Page("kdviz/app/pages/pruning.py", title="Pruning", icon=":material/content_cut:"),
    st.Page("kdviz/app/pages/quantization.py", title="Quantization", icon=":material/grain:"),
    st.Page("kdviz/app/pages/deep_compression.py", title="Deep Compression", icon=":material/compress:"),
    st.Page("kdviz/app/pages/fsp.py", title="FSP matrices", icon=":material/grid_on:"),
]

page = st.navigation(PAGES)
with st.sidebar:
    st.markdown("### :material/science: kdviz lab")
    st.caption("Knowledge distillation, pruning and quantization, live.")
render_sidebar()
session.touch()
with user_errors(page.title):
    page.run()
