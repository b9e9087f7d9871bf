"""The Compare runs page through AppTest: the runs table (hyper-parameters, ticked rows, filters), the
path box confined to the allowed roots, odd records skipped with a note, notes and delete.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kdviz.methods import get_method

from _support.apptest import charts, lab_app, ok, values
from _support.run_files import metric_lines

RUNS = "kdviz/app/pages/runs.py"


def page():
    at = ok(lab_app().run())
    return ok(at.switch_page(RUNS).run())


def tick(at, names):
    """Tick the table rows named ``names`` (as a click in the browser would) and rerun."""
    shown = list(at.dataframe[0].value["name"])
    at.session_state["cr_table"] = {"selection": {"rows": [shown.index(n) for n in names], "columns": [], "cells": []}}
    return ok(at.run())


def open_path(at, text):
    at.text_input(key="cr_path").input(text).run()
    at.button[[b.label for b in at.button].index("Open")].click().run()
    return ok(at)


def copy_run(source: str, root: Path, name: str) -> Path:
    target = root / name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("writer.lock"))
    return target


def test_table_shows_hyper_parameters_and_ticked_rows_are_compared_in_a_colour_each(teacher, finished_runs, lab_env):
    twin = copy_run(finished_runs[0], lab_env, "20990101-000001-kd-twin")
    at = page()
    table = at.dataframe[0].value.set_index("name")
    kd, scratch = Path(finished_runs[0]).name, Path(finished_runs[1]).name
    assert table.loc[kd, "method"] == get_method("kd").label and table.loc[scratch, "method"] == get_method("scratch").label
    assert (table.loc[kd, "T"], table.loc[kd, "alpha"], table.loc[kd, "epochs"]) == (4.0, 0.9, 1)
    assert table.loc[kd, "sizes"] == "hidden 8" and table.loc[kd, "dataset"] == "digits"
    assert pd_isna(table.loc[scratch, "T"]) and pd_isna(table.loc[Path(teacher.path).name, "alpha"])
    tick(at, [kd, twin.name, scratch])
    assert set(at.session_state["cr_selected"]) == {finished_runs[0], str(twin), finished_runs[1]}
    spec = charts(at)
    colours = [t["line"]["color"] for t in spec["compare-accuracy"]["data"]]
    assert len(set(colours)) == 3 and get_method("kd").colour in colours and get_method("scratch").colour in colours
    evals = metric_lines(Path(finished_runs[1]), "eval")
    scratch_trace = next(t for t in spec["compare-accuracy"]["data"] if t["line"]["color"] == get_method("scratch").colour)
    assert list(values(scratch_trace["y"])) == pytest.approx([100 * r["test_acc"] for r in evals])
    low, high = spec["compare-accuracy"]["layout"]["yaxis"]["range"]
    every = [y for t in spec["compare-accuracy"]["data"] for y in values(t["y"])]
    assert 0 <= low <= min(every) and max(every) <= high <= 100 and (low, high) != (0, 100)
    final_low, final_high = spec["final-accuracy"]["layout"]["xaxis"]["range"]
    assert final_high <= 100 and final_low >= 0
    tick(at, [kd])  # unticking a row removes the run
    assert at.session_state["cr_selected"] == [finished_runs[0]]
    shutil.rmtree(twin)


def pd_isna(value) -> bool:
    return value is None or value != value


def test_path_box_opens_only_allowed_folders_and_never_lists_a_folder(teacher, lab_env, tmp_path):
    secret = tmp_path / "dot-ssh"
    secret.mkdir()
    (secret / "id_rsa").write_text("PRIVATE")
    at = page()
    for typed in (str(secret), "/", "/etc", str(lab_env / ".." / tmp_path.name)):
        open_path(at, typed)
        (error,) = at.error
        assert "not an allowed run folder" in error.value and "id_rsa" not in error.value, error.value
        assert str(secret) not in at.session_state["cr_selected"]
    bad = lab_env / "20990101-000002-broken"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    before = {f.name: f.read_bytes() for f in bad.iterdir()}
    open_path(at, str(bad))
    assert any("Cannot open" in e.value and "not valid JSON" in e.value for e in at.error)
    assert {f.name: f.read_bytes() for f in bad.iterdir()} == before  # nothing touched
    open_path(at, str(lab_env / "missing-run"))
    assert any("does not exist" in e.value for e in at.error)
    open_path(at, str(teacher.path))
    assert not at.error and str(teacher.path) in at.session_state["cr_selected"]
    shutil.rmtree(bad)


def test_odd_records_are_skipped_with_a_note_and_the_page_keeps_working(finished_runs, lab_env):
    odd = copy_run(finished_runs[1], lab_env, "20990101-000003-odd")
    seq = max(r.get("seq", 0) for r in map(json.loads, (odd / "metrics.jsonl").read_text().splitlines()))
    extra = [{"kind": "eval", "seq": seq + 1, "step": 999, "epoch": 9.0},
             {"kind": "eval", "seq": seq + 2, "step": 1000, "epoch": 9.5, "test_acc": "high"},
             {"kind": "step", "seq": seq + 3, "step": 1001, "epoch": 9.6, "loss": "low"}]
    with open(odd / "metrics.jsonl", "a") as f:
        f.writelines(json.dumps(r) + "\n" for r in extra)
    before = (odd / "metrics.jsonl").read_bytes()
    at = page()
    tick(at, [odd.name, Path(finished_runs[0]).name])
    (warning,) = [w.value for w in at.warning if "skipped" in w.value]
    assert "3 metric records skipped" in warning and odd.name[:15] in warning
    spec = charts(at)
    good = [100 * r["test_acc"] for r in metric_lines(odd, "eval") if isinstance(r.get("test_acc"), float)]
    odd_trace = next(t for t in spec["compare-accuracy"]["data"] if odd.name[:15] in t["name"])
    assert list(values(odd_trace["y"])) == pytest.approx(good)
    assert "final-accuracy" in spec and "compare-loss" in spec
    assert (odd / "metrics.jsonl").read_bytes() == before
    shutil.rmtree(odd)


def test_filters_by_dataset_and_method_keep_the_selection(finished_runs, teacher):
    at = page()
    kd, scratch = Path(finished_runs[0]).name, Path(finished_runs[1]).name
    tick(at, [kd, scratch])
    at.multiselect(key="cr_methods").set_value([get_method("kd").label]).run()
    assert list(ok(at).dataframe[0].value["name"]) == [kd]
    assert set(at.session_state["cr_selected"]) == {finished_runs[0], finished_runs[1]}  # hidden, still compared
    at.multiselect(key="cr_methods").set_value([]).run()
    at.multiselect(key="cr_datasets").set_value(["digits"]).run()
    assert {kd, scratch, Path(teacher.path).name} <= set(ok(at).dataframe[0].value["name"])
    assert "compare-accuracy" in charts(at)


def test_notes_are_kept_beside_the_run_and_delete_asks_first_and_removes_only_that_run(finished_runs, lab_env):
    doomed = copy_run(finished_runs[1], lab_env, "20990101-000004-doomed")
    others = {p.name for p in lab_env.iterdir()} - {doomed.name}
    records = (doomed / "metrics.jsonl").read_bytes()
    at = page()
    tick(at, [doomed.name])
    at.text_area(key=f"cr_note_{doomed.name}").input("lr too high; rerun with 0.01").run()
    at.button(key="cr_save_note").click().run()
    assert json.loads((doomed / "notes.json").read_text()) == {"note": "lr too high; rerun with 0.01"}
    assert (doomed / "metrics.jsonl").read_bytes() == records
    assert ok(at).dataframe[0].value.set_index("name").loc[doomed.name, "note"] == "lr too high; rerun with 0.01"
    at.button(key="cr_delete").click().run()
    assert doomed.is_dir() and any("cannot be undone" in w.value for w in ok(at).warning)
    at.button(key="cr_delete_no").click().run()
    assert doomed.is_dir()
    at.button(key="cr_delete").click().run()
    at.button(key="cr_delete_yes").click().run()
    assert not doomed.exists() and {p.name for p in lab_env.iterdir()} == others
    assert any("Deleted" in s.value for s in ok(at).success)
    assert doomed.name not in list(at.dataframe[0].value["name"])


def test_with_several_runs_ticked_the_second_one_can_be_chosen_for_its_note(finished_runs, lab_env):
    """The "Run" box of the notes picks any ticked run, not only the first (it used to be drawn inside
    a search, twice when the second run was chosen: a duplicate-key error instead of the page)."""
    first, second = copy_run(finished_runs[0], lab_env, "20990101-000006-first"), copy_run(
        finished_runs[1], lab_env, "20990101-000005-second")
    at = page()
    tick(at, [first.name, second.name])
    at.selectbox(key="cr_manage_run").set_value(second.name).run()
    assert [t.key for t in ok(at).text_area] == [f"cr_note_{second.name}"]
    at.text_area(key=f"cr_note_{second.name}").input("the second run").run()
    at.button(key="cr_save_note").click().run()
    assert json.loads((second / "notes.json").read_text()) == {"note": "the second run"}
    assert not (first / "notes.json").exists()
