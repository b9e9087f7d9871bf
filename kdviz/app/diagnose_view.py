"""The Diagnose section: why a distilled run helped or not, under a page's charts.

Thin: ``kdviz.present.diagnose`` computes the numbers, the warnings, the figures and their
captions from the runs' checkpoints and records; this lays them out in an expander, two charts a
row, the warnings above them. A page calls ``show_diagnosis`` for its distilled run (live or ended).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from kdviz.app.charts import show_chart
from kdviz.app.errors import user_errors
from kdviz.present.diagnose import diagnose, diagnosis_figures

TITLE = "Diagnose: why did KD help or not?"
NO_WARNING = ("None of the usual reasons fires: the teacher's soft targets carry dark knowledge at this T, the "
              "student fits its training images about as well as the teacher, alpha leaves weight on the labels, "
              "and the scratch student has not caught up.")


def show_diagnosis(kd_run: Any, scratch_run: Any = None, runs_root: str | Path | None = None,
                   expanded: bool = False, key: str = "diagnose") -> None:
    """An expander with the diagnosis of ``kd_run`` (a ``Job``, ``RunView``, reader or folder) beside
    ``scratch_run`` (None: the matching finished scratch run beside it, if any); ``runs_root`` is
    searched for runs at other (T, alpha) for the response surface (default: the run's own root)."""
    with st.expander(TITLE, expanded=expanded, icon=":material/troubleshoot:"), user_errors("Diagnose"):
        diagnosis = diagnose(kd_run, scratch_run, runs_root)
        for warning in diagnosis.warnings:
            st.warning(warning.text, icon=":material/report:")
        if not diagnosis.warnings:
            st.success(NO_WARNING, icon=":material/check_circle:")
        if not diagnosis.ended:
            st.caption(f"Read at step {diagnosis.step}, while training: the numbers will move.")
        figures = _figures(diagnosis, key)
        for start in range(0, len(figures), 2):
            for column, item in zip(st.columns(2), figures[start:start + 2]):
                with column:
                    show_chart(item.figure, f"{key}-{item.key}" if key != "diagnose" else item.key, caption=item.caption)
        if diagnosis.surface is None:
            st.caption("The T x alpha surface appears once finished runs of this student, teacher and data exist at "
                       "two or more (T, alpha) settings beside a finished scratch run.")


def _figures(diagnosis, key: str) -> list:
    """``diagnosis_figures``, rebuilt only when the diagnosis changes (building them costs 0.2-0.6 s, and
    every click elsewhere on the page reruns this section)."""
    cache = st.session_state.setdefault("kdviz_diagnosis_figures", {})
    hit = cache.get(key)
    if hit is None or hit[0] != diagnosis.version():
        hit = cache[key] = (diagnosis.version(), diagnosis_figures(diagnosis))
    return hit[1]
