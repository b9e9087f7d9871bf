"""Issue 15: the reproduction runner and ``measure`` on runs it really trains (digits, tiny MLPs):
the table fills in after each run, every value equals the test errors counted independently from
the run's saved model, mean and std are the textbook ones, result.json round-trips and is written
atomically, and a rerun reuses the teacher."""
from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import time
from pathlib import Path

import pytest
import torch

from _support.run_files import metric_lines
from kdviz.data import load_dataset
from kdviz.engine import TrainConfig, load_trained_model
from kdviz.methods.kd import KD
from kdviz.methods.scratch import SCRATCH
from kdviz.reproduce import (
    RESULT_FILE, FinishedRun, PaperNumber, PlannedRun, Reproduction, load_result, run_plan, table_lines, write_result,
)
from kdviz.reproduce.hinton_mnist import count_test_errors

SEEDS = [3, 5]  # not the default 0..n-1


def tiny_plan(seeds, quick):
    student = dict(dataset="digits", model="mlp", model_options={"hidden": [8]}, epochs=2, batch_size=32, snapshot_every=0)
    teacher = TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [32]}, epochs=3, name="tiny-teacher",
                          snapshot_every=0)
    runs = [PlannedRun("teacher", "teacher", 0, teacher, reuse=True)]
    for s in seeds:
        runs.append(PlannedRun(f"scratch/seed{s}", "scratch", s, TrainConfig(seed=s, method=SCRATCH.loss, name=f"tiny-scratch-s{s}", **student)))
        runs.append(PlannedRun(f"kd/seed{s}", "distilled", s, TrainConfig(seed=s, method=KD.loss, teacher="", T=4.0, alpha=0.9,
                                                                       name=f"tiny-kd-s{s}", **student), after="teacher"))
    return runs


TINY = Reproduction("tiny-digits", "Tiny digits table", "nobody 2026", "digits",
                    (PaperNumber("teacher", 10, "test errors"), PaperNumber("scratch", 30, "test errors"),
                     PaperNumber("distilled", 20, "test errors")), tiny_plan, count_test_errors)


def errors_of_saved_model(run: str) -> int:
    """Test errors counted by running the run's saved model on the digits test set (not via test_acc)."""
    data = load_dataset("digits")
    model = load_trained_model(run).eval()
    with torch.no_grad():
        predicted = model(data.test_images).argmax(dim=1)
    return int((predicted != data.test_labels).sum())


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory, manager):
    runs_root = tmp_path_factory.mktemp("runs")
    seen = []

    def progress(result):
        on_disk = json.loads((result.path / RESULT_FILE).read_text())
        seen.append((sum(len(r.values) for r in result.rows), sum(len(r["values"]) for r in on_disk["rows"]), result.state))

    result = run_plan(TINY, TINY.plan(SEEDS), SEEDS, False, runs_root=runs_root, manager=manager, on_progress=progress)
    return result, seen, runs_root


def test_the_table_fills_in_after_each_run_and_is_on_disk_each_time(reproduced):
    result, seen, _ = reproduced
    assert result.state == "finished" and len(result.runs) == 5
    counts = [live for live, _, _ in seen]
    assert counts == sorted(counts) and counts[-1] == 5 and counts[0] < 5  # partial tables came first
    assert all(live == disk for live, disk, _ in seen)  # result.json held the same table at every call
    assert [state for _, _, state in seen[:-1]] == ["running"] * (len(seen) - 1) and seen[-1][2] == "finished"


def test_every_value_is_the_runs_test_errors_and_mean_std_are_the_textbook_ones(reproduced):
    result, _, _ = reproduced
    assert [row.label for row in result.rows] == ["teacher", "scratch", "distilled"]
    assert [row.paper for row in result.rows] == [10, 30, 20]
    for row in result.rows:
        expected_seeds = [0] if row.label == "teacher" else SEEDS
        assert row.seeds == expected_seeds and row.expected == len(expected_seeds)
        assert row.values == [errors_of_saved_model(run) for run in row.runs]
        assert row.mean == pytest.approx(statistics.mean(row.values))
        assert row.std == (pytest.approx(statistics.stdev(row.values)) if len(row.values) > 1 else None)
        assert row.train_s == [metric_lines(Path(run), "eval")[-1]["t"] for run in row.runs]
    assert len(set(result.row("scratch").runs)) == 2 and result.row("teacher").runs[0] not in result.row("scratch").runs
    distilled_teachers = {json.loads((Path(run) / "config.json").read_text())["teacher"] for run in result.row("distilled").runs}
    assert distilled_teachers == {result.row("teacher").runs[0]}


