"""``ReproductionMonitor`` without a browser (issue 15): a real quick ``binary-lenet5`` reproduction
started from the widget on MNIST, its table filling in while the runs train and its state reported;
then the saved result reopened in a fresh widget, and a damaged one refused with a message.

Expected values come from the run folders' own files (``metrics.jsonl``) and the result.json the
runner wrote, never from the widget's drawing code. Skipped without the MNIST IDX files."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

pytest.importorskip("ipywidgets")

import kdviz.reproduce.binary  # noqa: E402,F401  (registers binary-lenet5)
from kdviz.engine import JobManager  # noqa: E402
from kdviz.reproduce import load_result  # noqa: E402
from kdviz.reproduce.binary import BINARYCONNECT_ROW, BWN_ROW, FLOAT_ROW  # noqa: E402
from kdviz.widgets import ReproductionMonitor  # noqa: E402

from _support.polling import wait_for  # noqa: E402
from _support.run_files import metric_lines  # noqa: E402

MNIST = Path(os.environ.get("KDVIZ_DATA") or "/work/shared/data/mnist")
HAS_MNIST = (MNIST / "train-images-idx3-ubyte.gz").is_file() or (MNIST / "train-images-idx3-ubyte").is_file()
ROWS = (FLOAT_ROW, BINARYCONNECT_ROW, BWN_ROW)

pytestmark = pytest.mark.timeout(300)
needs_mnist = pytest.mark.skipif(not HAS_MNIST, reason=f"no MNIST IDX files in {MNIST}")


def cells(table_html: str) -> dict[str, list[str]]:
    """The HTML table's rows, by their first cell."""
    rows = re.findall(r"<tr>(.*?)</tr>", table_html.split("<tbody>", 1)[1])
    parsed = [re.findall(r"<td>(.*?)</td>", row) for row in rows]
    return {row[0]: row[1:] for row in parsed}


