"""The Streamlit lab's UI package (may import streamlit; the core never imports this).

``app.py`` at the repository root builds the navigation from ``PAGES``; each page in ``pages/`` is
a thin script over these helpers: ``sidebar`` (shared choices), ``session`` (per-session jobs and
the watchdog that stops them when a tab closes), ``teacher`` (the cached background teacher),
``charts`` (toolbar export and CSV), ``errors`` (clear messages instead of tracebacks), ``live``
(incremental reading of a run's store) and ``temperature`` (the soft-targets page's compute).
"""