def test_a_partial_table_says_what_is_missing(reproduced):
    result, _, _ = reproduced
    plan = TINY.plan(SEEDS)
    by_key = {run.key: run for run in plan}
    only = [FinishedRun(by_key["scratch/seed5"], Path(result.runs["scratch/seed5"]["path"]))]
    rows = {row.label: row for row in TINY.measure(only, plan)}
    assert rows["scratch"].values == [result.row("scratch").values[1]] and rows["scratch"].seeds == [5]
    assert rows["distilled"].values == [] and rows["distilled"].mean is None and rows["distilled"].expected == 2
    text = "\n".join(table_lines(list(rows.values())))
    assert "(1/2)" in text and "s5 " in text


def test_result_json_round_trips(reproduced):
    result, _, _ = reproduced
    again = load_result(result.path)
    assert again.to_dict() == result.to_dict() == load_result(result.path / RESULT_FILE).to_dict()
    assert again.path == result.path and result.path.parent.name == "reproductions"
    assert again.machine == result.machine and "cores" in result.machine and "torch" in result.machine
    # a wall time is read beside the load it ran under, at both ends (a run that started on an idle
    # machine and ended on a busy one said only "load average 1.3")
    assert re.search(r"load average \d+\.\d at the start, .*; load average \d+\.\d at the end$", result.machine)
    assert result.path.name.startswith("tiny-digits-")


def test_a_moved_runs_root_keeps_its_results_pointing_at_their_runs(reproduced, tmp_path):
    result, _, runs_root = reproduced
    on_disk = json.loads((result.path / RESULT_FILE).read_text())
    written = [run["path"] for run in on_disk["runs"].values()] + [p for row in on_disk["rows"] for p in row["runs"]]
    assert written and not any(Path(p).is_absolute() or str(runs_root) in p for p in written)
    moved = tmp_path / "elsewhere" / "runs"
    shutil.copytree(runs_root, moved)
    again = load_result(moved / "reproductions" / result.path.name)
    for row, before in zip(again.rows, result.rows):
        assert [Path(p).name for p in row.runs] == [Path(p).name for p in before.runs]
        assert all(Path(p).parent == moved.resolve() and (Path(p) / "config.json").is_file() for p in row.runs)
    assert [row.values for row in again.rows] == [row.values for row in result.rows]


def test_a_rerun_reuses_the_teacher(reproduced, manager):
    result, _, runs_root = reproduced
    again = run_plan(TINY, TINY.plan([1]), [1], False, runs_root=runs_root, manager=manager)
    assert again.row("teacher").runs == result.row("teacher").runs
    assert len([p for p in runs_root.iterdir() if p.name.endswith("-tiny-teacher")]) == 1
    assert again.row("scratch").seeds == [1] and again.path != result.path


def test_a_failed_write_leaves_the_previous_result_whole(reproduced, monkeypatch):
    result, _, _ = reproduced
    file = result.path / RESULT_FILE
    before = file.read_bytes()
    result.state = "changed"

    def refuse(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError):
        write_result(result)
    monkeypatch.undo()
    result.state = "finished"
    assert file.read_bytes() == before
    assert sorted(p.name for p in result.path.iterdir()) == [RESULT_FILE]  # no temp file left behind


@pytest.mark.parametrize("content, phrase", [(None, "holds no reproduction result"), ("{not json", "damaged"),
                                             ('{"format": 99}', "not a kdviz reproduction result"),
                                             ("[1, 2]", "not a kdviz reproduction result")])
def test_load_result_refuses_what_is_not_a_result(tmp_path, content, phrase):
    if content is not None:
        (tmp_path / RESULT_FILE).write_text(content)
    with pytest.raises(ValueError, match=phrase):
        load_result(tmp_path)


def test_table_lines_show_paper_mean_std_and_every_seed():
    from kdviz.reproduce import Row

    row = Row("scratch", "test errors", 146, values=[1.0, 2.0, 4.0], seeds=[3, 5, 8], runs=["a", "b", "c"],
              train_s=[10.0, 20.0, 30.0], expected=3)
    header, line = table_lines([row])
    assert header.split()[:3] == ["row", "unit", "paper"]
    # mean 7/3 = 2.33, sample std sqrt(((1-7/3)^2 + (2-7/3)^2 + (4-7/3)^2) / 2) = 1.53
    assert "146" in line and "2.33 +- 1.53" in line and "s3 1, s5 2, s8 4" in line and "20 s" in line
    assert "(" not in line  # every planned run has ended