def shown_number(value: float) -> str:
    return f"{round(value, 2):g}"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A quick binary-lenet5 reproduction (seed 4) run from the widget to its end, with every table
    and caption the widget showed on the way."""
    if not HAS_MNIST:
        pytest.skip(f"no MNIST IDX files in {MNIST}")
    runs_root = tmp_path_factory.mktemp("reproduce-widget")
    manager = JobManager(max_concurrent=2, cpu_threads=2)
    monitor = ReproductionMonitor("binary-lenet5", seeds=1, quick=True, runs_root=runs_root, data_root=MNIST,
                                  manager=manager, interval_ms=150)
    before = cells(monitor.table.value)
    shown: list[tuple[str, str]] = []
    monitor.table.observe(lambda change: shown.append((change["new"], monitor.caption.value)), names="value")
    monitor.seeds.value = 1
    try:
        assert monitor.start() is not None, monitor.message.value
        assert monitor.start_button.disabled and not monitor.stop_button.disabled
        assert monitor.start() is None and "running" in monitor.message.value  # one at a time
        monitor.wait(240)
    finally:
        manager.stop_all(wait=True, timeout=30)
    yield monitor, before, shown, runs_root
    monitor.close()


@pytest.mark.slow  # its fixture trains the 3 quick runs: 12-25 s on 2 cores
def test_the_table_fills_in_live_and_reports_the_state(finished):
    monitor, before, shown, _ = finished
    assert list(before) == list(ROWS)
    assert [before[row][1:3] for row in ROWS] == [["0.8", "-"], ["-", "-"], ["-", "-"]]  # paper, ours: nothing yet
    result = load_result(monitor.reproducing.result.path)
    assert result.state == "finished" and result.seeds == [0] and result.quick
    # while the runs trained, the widget showed a partial table: some rows measured, others not yet
    filled = [(sum(r[-2] == "1/1" for r in cells(table).values()), caption) for table, caption in shown]
    assert any(0 < n < 3 and "<b>running</b>" in caption for n, caption in filled), filled
    final = cells(monitor.table.value)
    for row in ROWS:
        (run,) = result.row(row).runs
        error = 100 * (1 - metric_lines(Path(run), "eval")[-1]["test_acc"])
        assert final[row][2] == shown_number(error) and final[row][3] == f"s0 {shown_number(error)}"
        assert final[row][4] == "1/1"
    assert "<b>finished</b>" in monitor.caption.value and "3/3 runs ended" in monitor.caption.value
    assert str(result.path) in monitor.caption.value
    assert not monitor.start_button.disabled and monitor.stop_button.disabled
    # the chart: one line per run, ending at the run's last recorded test accuracy
    traces = {t.name: t for t in monitor.chart.widget.data}
    assert set(traces) == {"float/seed0", "binaryconnect/seed0", "bwn/seed0"}
    for key, trace in traces.items():
        evals = metric_lines(Path(result.runs[key]["path"]), "eval")
        assert list(trace.y)[-1] == pytest.approx(100 * evals[-1]["test_acc"]) and len(trace.y) == len(evals)
    assert monitor.runs_status.value.count("<br>") == 2 and "finished" in monitor.runs_status.value
    assert str(result.path) in [value for _, value in monitor.saved.options]
    assert not monitor.errors.outputs


@pytest.mark.slow  # shares the fixture above
def test_a_saved_result_reopens_and_a_damaged_one_is_refused(finished):
    live, _, _, runs_root = finished
    path = live.reproducing.result.path
    reopened = ReproductionMonitor(runs_root=runs_root, result=path)
    try:
        assert reopened.shown is not None and reopened.shown.name == "binary-lenet5"
        assert cells(reopened.table.value) == cells(live.table.value)
        assert "<b>finished</b>" in reopened.caption.value
        result = json.loads((path / "result.json").read_text())
        runs = {p for row in result["rows"] for p in row["runs"]}
        assert len(runs) == 3 and len(reopened.chart.widget.data) == 3  # each run read back from its folder
        assert {t.name for t in reopened.chart.widget.data} == {f"{row} s0" for row in ROWS}

        damaged = runs_root / "reproductions" / "binary-lenet5-damaged"
        damaged.mkdir()
        (damaged / "result.json").write_text("{not json")
        reopened.list_saved()
        labels = dict((value, label) for label, value in reopened.saved.options)
        assert "cannot be read" in labels[str(damaged)] and labels[str(path)].startswith("binary-lenet5 · quick")
        assert reopened.open_result(damaged) is None
        assert "damaged" in reopened.message.value and "not valid JSON" in reopened.message.value
        assert cells(reopened.table.value) == cells(live.table.value)  # the shown table is kept
        assert (damaged / "result.json").read_text() == "{not json"  # and the user's file is left as it was
    finally:
        reopened.close()


def test_start_without_the_data_says_which_folder_and_writes_nothing(tmp_path):
    empty = tmp_path / "no-mnist-here"
    empty.mkdir()
    monitor = ReproductionMonitor("binary-lenet5", seeds=2, runs_root=tmp_path / "runs", data_root=empty)
    try:
        assert monitor.start() is None and monitor.reproducing is None
        assert "mnist files are not found" in monitor.message.value and str(empty) in monitor.message.value
        assert not monitor.start_button.disabled and monitor.stop_button.disabled
        assert not (tmp_path / "runs" / "reproductions").exists() or not any((tmp_path / "runs" / "reproductions").iterdir())
        assert cells(monitor.table.value)[FLOAT_ROW][4] == "0/2"  # the plan's table is still shown
    finally:
        monitor.close()


@needs_mnist
def test_stop_ends_every_run_and_keeps_the_table_marked_stopped(tmp_path):
    manager = JobManager(max_concurrent=2, cpu_threads=2)
    monitor = ReproductionMonitor("binary-lenet5", seeds=2, quick=True, runs_root=tmp_path, data_root=MNIST,
                                  manager=manager, interval_ms=100)
    try:
        started = monitor.start()
        wait_for(lambda: len(started.jobs) == 6, 30, "the six runs to be started")
        result = monitor.stop()
        assert result.state == "stopped" and monitor.reproducing.done
        states = {key: run["state"] for key, run in result.runs.items()}
        assert set(states) == set(result.planned) and "finished" not in states.values(), states
        assert all(job.done for job in started.jobs.values())
        assert load_result(result.path).state == "stopped"
        assert "<b>stopped</b>" in monitor.caption.value and "6/6 runs ended" in monitor.caption.value
        assert not monitor.start_button.disabled and monitor.stop_button.disabled
    finally:
        manager.stop_all(wait=True, timeout=30)
        monitor.close()
