"""Compare runs under bad input: deleting only run folders inside the runs root, notes that never touch a
run's records, odd metric records skipped and counted, and the path box confined to the allowed roots."""
from __future__ import annotations

import json
import os

import pytest

from kdviz.engine import TrainConfig
from kdviz.engine.lock import WriterLock
from kdviz.paths import PathNotAllowed, confine
from kdviz.present.run_table import (NOTE_FILE, clean_records, delete_run, read_note, run_rows, skipped_note,
                                     write_note)


def make_run(root, name, **options):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(TrainConfig(dataset="digits", model="mlp", epochs=2, **options).to_json())
    (folder / "metrics.jsonl").write_text('{"kind": "eval", "seq": 1, "step": 5, "epoch": 1.0, "test_acc": 0.5}\n')
    return folder


def snapshot(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def root(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    return runs


def test_delete_removes_one_run_folder_and_nothing_else(root, tmp_path):
    keep, doomed = make_run(root, "20260101-000000-keep"), make_run(root, "20260101-000001-doomed")
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    (doomed / "link-out").symlink_to(outside)
    before = snapshot(keep)
    assert delete_run(doomed, root) == doomed.resolve()
    assert not doomed.exists() and snapshot(keep) == before and outside.read_text() == "keep me"


@pytest.mark.parametrize("target", ["root itself", "outside", "nested", "dotdot", "no config", "link"])
def test_delete_refuses_anything_but_a_run_folder_directly_in_the_root(root, tmp_path, target):
    run = make_run(root, "20260101-000000-run")
    (run / "sub").mkdir()
    (run / "sub" / "config.json").write_text("{}")
    other = make_run(tmp_path / "elsewhere", "20260101-000000-other")
    (root / "not-a-run").mkdir()
    (root / "alias").symlink_to(run)
    path = {"root itself": root, "outside": other, "nested": run / "sub", "dotdot": root / ".." / "elsewhere" / other.name,
            "no config": root / "not-a-run", "link": root / "alias"}[target]
    before = snapshot(tmp_path)
    with pytest.raises(ValueError, match="runs root|not a run folder|is a link"):
        delete_run(path, root)
    assert snapshot(tmp_path) == before and run.is_dir() and other.is_dir()


def test_delete_refuses_a_run_whose_writer_is_alive(root):
    run = make_run(root, "20260101-000000-live")
    lock = WriterLock(run).acquire()
    try:
        with pytest.raises(ValueError, match="still being written"):
            delete_run(run, root)
        assert (run / "config.json").is_file()
    finally:
        lock.release()
    delete_run(run, root)
    assert not run.exists()


def test_a_note_is_its_own_small_file_written_atomically(root):
    run = make_run(root, "20260101-000000-noted")
    before = snapshot(run)
    write_note(run, "  teacher too confident at T=1  ", root)
    assert json.loads((run / NOTE_FILE).read_text()) == {"note": "teacher too confident at T=1"}
    assert read_note(run) == "teacher too confident at T=1"
    after = snapshot(run)
    assert {k: v for k, v in after.items() if k != NOTE_FILE} == before
    assert [p.name for p in run.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"] == []  # no temp file left
    with pytest.raises(ValueError, match="at most"):
        write_note(run, "x" * 5000, root)
    with pytest.raises(ValueError, match="runs root"):
        write_note(make_run(root.parent / "other", "x"), "hi", root)
    (run / NOTE_FILE).write_text("{broken")
    assert read_note(run) == ""


def test_rows_name_methods_not_base_losses_and_survive_broken_folders(root, tmp_path):
    make_run(root, "20260101-000000-fsp", hooks=[{"name": "fsp"}], method="none", teacher=str(tmp_path))
    broken = root / "20260101-000001-broken"
    broken.mkdir()
    (broken / "config.json").write_text("[1, 2")
    (root / "20260101-000002-link").symlink_to(tmp_path)
    rows, problems = run_rows(root)
    (row,) = rows
    assert row["method"] != "none" and "FSP" in row["method"] and row["T"] is None and row["alpha"] is None
    assert len(problems) == 1 and problems[0].startswith(broken.name)


@pytest.mark.parametrize("record", [
    {"kind": "eval", "epoch": 1.0},
    {"kind": "eval", "epoch": 1.0, "test_acc": "0.9"},
    {"kind": "eval", "epoch": 1.0, "test_acc": 1.5},
    {"kind": "eval", "epoch": 1.0, "test_acc": float("nan")},
    {"kind": "eval", "epoch": None, "test_acc": 0.5},
    {"kind": "eval", "epoch": 1.0, "test_acc": True},
    {"kind": "step", "step": 3},
    {"kind": "step", "step": "3", "loss": 1.0},
    {"kind": "step", "step": 3, "loss": "nan"},
    "not a record",
])
def test_odd_records_are_skipped_and_counted(record):
    good = [{"kind": "eval", "epoch": 1.0, "test_acc": 0.5}, {"kind": "step", "step": 1, "loss": float("inf")}]
    kept, skipped = clean_records([good[0], record, good[1]])
    assert kept == good and skipped == 1
    assert "KD T=4: 1 metric record skipped" in skipped_note("KD T=4", skipped)


@pytest.mark.parametrize("typed", ["/", "/etc", "~", "../../..", "runs/../../..", "\x00", "  "])
def test_the_path_box_refuses_folders_outside_the_allowed_roots(typed, root, monkeypatch):
    monkeypatch.setenv("KDVIZ_RUNS", str(root))
    monkeypatch.setenv("KDVIZ_CACHE", str(root / "cache"))
    monkeypatch.delenv("KDVIZ_DATA", raising=False)
    monkeypatch.delenv("KDVIZ_ALLOWED_DIRS", raising=False)
    monkeypatch.chdir(root)
    with pytest.raises(PathNotAllowed) as info:
        confine(typed, "run folder")
    message = str(info.value)
    assert "allowed" in message or "NUL" in message or "No run folder" in message
    assert not any(name in message for name in os.listdir("/etc")[:20] if len(name) > 6)


def test_runs_sharing_a_label_are_told_apart_by_their_folder_names():
    from kdviz.present.run_table import distinct_colours, unique_labels

    labels = unique_labels(["scratch · 20261129-094024"] * 2 + ["KD T=4 · 20261129-094024"],
                           ["20261129-094024-scratch-1", "20261129-094024-scratch-2", "20261129-094024-kd"])
    assert labels == ["scratch · 20261129-094024 · scratch-1", "scratch · 20261129-094024 · scratch-2",
                      "KD T=4 · 20261129-094024"]
    colours = distinct_colours(["#009e73", "#009e73", "#0072b2", "#009e73"])
    assert colours[0] == "#009e73" and colours[2] == "#0072b2" and len(set(colours)) == 4


def test_the_comparison_widget_skips_odd_records_with_a_note(root):
    from kdviz.widgets import RunComparison

    run = make_run(root, "20260101-000000-odd")
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"kind": "eval", "seq": 2, "step": 9, "epoch": 2.0, "test_acc": "high"}\n')
        f.write('{"kind": "eval", "seq": 3, "step": 10, "epoch": 3.0, "test_acc": 0.75}\n')
    before = snapshot(run)
    comparison = RunComparison({"odd": str(run)}, autostart=False)
    assert "odd: 1 metric record skipped" in comparison.notes.value
    assert list(comparison.accuracy_chart.widget.data[0].y) == pytest.approx([50.0, 75.0])
    assert comparison.final_chart.widget.data[0].x[0] == pytest.approx(25.0)
    assert snapshot(run) == before
