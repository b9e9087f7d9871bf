"""The Reproduce page through AppTest (issue 15, "Reproduction as a feature").

Without MNIST chosen in the sidebar the page shows the paper's table and says what is missing, with
Start disabled. With the MNIST IDX files (``$KDVIZ_TEST_MNIST`` or /work/shared/data/mnist; skipped
without them) a quick ``hinton-mnist`` with one seed is started from the page (its students start from
the reproduction's own watcher thread, without a page run) and polled as its timer would: the table
fills in run by run beside the paper's rows, its values are the ones written to
result.json, and the result is listed under "Earlier results" and reopens.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kdviz.app.navigation import lab_pages
from kdviz.reproduce import load_result
from kdviz.reproduce.hinton_mnist import DISTILLED_ROW, SCRATCH_ROW, TEACHER_ROW

from _support.apptest import charts, harness, ok, texts

PAGE = Path(__file__).resolve().parents[2] / "kdviz" / "app" / "pages" / "reproduce.py"
HARNESS = harness((PAGE, "Reproduce"))
MNIST = Path(os.environ.get("KDVIZ_TEST_MNIST", "/work/shared/data/mnist"))
PAPER_ROWS = [(TEACHER_ROW, "67"), (SCRATCH_ROW, "146"), (DISTILLED_ROW, "74")]


def button(at: AppTest, key: str):
    return next(b for b in at.button if b.key == key)


def table(at: AppTest, index: int = 0):
    """The page's ``index``-th table (0: the live or the paper's table, 1: a reopened result's)."""
    return at.dataframe[index].value


def values_in(frame) -> int:
    """Values measured so far: the sum of the "runs done" column's numerators ("1/1" -> 1)."""
    return sum(int(cell.split("/")[0]) for cell in frame["runs done"])


def mnist_hinton_page(monkeypatch) -> AppTest:
    """``hinton_page`` on the real MNIST files; the test is skipped without them."""
    if not (MNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"no MNIST IDX files in {MNIST}")
    return hinton_page(monkeypatch, folder=str(MNIST))


def hinton_page(monkeypatch, dataset: str = "mnist", folder: str | None = None) -> AppTest:
    """A fresh session of the page with ``dataset`` in the sidebar (its folder from ``$KDVIZ_DATA``)
    and a quick hinton-mnist with one seed chosen."""
    if folder is None:
        monkeypatch.delenv("KDVIZ_DATA", raising=False)
    else:
        monkeypatch.setenv("KDVIZ_DATA", folder)
    at = AppTest.from_string(HARNESS, default_timeout=120)
    at.session_state["kdviz_dataset"] = dataset
    ok(at.run())
    at.selectbox(key="rp_name").set_value("hinton-mnist")
    at.slider(key="rp_seeds").set_value(1)
    at.radio(key="rp_mode").set_value("quick")
    return ok(at.run())


def test_the_page_is_listed_right_after_compare_runs():
    pages = lab_pages()
    titles = [p.title for p in pages]
    assert titles.index("Reproduce") == titles.index("Compare runs") + 1
    assert Path(pages[titles.index("Reproduce")].path) == PAGE


def test_without_mnist_the_page_shows_the_papers_table_and_names_what_is_missing(monkeypatch):
    at = hinton_page(monkeypatch, dataset="digits")
    assert at.title[0].value == "Reproduce the papers"
    frame = table(at)
    assert list(zip(frame["row"], frame["paper"])) == PAPER_ROWS
    assert list(frame["ours (mean ± std)"]) == ["-"] * 3 and list(frame["runs done"]) == ["0/1", "0/1", "0/1"]
    warning = " ".join(w.value for w in at.warning)
    assert "trains on MNIST 28x28" in warning and "choose MNIST 28x28 as the dataset in the sidebar" in warning
    assert button(at, "rp-start").disabled and not at.exception
    at.slider(key="rp_seeds").set_value(4).run()  # the plan follows the seeds: 4 scratch and 4 distilled runs
    assert list(table(ok(at))["runs done"]) == ["0/1", "0/4", "0/4"]

    at = hinton_page(monkeypatch, dataset="mnist")  # MNIST chosen, but no folder typed
    assert "type the folder that holds its four IDX files" in texts(at)
    assert button(at, "rp-start").disabled and not at.exception


