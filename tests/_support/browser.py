"""Browser-test plumbing: Debian's Chromium driven by Playwright, and free local ports for servers."""
from __future__ import annotations

import os
import socket
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
