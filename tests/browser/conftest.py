"""Fixtures of the browser tests: a real `streamlit run app.py` on 127.0.0.1 and a headless Chromium."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from _support.browser import launch_chromium, playwright_or_skip, start_streamlit, stop_streamlit

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("browser-runs")


def start_app_server(request, runs_root: Path, *extra: str, log_name: str = "streamlit-browser-test.log") -> str:
    """A real `streamlit run app.py` on 127.0.0.1 (``extra``: more streamlit options, e.g. a theme),
    terminated when ``request``'s scope ends; returns its URL once it answers its health check."""
    env = dict(os.environ, KDVIZ_RUNS=str(runs_root), KDVIZ_SESSION_GRACE_S="2", PYTHONUNBUFFERED="1")
    ARTIFACTS.mkdir(exist_ok=True)
    proc, url = start_streamlit(REPO, env, ARTIFACTS / log_name, *extra, timeout=60)
    request.addfinalizer(lambda: stop_streamlit(proc))
    return url


@pytest.fixture(scope="module")
def server(request, runs_root) -> str:
    """A real `streamlit run app.py` on 127.0.0.1, always terminated at the end."""
    return start_app_server(request, runs_root)


@pytest.fixture(scope="module")
def dark_server(request, runs_root) -> str:
    """A second server in Streamlit's dark theme, on the same runs folder (so it finds the teacher the
    other tests of the module trained)."""
    return start_app_server(request, runs_root, "--theme.base", "dark", log_name="streamlit-dark-test.log")


@pytest.fixture(scope="module")
def browser():
    sync_api = playwright_or_skip()
    with sync_api.sync_playwright() as pw:
        b = launch_chromium(pw)
        yield b
        b.close()