def test_the_table_records_give_mean_sample_std_every_seed_and_what_is_missing():
    from datetime import datetime, timedelta

    from kdviz.reproduce import ReproductionResult, Row
    from kdviz.reproduce.present import table_records, wall_seconds

    full = Row("distilled", "test errors", 74, values=[71.0, 75.0, 70.0], seeds=[0, 1, 2], train_s=[10.0, 20.0, 30.0], expected=3)
    partial = Row("scratch", "test errors", 146, values=[150.0], seeds=[2], train_s=[12.0], expected=3)
    records = table_records([full, partial])
    std = (((71 - 72) ** 2 + (75 - 72) ** 2 + (70 - 72) ** 2) / 2) ** 0.5  # sample std, n - 1 = 2
    assert records[0] == {"row": "distilled", "unit": "test errors", "paper": "74", "ours (mean ± std)": f"72 ± {std:.2f}",
                          "per seed": "s0 71, s1 75, s2 70", "runs done": "3/3", "train time/run": "20 s"}
    assert (records[1]["ours (mean ± std)"], records[1]["per seed"], records[1]["runs done"]) == ("150", "s2 150", "1/3")
    running = ReproductionResult("x", "x", "x", [0], True, "", [], started="2026-11-29T10:00:00+0000", wall_s=5.0)
    assert wall_seconds(running, datetime.fromisoformat("2026-11-29T10:01:40+00:00")) == 100.0
    running.state = "stopped"
    assert wall_seconds(running, datetime.fromisoformat("2026-11-29T10:01:40+00:00") + timedelta(hours=1)) == 5.0


