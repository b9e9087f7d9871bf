"""Take a screenshot of every lab page in headless Chromium, after pressing its Start button, for the
README (docs/images/<page>.png) and for looking at the lab as a user would.

    .venv/bin/python scripts/screenshots.py [--out docs/images] [--wait 40] [--pages attention,fsp]

It starts `streamlit run app.py` on 127.0.0.1 with a fresh runs folder, opens each page listed by
kdviz/app/navigation.py (so a new method's page is included), waits for its teacher or baseline,
presses the page's primary button (Start, Compress...) if it has one, lets the live charts fill for
``--wait`` seconds and saves the screenshot. A page that shows a Streamlit exception is reported and
the script exits 1. Needs Debian's chromium (/usr/bin/chromium) and Playwright (the dev extras).
"""
from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CHROMIUM = "/usr/bin/chromium"
PRIMARY = re.compile(r"^(Start|Compress)")  # the button that starts a page's training


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(runs: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, KDVIZ_RUNS=str(runs), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"streamlit did not start within 90 s; see {log}")


def press_primary(page, timeout_s: float) -> str | None:
    """Click the page's primary button once it is enabled (the teacher or baseline is ready)."""
    main = page.get_by_test_id("stMainBlockContainer")
    deadline = time.monotonic() + timeout_s
    seen_at = time.monotonic()
    while time.monotonic() < deadline:
        button = main.get_by_role("button", name=PRIMARY)
        present = button.count() > 0
        if present and button.first.is_enabled():
            name = button.first.inner_text().strip()
            button.first.click()
            return name
        if not present and time.monotonic() - seen_at > 15.0:
            return None  # a page without a start button (the explorer pages, Compare runs)
        time.sleep(1.0)
    return None


def shoot(browser, url: str, path: str, out: Path, wait_s: float) -> list[str]:
    """Screenshot one page; the Streamlit exceptions it shows, if any."""
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    page.goto(f"{url}/{path}")
    page.get_by_test_id("stMainBlockContainer").wait_for(timeout=60_000)
    time.sleep(3.0)
    pressed = press_primary(page, 240.0)
    time.sleep(wait_s if pressed else 5.0)
    height = page.evaluate("document.querySelector('[data-testid=\"stMainBlockContainer\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": min(4000, int(height) + 140)})
    page.evaluate("for (const el of document.querySelectorAll('[data-testid=\"stMain\"], section.main')) el.scrollTo(0, 0);"
                  "window.scrollTo(0, 0)")
    page.mouse.move(5, 5)
    time.sleep(2.0)
    page.screenshot(path=str(out))
    errors = [e.inner_text()[:300] for e in page.get_by_test_id("stException").all()]
    page.close()
    print(f"{path or '/'}: {'pressed ' + pressed if pressed else 'no start button'} -> {out}", flush=True)
    return errors


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    from kdviz.app.navigation import lab_pages

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--wait", type=float, default=40.0, help="seconds of live training before each screenshot")
    parser.add_argument("--pages", default="", help="comma-separated page modules (default: every page)")
    args = parser.parse_args(argv)
    wanted = {p for p in args.pages.split(",") if p}
    pages = [p for p in lab_pages() if not wanted or Path(p.path).stem in wanted]
    args.out.mkdir(parents=True, exist_ok=True)
    failures = {}
    with tempfile.TemporaryDirectory(prefix="kdviz-shots-") as runs:
        proc, url = start_server(Path(runs), Path(runs) / "streamlit.log")
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
                for lab_page in pages:
                    stem = Path(lab_page.path).stem
                    errors = shoot(browser, url, "" if lab_page.default else stem, args.out / f"{stem}.png", args.wait)
                    if errors:
                        failures[stem] = errors
                browser.close()
        finally:
            proc.terminate()
            proc.wait(20)
    for stem, errors in failures.items():
        print(f"{stem}: the page shows an exception:\n" + "\n".join(errors), file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
