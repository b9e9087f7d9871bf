"""Take a screenshot of every lab page in headless Chromium, after pressing its Start button, and of
every widget of the labs in JupyterLab, for the README (docs/images/) and for looking at the lab as a
user would.

    .venv/bin/python scripts/screenshots.py [--out docs/images] [--wait 40] [--finish 300] [--pages attention,fsp]
    .venv/bin/python scripts/screenshots.py --jupyter [01_soft_targets.ipynb,02_distill_a_student.ipynb]

Pages: it starts `streamlit run app.py` on 127.0.0.1 with a fresh runs folder, opens each page listed
by kdviz/app/navigation.py (so a new method's page is included; Compare runs last, with the Train a
student race picked), presses the page's primary button (Start..., Compress; a long teacher's "Start
training the teacher" offer first when that is all the page shows), lets the live charts fill for
``--wait`` seconds and saves <page>.png; once the run has finished and the replay bars show (within
``--finish`` seconds) it saves <page>_finished.png too, unless the run had already ended by the live
picture. The soft-targets player (an iframe component) is given time to draw.

Jupyter: ``labs/workspace.py --no-start`` makes a working copy, ``jupyter lab`` serves it, and each lab
runs every cell in its real kernel; each widget a cell makes is saved as jupyter_<widget_class>.png
(TemperatureExplorer -> jupyter_temperature_explorer.png), the first replay bar as
jupyter_replay_bar.png. A page that shows a Streamlit exception, or a lab with an error output, is
reported and the script exits 1. Needs Debian's chromium (/usr/bin/chromium) and Playwright (the dev
extras).
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from _support.browser import CHROMIUM, free_port, start_streamlit  # noqa: E402  (the tests' server and port helpers)

PRIMARY = re.compile(r"^(Start|Compress)")  # the button that starts a page's training


def start_server(runs: Path, log: Path) -> tuple[subprocess.Popen, str]:
    try:
        return start_streamlit(ROOT, dict(os.environ, KDVIZ_RUNS=str(runs), PYTHONUNBUFFERED="1"), log)
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None


def _page_start_button(main):
    """The page's own start button (Start pruning, Compress...), or a long teacher's "Start training the
    teacher (about N min)" offer when that is all the page shows; never "Start over from step 0"."""
    for button in main.get_by_role("button").all():
        # The label's last line: a material icon is drawn from its name ("play_arrow") on a line before it.
        name = (button.inner_text().strip().splitlines() or [""])[-1].strip()
        if PRIMARY.search(name) and not name.startswith("Start over"):
            return button, name
    return None, ""


def press_primary(page, timeout_s: float) -> str | None:
    """Click the page's primary button once it is enabled (the teacher or baseline is ready). A long
    teacher's Start offer is pressed first, then the page's own Start once that teacher is ready."""
    main = page.get_by_test_id("stMainBlockContainer")
    deadline = time.monotonic() + timeout_s
    seen_at = time.monotonic()
    pressed_teacher = False
    while time.monotonic() < deadline:
        try:
            button, name = _page_start_button(main)
            if button is not None and button.is_enabled():
                button.click()
                if name.startswith("Start training the"):
                    pressed_teacher, seen_at = True, time.monotonic()
                    time.sleep(2.0)
                    continue
                return name
        except Exception:  # a rerun replaced the button between reading and clicking it
            pass
        if button is None and not pressed_teacher and time.monotonic() - seen_at > 15.0:
            return None  # a page without a start button (the explorer pages, Compare runs)
        time.sleep(1.0)
    return None


