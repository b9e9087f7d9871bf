"""A real JupyterLab in a real (headless) Chromium: lab 1 runs and its plotly widgets render and react.

Starts ``jupyter lab`` on 127.0.0.1 with a random token over a working copy of ``labs/`` (as ``labs/workspace.py`` makes), opens
``01_soft_targets.ipynb``, runs every cell, then checks that the plotly FigureWidgets (anywidget
front end) drew SVG traces in the output area and that moving the temperature slider redraws the
chart, and that the freshly opened lab is not marked modified. Screenshot: ``artifacts/jupyter_01.png``. Needs Debian's Chromium at /usr/bin/chromium
(skipped without it unless ``KDVIZ_REQUIRE_BROWSER=1``). The server is always terminated.
"""
from __future__ import annotations

import importlib.util
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from _support.browser import free_port, launch_chromium, playwright_or_skip

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
NOTEBOOK = "01_soft_targets.ipynb"


def load_workspace():
    """``labs/workspace.py`` (a script beside the notebooks, not a package module)."""
    spec = importlib.util.spec_from_file_location("labs_workspace_for_browser", ROOT / "labs" / "workspace.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

pytestmark = pytest.mark.browser
sync_api = playwright_or_skip()


def _wait_until_up(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"jupyter lab exited with code {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"jupyter lab did not answer {url} within {timeout} s")


@pytest.fixture
def jupyter_server(tmp_path):
    """(base url, token) of a JupyterLab serving a copy of labs/; killed with its kernels afterwards."""
    root = tmp_path / "labs"
    load_workspace().copy_labs(root)  # what `python labs/workspace.py` gives users: a working copy
    port, token = free_port(), secrets.token_hex(16)
    labconfig = tmp_path / "config" / "labconfig"
    labconfig.mkdir(parents=True)  # no "get notified about Jupyter news?" pop-up over the charts
    (labconfig / "page_config.json").write_text('{"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": true}}')
    env = {
        **os.environ, "KDVIZ_RUNS": str(tmp_path / "runs"), "KDVIZ_LAB_EPOCHS": "2",
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"), "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
    }
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--port={port}",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",  # no internet: never ask PyPI about extensions
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
        cmd.append("--allow-root")
    log_path = tmp_path / "jupyter.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(f"{base}/api/status?token={token}", proc, log_path)
        yield base, token
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server's own session: the server and its kernels
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        log.close()


def _chart_title(page, index: int) -> str:
    """The title text of the index-th plotly chart inside the notebook's output areas."""
    return page.locator(".jp-OutputArea-output .js-plotly-plot").nth(index).locator(".gtitle").first.text_content() or ""


def test_soft_targets_lab_renders_live_plotly_widgets(jupyter_server):
    base, token = jupyter_server
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        try:
            page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}")
            page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget "
                                   "&& window.jupyterapp.shell.currentWidget.sessionContext "
                                   "&& window.jupyterapp.shell.currentWidget.sessionContext.session", timeout=120_000)
            page.wait_for_function("window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'", timeout=120_000)
            page.wait_for_timeout(1000)  # kernel info has arrived: a stale language_info would now mark it modified
            assert page.evaluate("window.jupyterapp.shell.currentWidget.context.model.dirty") is False, \
                "JupyterLab marked the freshly opened lab modified (issue 14 bug 11)"
            ok = page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            assert ok is not False, "a cell of the notebook failed"
            # Every code cell has run: no "[*]" prompt left and no error output.
            page.wait_for_function(
                "[...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].every(p => /\\[\\d+\\]/.test(p.textContent))",
                timeout=240_000)
            assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'] .ansi-red-fg").count() == 0
            assert page.locator(".jp-OutputArea-output .jp-RenderedText[data-mime-type*='error']").count() == 0

            # The widget output: ipywidgets views with plotly charts drawn by the anywidget front end.
            explorer = page.locator(".jp-OutputArea-output .widget-vbox").first
            explorer.wait_for(state="visible", timeout=120_000)
            explorer.scroll_into_view_if_needed()
            page.wait_for_function("""() => {
                const box = document.querySelector('.jp-OutputArea-output .widget-vbox');
                return box && box.querySelectorAll('.js-plotly-plot').length === 3
                    && box.querySelectorAll('.js-plotly-plot .trace.bars path').length >= 10
                    && box.querySelectorAll('.js-plotly-plot .scatterlayer .trace path.js-line').length >= 1;
            }""", timeout=120_000)  # image, ten probability bars, entropy curve: real SVG traces
            bars_title = lambda: explorer.locator(".js-plotly-plot").nth(1).locator(".gtitle").first.text_content() or ""  # noqa: E731
            assert "T = 4" in bars_title()

            # Type an exact T (as a user can) and watch the chart follow.
            exact = explorer.locator(".widget-text", has_text="exact T").locator("input").first
            exact.scroll_into_view_if_needed()
            exact.fill("20")
            exact.press("Enter")
            page.wait_for_function(
                "[...document.querySelectorAll('.widget-vbox .js-plotly-plot .gtitle')].some(t => t.textContent.includes('T = 20'))",
                timeout=30_000)
            assert "T = 20" in bars_title()
            explorer.scroll_into_view_if_needed()
            page.wait_for_timeout(500)
            explorer.screenshot(path=str(ARTIFACTS / "jupyter_01.png"))
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "jupyter_01_failure.png"), full_page=True)
            raise
        finally:
            browser.close()
