"""Issue 14, bug 9 in a real browser: the FSP page's long MNIST teacher starts only on request, can be
cancelled, and continues from its checkpoint after a reload and after the server died.

Debian's Chromium (Playwright) against `streamlit run app.py` with the product's own settings (a 3-epoch
ResNet-20 teacher on MNIST, 2,814 steps: minutes on two cores; the 60 s auto-start limit). The test
reads the run folder itself (status.json, the checkpoint) to check what the page says. Skipped without
/usr/bin/chromium (unless KDVIZ_REQUIRE_BROWSER=1) or without the MNIST IDX files
(``$KDVIZ_TEST_MNIST`` or /work/shared/data/mnist).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from kdviz.engine import load_checkpoint
from kdviz.engine.run_reader import read_status

from _support.browser import free_port, playwright_or_skip
from _support.polling import wait_for as poll

pytestmark = pytest.mark.browser
sync_api = playwright_or_skip()
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
MNIST = Path(os.environ.get("KDVIZ_TEST_MNIST", "/work/shared/data/mnist"))
NAME = "teacher-resnet20-8-16-32-mnist"  # the FSP page's default teacher on MNIST
CONTINUE = re.compile(r"Continue \(from step ([\d,]+) of 2,814\)")


def wait_for(predicate, timeout: float, what: str):
    return poll(predicate, timeout, what, pause=0.25)


class Lab:
    """`streamlit run app.py` on 127.0.0.1 over one runs folder; started again after a kill (a restart)."""

    def __init__(self, runs_root: Path) -> None:
        self.runs_root, self.proc, self.url, self.starts = runs_root, None, "", 0

    def start(self) -> str:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("KDVIZ_TEACHER_EPOCHS", "KDVIZ_AUTO_START_S")}
        env.update(KDVIZ_RUNS=str(self.runs_root), KDVIZ_DATA=str(MNIST), KDVIZ_SESSION_GRACE_S="2", PYTHONUNBUFFERED="1")
        ARTIFACTS.mkdir(exist_ok=True)
        self.starts += 1
        log = open(ARTIFACTS / f"streamlit-browser-fsp-{self.starts}.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            assert self.proc.poll() is None, "streamlit exited; see artifacts/streamlit-browser-fsp-*.log"
            try:
                return urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2).status == 200
            except OSError:
                return False

        wait_for(healthy, 60, "streamlit to start")
        return self.url

    def kill(self) -> None:
        """SIGKILL: the process dies mid-run, as in a crash or a machine reboot (no clean stop)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(20)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def lab(runs_root):
    if not MNIST.is_dir():
        pytest.skip(f"no MNIST IDX files in {MNIST}")
    lab = Lab(runs_root)
    yield lab
    lab.stop()


def main(page):
    return page.get_by_test_id("stMainBlockContainer")


def settle(page) -> None:
    for _ in range(2):
        time.sleep(0.4)
        wait_for(lambda: page.get_by_test_id("stApp").get_attribute("data-test-script-state") == "notRunning", 180,
                 "the page's script run")


def fsp_on_mnist(browser, url: str):
    """A new tab on the FSP page, with MNIST chosen in the sidebar."""
    page = browser.new_page(viewport={"width": 1400, "height": 1900})
    page.goto(f"{url}/fsp")
    heading = main(page).locator("h1").first
    wait_for(lambda: heading.count() and heading.inner_text().startswith("FSP"), 120, "the FSP page")
    settle(page)
    dataset = page.get_by_test_id("stSidebar").get_by_role("combobox", name="Dataset")
    dataset.click()
    page.get_by_role("option").filter(has_text=re.compile(r"^MNIST")).first.click()
    wait_for(lambda: main(page).get_by_text(f"{NAME}", exact=False).count(), 180, "the MNIST teacher's panel")
    settle(page)
    return page


def teacher_folders(lab: Lab) -> list[Path]:
    return sorted(p for p in lab.runs_root.iterdir() if p.name.endswith(NAME))


def checkpoint_step(folder: Path) -> int:
    return int(load_checkpoint(folder / "checkpoints" / "last.pt")["step"])


def continue_step(page) -> int:
    """k of the page's "Continue (from step k of 2,814)" button."""
    button = page.get_by_role("button", name="Continue (from step")
    wait_for(lambda: button.count(), 120, "the Continue button")
    return int(CONTINUE.search(button.first.inner_text()).group(1).replace(",", ""))


def test_long_teacher_starts_on_request_cancels_and_continues_after_reload_and_restart(lab, browser):
    page = fsp_on_mnist(browser, lab.start())
    start = page.get_by_role("button", name="Start training the teacher")
    wait_for(lambda: start.count(), 120, "the teacher's Start button")
    text = main(page).inner_text()
    assert "is not trained yet" in text and re.search(r"2,814 steps x \d+ ms per step, measured just now", text), text
    time.sleep(3)  # nothing starts by itself: no run folder, no job
    assert not teacher_folders(lab)

    start.first.click()
    folder = wait_for(lambda: (teacher_folders(lab) or [None])[0], 60, "the teacher's run folder")
    wait_for(lambda: read_status(folder).get("step", 0) >= 3, 240, "the teacher's first steps")
    page.get_by_role("button", name="Cancel training the teacher").first.click()
    wait_for(lambda: read_status(folder).get("state") == "stopped", 60, "the teacher to stop")
    k = read_status(folder)["step"]
    assert k >= 3 and checkpoint_step(folder) == k  # stopped after a step, its checkpoint kept
    assert continue_step(page) == k

    page.reload()  # a new session finds the stopped run on disk
    settle(page)
    if not main(page).get_by_text(NAME, exact=False).count():
        page.close()
        page = fsp_on_mnist(browser, lab.url)
    assert continue_step(page) == k
    page.get_by_role("button", name="Continue (from step").first.click()
    wait_for(lambda: read_status(folder).get("state") == "running" and checkpoint_step(folder) > k, 120,
             "the continued run's next checkpoint")
    page.close()
    lab.kill()  # the server dies mid-run
    assert read_status(folder)["state"] == "interrupted"
    saved = checkpoint_step(folder)

    page = fsp_on_mnist(browser, lab.start())  # a restarted server offers to continue, not to start over
    assert continue_step(page) == saved > k
    assert "was interrupted (its process ended)" in main(page).inner_text()
    assert teacher_folders(lab) == [folder]
    page.get_by_role("button", name="Continue (from step").first.click()
    steps = []

    def past_checkpoint() -> bool:
        status = read_status(folder)
        if status.get("state") == "running":
            steps.append(int(status.get("step", 0)))
        return bool(steps) and steps[-1] > saved + 1

    wait_for(past_checkpoint, 180, "the continued run's steps")
    assert min(s for s in steps if s > 0) >= saved  # from the checkpoint, never from step 0
    page.get_by_role("button", name="Cancel training the teacher").first.click()
    wait_for(lambda: read_status(folder).get("state") == "stopped", 60, "the teacher to stop again")
    assert teacher_folders(lab) == [folder]
    page.close()