def test_a_damaged_result_is_listed_with_its_problem_and_the_others_still_reopen(monkeypatch, tmp_path):
    """A result.json that is not JSON is listed, and opening it names the problem (no traceback); a
    well-formed result written beside it reopens with its table. Neither file is rewritten."""
    monkeypatch.setenv("KDVIZ_RUNS", str(tmp_path))
    damaged = tmp_path / "reproductions" / "hinton-mnist-20260101-000000"
    damaged.mkdir(parents=True)
    (damaged / "result.json").write_text("{not json")
    from kdviz.reproduce import REPRODUCTIONS, ReproductionResult, write_result

    hinton = REPRODUCTIONS.get("hinton-mnist")
    good = ReproductionResult("hinton-mnist", hinton.title, hinton.citation, [4, 7], False, "full", hinton.measure([], hinton.plan([4, 7])),
                              state="stopped", started="2026-01-02T00:00:00", path=tmp_path / "reproductions" / "good")
    good.path.mkdir()
    written = write_result(good).read_bytes()
    at = hinton_page(monkeypatch, dataset="digits")
    listed = at.selectbox(key="rp_pick")
    assert sorted(listed.options) == sorted([f"{damaged.name} (cannot be read)",
                                             "hinton-mnist · full · 2 seeds · stopped · 2026-01-02T00:00:00 (good)"])
    ok(listed.set_value(str(damaged)).run())
    ok(button(at, "rp-open").click().run())
    assert "Open:" in texts(at) and "is damaged (not valid JSON" in texts(at)
    ok(at.selectbox(key="rp_pick").set_value(str(good.path)).run())
    ok(button(at, "rp-open").click().run())
    frame = table(at, 1)
    assert list(frame["runs done"]) == ["0/1", "0/2", "0/2"] and "**stopped**" in texts(at)
    assert (damaged / "result.json").read_text() == "{not json" and (good.path / "result.json").read_bytes() == written


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_quick_hinton_fills_in_live_beside_the_paper_and_reopens(monkeypatch, lab_env):
    at = mnist_hinton_page(monkeypatch)
    assert not button(at, "rp-start").disabled, texts(at)
    t0 = time.monotonic()
    ok(button(at, "rp-start").click().run())
    reproducing = at.session_state["rp_reproducing"]
    filled, charted = [values_in(table(at))], 0
    while not any("/seed" in key for key in reproducing.jobs):  # no page run: its watcher starts the students
        assert time.monotonic() - t0 < 200 and not reproducing.done, reproducing.result.runs
        time.sleep(0.2)
    ok(at.run())
    while "**finished**" not in texts(at):
        assert time.monotonic() - t0 < 300, texts(at)
        assert "**failed**" not in texts(at) and "**stopped**" not in texts(at), texts(at)
        filled.append(values_in(table(at)))
        charted = max(charted, len(charts(at).get("reproduce-live", {}).get("data", [])))
        time.sleep(0.5)
        ok(at.run())
    took = time.monotonic() - t0
    frame = table(at)
    filled.append(values_in(frame))
    assert filled == sorted(filled) and filled[0] < filled[-1] == 3, filled  # it filled in, never lost a value
    assert len(set(filled)) >= 3, filled  # the teacher's row came before the students' (at least 3 stages seen)
    assert charted >= 1  # the live accuracy chart drew the runs while they trained

    result = reproducing.result
    assert result.state == "finished" and result.seeds == [0] and result.quick
    on_disk = load_result(result.path)
    assert list(zip(frame["row"], frame["paper"])) == PAPER_ROWS
    for row, ours, seeds in zip(on_disk.rows, frame["ours (mean ± std)"], frame["per seed"]):
        assert len(row.values) == 1 and 0 <= row.values[0] <= 10_000
        assert ours == f"{row.values[0]:g}" and seeds == f"s0 {row.values[0]:g}"
    assert on_disk.row(DISTILLED_ROW).values[0] < on_disk.row(SCRATCH_ROW).values[0]  # distillation helped
    assert str(result.path).startswith(str(lab_env))

    listed = at.selectbox(key="rp_pick")
    assert f"hinton-mnist · quick · 1 seed · finished · {result.started} ({result.path.name})" in listed.options
    ok(listed.set_value(str(result.path)).run())
    ok(button(at, "rp-open").click().run())
    reopened = table(at, 1)
    assert reopened.equals(frame)
    assert "#### hinton-mnist" in texts(at) and len(charts(at)["reproduce-opened"]["data"]) == 3
    ok(at.selectbox(key="rp_name").set_value("han-pruning").run())  # another choice: its paper's table, empty
    assert table(at)["row"][0] == "baseline error" and set(table(at)["ours (mean ± std)"]) == {"-"}
    reproducing.stop()  # what the watchdog does when the tab closes: an ended result stays
    assert load_result(result.path).state == "finished"
    print(f"quick hinton-mnist, 1 seed, from the page: {took:.0f} s; values after each poll: {filled}")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_stop_keeps_the_table_so_far_marked_stopped_and_listed(monkeypatch, lab_env):
    at = mnist_hinton_page(monkeypatch)
    at.slider(key="rp_seeds").set_value(2)
    ok(button(ok(at.run()), "rp-start").click().run())
    reproducing = at.session_state["rp_reproducing"]
    t0 = time.monotonic()
    while not any(not job.done for key, job in reproducing.jobs.items() if "/seed" in key):  # a student trains
        assert time.monotonic() - t0 < 120 and not reproducing.done, texts(at)
        time.sleep(0.3)
        ok(at.run())
    assert not button(at, "rp-stop").disabled
    ok(button(at, "rp-stop").click().run())
    assert "**stopped**" in texts(at) and all(job.done for job in reproducing.jobs.values())
    on_disk = load_result(reproducing.result.path)
    assert on_disk.state == "stopped" and len(on_disk.runs) == len(on_disk.planned) == 5
    assert {run["state"] for key, run in on_disk.runs.items() if "/seed" in key} <= {"stopped", "finished", "not started"}
    assert "stopped" in {run["state"] for run in on_disk.runs.values()}
    assert list(table(at)["runs done"]) == [f"{len(r.values)}/{r.expected}" for r in on_disk.rows]
    assert not button(at, "rp-start").disabled and button(at, "rp-stop").disabled  # a new one can start
    listed = at.selectbox(key="rp_pick")
    assert f"hinton-mnist · quick · 2 seeds · stopped · {on_disk.started} ({on_disk.path.name})" in listed.options
