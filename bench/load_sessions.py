"""Load: several real browser sessions on one Streamlit server (issue 13, "Load").

Starts ``streamlit run app.py`` on 127.0.0.1 and drives Debian's Chromium through Playwright.
**Baseline**: one session alone (once the lab's teacher and pruning baseline have trained) moves the
Pruning page's sparsity slider, each move timed in the browser from the key press to the accuracy chart
naming the new sparsity (the slider is a browser-side player: every stop is evaluated once on the
server, so a move redraws without it) and to the page's exact box showing the stop (the player reports
it and the server reruns the page's fragment: that part feels the load).
**Load**: ``--sessions`` (5) sessions each start a KD and a scratch student on *Train a student*
(one start at a time, so each knows its two run folders), go to *Pruning* through the sidebar (same
session: the jobs go on) and move the slider for ``--seconds`` (120), timed the same way, while
another session reloads *Compare runs* every few seconds. **Drain**: each returns to its Train page
and waits for its runs to end; the tabs close. ``--rounds N`` repeats load and drain: memory that
grows round after round would be a leak, a one-off step is caches.

Reported as tables: each run's state, metric records against what its config implies and ``seq``
1..n without a gap; p50/p95 slider-to-chart time, alone and under load; the server's RSS before
the sessions, at its peak and after each round; every error element on any page (``stException``,
an ``stAlert`` of kind error). Exit status 0 when nothing was lost and no error appeared.

    python bench/load_sessions.py            # 5 sessions, 120 s of slider moves
    python bench/load_sessions.py --quick    # 2 sessions, ~20 s, 2-epoch students: proves it works
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from _load_report import _status, report  # noqa: E402  (the run checks and the tables)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from _support.browser import CHROMIUM, LAUNCH_ARGS, start_streamlit  # noqa: E402

ERRORS_JS = """() => Array.from(document.querySelectorAll(
  '[data-testid="stException"], [data-testid="stAlertContentError"]'), e => e.innerText.slice(0, 300))"""
SLIDER, ENDED = "Sparsity: fraction of weights removed", {"finished", "failed", "stopped", "diverged"}
BOX = "Type an exact sparsity (or drag the slider below)"
CHART_AT_JS = """(value) => Array.from(document.querySelectorAll('.js-plotly-plot')).some(gd => {  // title names value
  const m = (((gd.layout || {}).title || {}).text || '').match(/([0-9.]+)% of weights pruned:/);
  return m !== null && Math.abs(parseFloat(m[1]) - 100 * parseFloat(value)) < 0.3;
})"""


def start_server(runs_root: Path, log_path: Path, extra_env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, KDVIZ_RUNS=str(runs_root), KDVIZ_SESSION_GRACE_S="5", PYTHONUNBUFFERED="1",
               OMP_WAIT_POLICY="PASSIVE", **extra_env)
    return start_streamlit(ROOT, env, log_path)


def rss_mb(pid: int) -> float:
    """Resident memory of the server process (its jobs are threads in it), from /proc."""
    found = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    return int(found.group(1)) / 1024 if found else math.nan


@dataclass
class SessionResult:
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    runs: list[Path] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    loads_ms: list[float] = field(default_factory=list)  # the Compare runs session's page loads
    follow_ms: list[float] = field(default_factory=list)  # key press to the page's exact box showing the stop


async def wait_until(predicate, timeout: float, what: str, pause: float = 0.25):
    """``predicate()``'s first truthy value (awaited when it is a coroutine), polled every ``pause``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        value = await value if inspect.isawaitable(value) else value
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(pause)


async def script_done(page) -> bool:
    return await page.get_by_test_id("stApp").get_attribute("data-test-script-state") == "notRunning"


async def collect_errors(page, result: SessionResult, where: str) -> None:
    for text in await page.evaluate(ERRORS_JS):
        entry = f"{where}: {text.strip()[:200]}"
        if entry not in result.errors:
            result.errors.append(entry)