def _finished(page) -> bool:
    """True once a finished run shows a replay bar (a plotly chart with a Play button) and no job runs."""
    has_play = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].some(gd =>
        gd.layout && gd.layout.updatemenus && gd.layout.updatemenus.length)""")
    running = page.get_by_role("button", name=re.compile("Running")).count() > 0
    return bool(has_play) and not running


def _save(page, out: Path) -> None:
    """Screenshot the whole main column (the viewport grown to it, scrolled to the top)."""
    height = page.evaluate("document.querySelector('[data-testid=\"stMainBlockContainer\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": min(6000, int(height) + 140)})
    page.evaluate("for (const el of document.querySelectorAll('[data-testid=\"stMain\"], section.main')) el.scrollTo(0, 0);"
                  "window.scrollTo(0, 0)")
    page.mouse.move(5, 5)
    time.sleep(2.0)
    page.screenshot(path=str(out))


def pick_runs_to_compare(page) -> None:
    """On Compare runs: put the Train-a-student race (a KD student and the scratch student started with
    it, "<name> · <method>" in the box) in "Runs to compare", so the picture shows the charts too."""
    box = page.get_by_test_id("stMainBlockContainer").get_by_role("combobox", name="Runs to compare")
    if not box.count():
        print("runs: no 'Runs to compare' box", flush=True)
        return

    def options_for(text: str) -> list[str]:  # the box lists a window of its options: filter by typing
        box.first.click()
        box.first.fill(text)
        time.sleep(1.5)
        return [o.inner_text().strip() for o in page.get_by_role("option").all()]

    kd = next((o for o in options_for("· KD") if "· KD" in o), None)
    stamp = kd[:15] if kd else "-"  # the race's two runs start in the same second: YYYYMMDD-HHMMSS
    scratch = next((o for o in options_for(stamp) if "scratch" in o and o != kd), None) if kd else None
    print(f"runs: comparing {kd!r} and {scratch!r}", flush=True)
    for wanted, typed in ((kd, "· KD"), (scratch, stamp)):
        if wanted:
            options_for(typed)
            page.get_by_role("option", name=wanted, exact=True).first.click()
            time.sleep(2.0)
    page.keyboard.press("Escape")
    time.sleep(8.0)


def shoot(browser, url: str, path: str, out: Path, wait_s: float, finish_s: float) -> list[str]:
    """Screenshot one page (live, ``wait_s`` after Start) and, for a page with a Start button, again once
    its run has finished and the replay bars show (``<page>_finished.png``); the Streamlit exceptions
    it shows, if any."""
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    page.goto(f"{url}/{path}")
    page.get_by_test_id("stMainBlockContainer").wait_for(timeout=60_000)
    time.sleep(3.0)
    pressed = press_primary(page, 600.0)
    time.sleep(wait_s if pressed else 8.0)  # the soft-targets player is an iframe component: let it draw
    if path == "runs":
        pick_runs_to_compare(page)
    _save(page, out)
    errors = [e.inner_text()[:300] for e in page.get_by_test_id("stException").all()]
    note = "no start button"
    if pressed and _finished(page):  # a short run ended before the live picture: that picture is its replay
        note = f"pressed {pressed}; finished before the live picture"
    elif pressed:
        deadline = time.monotonic() + finish_s
        while time.monotonic() < deadline and not _finished(page):
            time.sleep(2.0)
        finished = out.with_name(f"{out.stem}_finished.png")
        if _finished(page):
            time.sleep(3.0)
            _save(page, finished)
            note = f"pressed {pressed}; finished -> {finished.name}"
        else:
            note = f"pressed {pressed}; not finished within {finish_s:.0f} s"
        errors += [e.inner_text()[:300] for e in page.get_by_test_id("stException").all()]
    page.close()
    print(f"{path or '/'}: {note} -> {out}", flush=True)
    return errors


JUPYTER_LABS = ("01_soft_targets.ipynb", "02_distill_a_student.ipynb", "04_pruning.ipynb")
WIDGET_CLASS = re.compile(r"\b([A-Z][A-Za-z]*(?:Explorer|Monitor|Comparison|Player))\(")
# Every code cell has run: no "[*]" prompt left.
JS_CELLS_DONE = "[...window.jupyterapp.shell.currentWidget.node.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].every(p => /\\[\\d+\\]/.test(p.textContent))"


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def start_jupyter(root: Path, runs: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """``jupyter lab`` over a working copy of labs/ (``labs/workspace.py``), as users get it."""
    subprocess.run([sys.executable, str(ROOT / "labs" / "workspace.py"), "--dir", str(root / "labs"), "--no-start"],
                   check=True, stdout=subprocess.DEVNULL)
    tracker = root / "settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)  # every cell drawn, not only those in view, so each widget can be found
    (tracker / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    (root / "config" / "labconfig").mkdir(parents=True)
    (root / "config" / "labconfig" / "page_config.json").write_text(
        '{"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": true}}')
    port, token = free_port(), "kdvizshots"
    env = dict(os.environ, KDVIZ_RUNS=str(runs), JUPYTER_CONFIG_DIR=str(root / "config"),
               JUPYTER_RUNTIME_DIR=str(root / "runtime"), JUPYTERLAB_WORKSPACES_DIR=str(root / "workspaces"),
               JUPYTERLAB_SETTINGS_DIR=str(root / "settings"))
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root / 'labs'}",
           "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    proc = subprocess.Popen(cmd, cwd=root / "labs", env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2).status == 200:
                # a workspace of its own per notebook (reset): only that lab open, nothing restored
                return proc, f"{url}/lab/workspaces/shot-{{0}}/tree/{{1}}?reset&token={token}"
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"jupyter lab did not start within 120 s; see {log}")


def shoot_lab(browser, url: str, notebook: str, out: Path) -> list[str]:
    """Run every cell of one lab and save each widget's output as ``jupyter_<widget>.png`` (the widget's
    class in snake case, from the cell that makes it), plus ``jupyter_replay_bar.png`` for the first
    replay bar seen; the error outputs, if any."""
    page = browser.new_page(viewport={"width": 1300, "height": 1200})
    page.set_default_timeout(120_000)
    page.goto(url.format(Path(notebook).stem, notebook))
    page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget"
                           f" && window.jupyterapp.shell.currentWidget.context.path.endsWith('{notebook}')"
                           " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                           " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
                           timeout=180_000)
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(JS_CELLS_DONE, timeout=900_000)
    time.sleep(8.0)  # the monitors' last redraw and their replay bars
    errors = [e.inner_text()[:300] for e in page.locator(".jp-OutputArea-output[data-mime-type*='error']").all()]
    for cell in page.locator(".jp-CodeCell").all():
        try:
            found = WIDGET_CLASS.search(cell.locator(".jp-InputArea").inner_text(timeout=5_000))
        except Exception:  # a cell JupyterLab has not drawn
            continue
        widget = cell.locator(".jp-OutputArea-output .widget-vbox").first
        if not found or not widget.count():
            continue
        box = widget.bounding_box() or {"height": 900}
        page.set_viewport_size({"width": 1300, "height": int(min(6000, max(1200, box["height"] + 400)))})
        widget.scroll_into_view_if_needed()  # the whole widget in view: the notebook clips what is not
        time.sleep(1.5)
        name = out / f"jupyter_{snake(found.group(1))}.png"
        widget.screenshot(path=str(name))
        print(f"{notebook}: {found.group(1)} -> {name}", flush=True)
        bar = cell.locator(".widget-hbox:has(> .widget-play)").first
        replay = out / "jupyter_replay_bar.png"
        if bar.count() and bar.is_visible() and not replay.exists():
            bar.screenshot(path=str(replay))
            print(f"{notebook}: replay bar -> {replay}", flush=True)
    page.close()
    return errors


def jupyter_shots(out: Path, labs: tuple[str, ...]) -> dict[str, list[str]]:
    """Every widget of ``labs`` in a real JupyterLab and kernel; the errors per lab."""
    from playwright.sync_api import sync_playwright

    failures = {}
    with tempfile.TemporaryDirectory(prefix="kdviz-jshots-") as tmp:
        (out / "jupyter_replay_bar.png").unlink(missing_ok=True)
        proc, url = start_jupyter(Path(tmp), Path(tmp) / "runs", Path(tmp) / "jupyter.log")
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
                for notebook in labs:
                    errors = shoot_lab(browser, url, notebook, out)
                    if errors:
                        failures[notebook] = errors
                browser.close()
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)
    return failures


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    from kdviz.app.navigation import lab_pages

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--wait", type=float, default=40.0, help="seconds of live training before each screenshot")
    parser.add_argument("--finish", type=float, default=300.0,
                        help="seconds to wait for a started run to finish, for the replay screenshot")
    parser.add_argument("--pages", default="", help="comma-separated page modules (default: every page)")
    parser.add_argument("--jupyter", nargs="?", const=",".join(JUPYTER_LABS), default="",
                        help="shoot the widgets of these labs in JupyterLab instead (default: " + ", ".join(JUPYTER_LABS) + ")")
    args = parser.parse_args(argv)
    if args.jupyter:
        args.out.mkdir(parents=True, exist_ok=True)
        failures = jupyter_shots(args.out, tuple(args.jupyter.split(",")))
        for lab, errors in failures.items():
            print(f"{lab}: an error output:\n" + "\n".join(errors), file=sys.stderr)
        return 1 if failures else 0
    wanted = {p for p in args.pages.split(",") if p}
    pages = [p for p in lab_pages() if not wanted or Path(p.path).stem in wanted]
    pages.sort(key=lambda p: Path(p.path).stem == "runs")  # Compare runs last: it shows the runs just made
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
                    errors = shoot(browser, url, "" if lab_page.default else stem, args.out / f"{stem}.png", args.wait,
                                   args.finish)
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
