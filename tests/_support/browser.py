"""Browser-test plumbing: Debian's Chromium driven by Playwright, free local ports, and a real app server."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def playwright_or_skip():
    """``playwright.sync_api``; call at module level: the module is skipped when Chromium or Playwright
    is missing, and fails instead when ``KDVIZ_REQUIRE_BROWSER=1`` asks for the browser tests."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("KDVIZ_REQUIRE_BROWSER") == "1":
            pytest.fail(f"KDVIZ_REQUIRE_BROWSER=1 but {CHROMIUM} is missing", pytrace=False)
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)
    return pytest.importorskip("playwright.sync_api")


def launch_chromium(playwright):
    """A headless Chromium from ``sync_playwright()``: no sandbox (containers), no GPU, no network chatter."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_streamlit(cwd: Path, env: dict, log_path: Path, *extra: str, timeout: float = 90):
    """``(process, url)`` of a real ``streamlit run app.py`` in ``cwd`` on a free 127.0.0.1 port
    (``extra``: more streamlit options, e.g. a theme), its output in ``log_path``, once it answers its
    health check. A server that exits or does not answer within ``timeout`` s raises RuntimeError with
    the end of its log. The caller terminates it (tests, benches and ``scripts/screenshots.py`` share this)."""
    port = free_port()
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
         *extra], cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()  # the child holds its own copy of the file
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                return proc, url
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"streamlit did not start within {timeout:g} s:\n{Path(log_path).read_text()[-2000:]}")
        time.sleep(0.3)


def stop_streamlit(proc) -> None:
    """Terminate a server from :func:`start_streamlit` (kill it if it does not end within 20 s)."""
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


ONE_PAGE_ENV = {"KDVIZ_SESSION_GRACE_S": "2", "PYTHONUNBUFFERED": "1", "KDVIZ_TEACHER_EPOCHS": "1",
                "KDVIZ_REFRESH_S": "0.5"}


def one_page_server(request, folder: Path, page: Path, title: str, runs_root: Path, log_path: Path, **env: str) -> str:
    """``streamlit run`` of a one-page lab (``page`` under ``title``, run as ``app.py`` runs pages) in
    ``folder``, writing runs to ``runs_root``, with ``ONE_PAGE_ENV`` (the tests' short grace, one
    teacher epoch, a 0.5 s refresh) and ``env`` on top (``env`` wins: e.g. ``KDVIZ_TEACHER_EPOCHS="2"``);
    stopped when ``request``'s scope ends. Returns its URL."""
    from _support.apptest import harness

    (folder / "app.py").write_text(harness((page, title)))
    env = {**os.environ, **ONE_PAGE_ENV, "KDVIZ_RUNS": str(runs_root), **env}
    log_path.parent.mkdir(exist_ok=True)
    proc, url = start_streamlit(folder, env, log_path, timeout=60)
    request.addfinalizer(lambda: stop_streamlit(proc))
    return url