async def go(page, title: str) -> None:
    """Click the sidebar link ``title`` (same session: a page switch, not a reload) and wait for it."""
    await page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    heading = page.get_by_test_id("stMainBlockContainer").locator("h1").first

    async def shown():
        return await heading.count() and (await heading.inner_text()).strip() == title and await script_done(page)
    await wait_until(shown, 120, f"the {title!r} page")


async def player_frame(page, timeout: float = 600):
    """The Pruning page's browser-side sparsity slider (``kdviz.app.stops_player``), once drawn: it
    appears when the pruning baseline has trained and every stop is evaluated."""
    async def drawn():
        for frame in page.frames:
            if "stops_player" in frame.url and await frame.locator(f"input[aria-label^='{SLIDER}']").count() \
                    and await frame.locator(".kdviz-sp-chart .gtitle").count():
                return frame
        return None
    return await wait_until(drawn, timeout, "the sparsity player")


async def move_sliders(page, seconds: float, result: SessionResult, think_s: float) -> None:
    """Move the Pruning page's sparsity slider one stop at a time for ``seconds``. The player redraws in
    the browser (timed from the key press to the accuracy chart naming the new sparsity, polled every
    frame), then reports the stop: the server reruns the page's fragment and the exact box follows
    (timed too: that is where the training sessions' load shows)."""
    frame = await player_frame(page)
    thumb = frame.locator("#kdviz-sp-input")
    box = page.get_by_role("spinbutton", name=BOX)
    await frame.wait_for_function(CHART_AT_JS, arg=await frame.locator(".kdviz-sp-readout").inner_text(), timeout=120_000)
    key, end, moves = "ArrowLeft", time.monotonic() + seconds, 0
    while time.monotonic() < end:
        await thumb.focus()
        before = await thumb.input_value()
        t0 = time.perf_counter()
        await page.keyboard.press(key)
        if await thumb.input_value() == before:  # at an end of the scale: turn round
            key = "ArrowLeft" if key == "ArrowRight" else "ArrowRight"
            continue
        value = await frame.locator(".kdviz-sp-readout").inner_text()
        await frame.wait_for_function(CHART_AT_JS, arg=value, polling="raf", timeout=120_000)
        result.latencies_ms.append(1000.0 * (time.perf_counter() - t0))
        await wait_until(lambda: _box_shows(box, value), 120, f"the exact box to show {value}", pause=0.02)
        result.follow_ms.append(1000.0 * (time.perf_counter() - t0))
        moves += 1
        if moves % 10 == 0:
            await collect_errors(page, result, "Pruning")
        await asyncio.sleep(think_s)
    await collect_errors(page, result, "Pruning")


async def _box_shows(box, value: str) -> bool:
    try:
        return abs(float(await box.input_value()) - float(value)) < 1e-9
    except ValueError:
        return False