def test_markdown_lines_are_the_same_table_as_a_markdown_table():
    from kdviz.reproduce import Row
    from kdviz.reproduce.table import markdown_lines

    done = Row("distilled", "test errors", 74, values=[70.0, 80.0], seeds=[0, 1], runs=["a", "b"], train_s=[5.0, 7.0], expected=3)
    waiting = Row("extra | row", "%", None, expected=1)
    header, rule, first, second = markdown_lines([done, waiting])
    assert header.startswith("| row | unit | paper |") and rule == "|---|---|---|---|---|---|"
    # mean 75, sample std sqrt((25 + 25) / 1) = 7.07; 2 of 3 runs ended
    assert first == "| distilled | test errors | 74 | 75 ± 7.07 (2/3) | s0 70, s1 80 | 6 s |"
    assert second.split(" | ")[:4] == ["| extra / row", "%", "-", "-"] and second.count("|") == 7


def test_the_cli_prints_the_markdown_table_with_markdown(tmp_path, monkeypatch, capsys):
    from kdviz import cli
    from kdviz.reproduce import REPRODUCTIONS

    monkeypatch.setitem(REPRODUCTIONS._items, TINY.name, TINY)
    assert cli.main(["reproduce", TINY.name, "--seeds", "1", "--markdown", "--runs-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| row | unit | paper |") and [r.split(" | ")[0] for r in rows[1:]] == ["| teacher", "| scratch", "| distilled"]
    assert not any(line.startswith("row ") for line in out.splitlines())  # not the plain-text table


def test_a_failed_teacher_fails_the_reproduction_and_says_why(tmp_path, manager):
    from dataclasses import replace

    from kdviz.methods.prune import prune_hook

    def failing_teacher_plan(seeds, quick):
        runs = tiny_plan(seeds, quick)
        broken = replace(runs[0].config, hooks=[prune_hook(0.9999, "layer", "one-shot")], name="tiny-broken-teacher")
        return [replace(runs[0], config=broken), *runs[1:]]  # pruning that empties a layer fails at the run's start

    broken = Reproduction("tiny-broken", "t", "c", "digits", TINY.paper, failing_teacher_plan, count_test_errors)
    result = run_plan(broken, broken.plan([2]), [2], False, runs_root=tmp_path, manager=manager)
    assert result.state == "failed" and load_result(result.path).state == "failed"
    assert result.runs["teacher"]["state"] == "failed" and result.runs["scratch/seed2"]["state"] == "finished"
    assert result.runs["kd/seed2"]["state"] == "not started" and "teacher" in result.runs["kd/seed2"]["message"]
    assert result.row("scratch").values and not result.row("distilled").values and not result.row("teacher").values


def test_an_interrupted_reproduction_stops_its_runs_and_keeps_the_table(tmp_path, manager):
    class Interrupted(Exception):
        pass

    def interrupt(result):
        raise Interrupted

    with pytest.raises(Interrupted):
        run_plan(TINY, TINY.plan([0, 1]), [0, 1], False, runs_root=tmp_path, manager=manager, on_progress=interrupt)
    (folder,) = (tmp_path / "reproductions").iterdir()
    result = load_result(folder)
    assert result.state == "stopped" and not any(job.status().state == "running" for job in manager.jobs())
    assert set(result.runs) == set(result.planned) and len(result.planned) == 5
    assert {run["state"] for run in result.runs.values()} <= {"finished", "stopped", "not started"}
    assert any(run["state"] != "finished" for run in result.runs.values())
    finished = sum(run["state"] == "finished" for run in result.runs.values())
    assert sum(len(row.values) for row in result.rows) == finished  # every finished run is in the table


def test_reproducing_returns_at_once_and_fills_in_when_polled(tmp_path, manager):
    from kdviz.reproduce import Reproducing

    reproducing = Reproducing(TINY, TINY.plan([4]), [4], False, runs_root=tmp_path, manager=manager)
    assert reproducing.result.state == "running" and not reproducing.done
    assert load_result(reproducing.result.path).state == "running"
    assert "teacher" in reproducing.jobs  # a live chart can follow the jobs
    changes = 0
    while not reproducing.done:
        changes += reproducing.poll()
        time.sleep(0.05)
    assert changes >= 2 and reproducing.result.state == "finished"
    assert not reproducing.poll()  # nothing changes after the end
    assert load_result(reproducing.result.path).to_dict() == reproducing.result.to_dict()


def test_reproduction_runs_keep_one_thread_each_however_many_run():
    """A run's thread count must not follow how many runs are left (it changes float sums: a rerun
    of hinton-mnist gave other numbers); the reused runs (teachers) train alone with every core."""
    from kdviz.engine.manager import available_cores
    from kdviz.reproduce.runner import reproducible_managers

    reused, runs = reproducible_managers()
    assert runs.max_concurrent == available_cores() + 1 and runs.thread_share() == 1
    assert reused.max_concurrent == 1 and reused.thread_share() == available_cores()