async def training_session(browser, url: str, runs_root: Path, start_lock: asyncio.Lock | None, args,
                           result: SessionResult, seconds: float) -> None:
    """Train page (Start KD and scratch students, unless ``start_lock`` is None: the baseline session),
    Pruning page (slider moves for ``seconds``), Train page again until the session's runs end."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1600})
    try:
        page, start = await train_page(context, url)
        if start_lock is not None:
            if args.epochs is not None:
                await set_slider(page, "Epochs", args.epochs)
            async with start_lock:  # one start at a time: the two new folders are this session's
                before = set(runs_root.iterdir())
                await start.click()
                result.runs = sorted(await wait_until(lambda: _new_runs(runs_root, before), 60, "the two run folders"))
            await collect_errors(page, result, "Train a student")
        await go(page, "Pruning")
        await move_sliders(page, seconds, result, args.think)
        if result.runs:
            await go(page, "Train a student")
            await wait_until(lambda: all(_status(r).get("state") in ENDED for r in result.runs), args.drain,
                             "the session's runs to end", pause=1.0)
            await asyncio.sleep(2.0 * float(os.environ.get("KDVIZ_REFRESH_S", "1.5")))  # the last live redraw
            await collect_errors(page, result, "Train a student")
    except Exception as exc:  # noqa: BLE001 - a session that breaks is reported, the others go on
        result.errors.append(f"session failed: {type(exc).__name__}: {str(exc)[:300]}")
    finally:
        await context.close()


async def train_page(context, url: str):
    """A new tab on Train a student, once its Start button is enabled (the lab's teacher is ready)."""
    page = await context.new_page()
    await page.goto(f"{url}/train_student")
    start = page.get_by_role("button", name="Start KD and scratch students")
    await wait_until(lambda: _enabled(start), 600, "the teacher to be ready (Start enabled)")
    return page, start


async def _enabled(button) -> bool:
    """The button is there and enabled; a RuntimeError at once if the page shows an exception instead
    (an app broken mid-edit fails the session now, not after the teacher's timeout)."""
    if await button.count() and await button.is_enabled():
        return True
    broken = await button.page.evaluate(ERRORS_JS)
    if broken:
        raise RuntimeError(f"the page shows an error instead of the Start button: {broken[0][:200]}")
    return False


def _new_runs(root: Path, before: set[Path]) -> set[Path] | None:
    new = {p for p in root.iterdir() if p.is_dir()} - before
    return new if len(new) >= 2 else None


async def set_slider(page, name: str, value: int) -> None:
    thumb = page.get_by_role("slider", name=name)
    await thumb.focus()
    now = int(await thumb.input_value())
    for _ in range(abs(value - now)):
        await page.keyboard.press("ArrowRight" if value > now else "ArrowLeft")
    await wait_until(lambda: _equal(thumb.input_value(), str(value)), 30, f"the {name} slider at {value}")
    await asyncio.sleep(1.0)
    await wait_until(lambda: script_done(page), 60, "the rerun after the slider move")


async def compare_runs_session(browser, url: str, result: SessionResult, until: asyncio.Event, every_s: float) -> None:
    """Reload the Compare runs page every ``every_s`` while the others work; time each load."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1600})
    page = await context.new_page()
    try:
        while not until.is_set():
            t0 = time.perf_counter()
            await page.goto(f"{url}/runs")
            heading = page.get_by_test_id("stMainBlockContainer").locator("h1").first
            await wait_until(lambda: _all_true(heading.count(), script_done(page)), 120, "the Compare runs page")
            result.loads_ms.append(1000.0 * (time.perf_counter() - t0))
            await collect_errors(page, result, "Compare runs")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(until.wait(), every_s)
    except Exception as exc:  # noqa: BLE001
        result.errors.append(f"session failed: {type(exc).__name__}: {str(exc)[:300]}")
    finally:
        await context.close()


async def _all_true(*awaitables) -> bool:
    return all([await a for a in awaitables])


async def _equal(awaitable, value) -> bool:
    return await awaitable == value


async def load_round(browser, url: str, runs_root: Path, args, pid: int, number: int):
    """One round: the training sessions and the Compare runs session, until every session is done."""
    lock, done = asyncio.Lock(), asyncio.Event()
    sessions = [SessionResult(f"round {number} session {i + 1}") for i in range(args.sessions)]
    compare = SessionResult(f"round {number} Compare runs")
    tasks = [asyncio.create_task(training_session(browser, url, runs_root, lock, args, r, args.seconds))
             for r in sessions]
    watcher = asyncio.create_task(compare_runs_session(browser, url, compare, done, args.compare_every))
    peak = rss_mb(pid)
    while not all(t.done() for t in tasks):
        peak = max(peak, rss_mb(pid))
        await asyncio.sleep(1.0)
    done.set()
    await watcher
    return sessions, compare, peak


async def run_bench(args, url: str, runs_root: Path, pid: int) -> tuple[list[SessionResult], list[SessionResult], SessionResult, dict]:
    from playwright.async_api import async_playwright

    memory: dict[str, float] = {}
    sessions, compares = [], []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        print("baseline: one session alone, waiting for the lab's teacher and pruning baseline ...", flush=True)
        base = SessionResult("baseline")
        await training_session(browser, url, runs_root, None, args, base, args.baseline_seconds)
        await asyncio.sleep(args.grace)
        memory["start (teacher and baseline trained, no session)"] = start = rss_mb(pid)
        print(f"baseline: {len(base.latencies_ms)} moves; server RSS {start:.0f} MB", flush=True)
        for number in range(1, args.rounds + 1):
            print(f"round {number}: {args.sessions} sessions + Compare runs ...", flush=True)
            found, compare, peak = await load_round(browser, url, runs_root, args, pid, number)
            sessions += found
            compares.append(compare)
            await asyncio.sleep(args.grace)  # the closed tabs' sessions expire, their memory can be freed
            memory[f"round {number}: peak under load"] = peak
            memory[f"round {number}: end (jobs ended, tabs closed, +{args.grace:.0f} s)"] = rss_mb(pid)
            print(f"round {number}: done; server RSS {rss_mb(pid):.0f} MB", flush=True)
        await browser.close()
    return sessions, compares, base, memory


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 sessions, 20 s of moves, 2-epoch students")
    parser.add_argument("--sessions", type=int, default=None, help="training sessions (default 5; quick 2)")
    parser.add_argument("--seconds", type=float, default=None, help="slider-moving time per session (default 120; quick 20)")
    parser.add_argument("--epochs", type=int, default=None, help="student epochs (default: the page's 8; quick 2)")
    parser.add_argument("--baseline-seconds", type=float, default=None, help="baseline moves (default 30; quick 10)")
    parser.add_argument("--think", type=float, default=0.3, help="pause between moves, seconds")
    parser.add_argument("--compare-every", type=float, default=5.0, help="seconds between Compare runs reloads")
    parser.add_argument("--drain", type=float, default=900.0, help="most seconds to wait for the runs to end")
    parser.add_argument("--rounds", type=int, default=1, help="load rounds; RSS after each shows growth (or none)")
    parser.add_argument("--grace", type=float, default=15.0, help="seconds after the tabs close before the last RSS")
    parser.add_argument("--no-slider-cache", action="store_true", help="KDVIZ_SLIDER_CACHE=0: every move re-evaluates")
    parser.add_argument("--teacher-epochs", type=int, default=None, help="the lab teacher's epochs (default: the lab's; quick 2)")
    args = parser.parse_args()
    defaults = {"sessions": (5, 2), "seconds": (120.0, 20.0), "epochs": (None, 2), "baseline_seconds": (30.0, 10.0),
                "teacher_epochs": (None, 2)}  # (full, --quick); the lab's own teacher epochs when None
    for name, pair in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, pair[args.quick])
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing (apt-get install chromium)", file=sys.stderr)
        return 2
    runs_root = Path(tempfile.mkdtemp(prefix="kdviz-load-"))
    log_path = runs_root.parent / f"{runs_root.name}-streamlit.log"
    extra = {"KDVIZ_TEACHER_EPOCHS": str(args.teacher_epochs)} if args.teacher_epochs else {}
    extra.update({"KDVIZ_SLIDER_CACHE": "0"} if args.no_slider_cache else {})
    proc, url = start_server(runs_root, log_path, extra)
    print(f"server {url} (pid {proc.pid}), runs in {runs_root}, log {log_path}", flush=True)
    try:
        sessions, compares, base, memory = asyncio.run(run_bench(args, url, runs_root, proc.pid))
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0 if report(sessions, compares, base, memory, args) else 1


if __name__ == "__main__":
    sys.exit(main())
