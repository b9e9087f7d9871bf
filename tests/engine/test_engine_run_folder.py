"""Run folders: atomic files, flushed logs, RunReader with the LiveStore API, checkpoints."""
import hashlib
import json
import os

import numpy as np
import pytest
import torch

from kdviz.engine.config import TrainConfig
from kdviz.engine.run_folder import RunFolder, atomic_write_bytes, load_checkpoint, load_npz
from kdviz.engine.run_reader import RunReader, list_runs
from kdviz.engine.store import LiveStore


def _folder(tmp_path, name="r"):
    return RunFolder.create(TrainConfig(runs_root=str(tmp_path), name=name))


def _fill(folder: RunFolder, store: LiveStore, steps=5):
    for step in range(1, steps + 1):
        folder.append_metric(store.add_metric({"kind": "step", "step": step, "loss": 1.0 / step}))
    folder.append_metric(store.add_metric({"kind": "eval", "step": steps, "test_acc": 0.75}))
    for version, step in enumerate((0, steps), start=1):
        arrays = {"probe/soft": np.full((2, 3, 4), step, dtype=np.float32), "weights/fc1": np.arange(5)}
        snap = store.add_snapshot(step, step / 10, {"probe_acc": 0.5}, arrays)
        folder.write_snapshot(snap.version, snap.step, snap.epoch, snap.meta, arrays)
    store.set_reference({"probe/indices": np.arange(3)})
    folder.write_reference(store.reference())


def _digest(path):
    out = {}
    for root, _, files in os.walk(path):
        for f in files:
            p = os.path.join(root, f)
            out[p] = (hashlib.sha256(open(p, "rb").read()).hexdigest(), os.stat(p).st_mtime_ns)
    return out


def test_reader_gives_what_the_live_store_gives(tmp_path):
    folder, store = _folder(tmp_path), LiveStore()
    _fill(folder, store)
    reader = RunReader(folder.path)
    assert reader.metrics_since(0) == store.metrics_since(0)
    assert reader.metrics_since(3)[0] == store.metrics_since(3)[0]
    snaps, v = reader.snapshots_since(0)
    live, lv = store.snapshots_since(0)
    assert v == lv == 2
    for a, b in zip(snaps, live):
        assert (a.version, a.step, a.epoch, a.meta) == (b.version, b.step, b.epoch, b.meta)
        assert set(a.arrays) == set(b.arrays)
        for key in a.arrays:
            np.testing.assert_array_equal(a.arrays[key], b.arrays[key])
    assert reader.latest_snapshot().step == 5
    np.testing.assert_array_equal(reader.reference()["probe/indices"], np.arange(3))
    assert reader.config == TrainConfig(runs_root=str(tmp_path), name="r")


def test_reader_picks_up_appended_lines_but_not_a_half_written_one(tmp_path):
    folder, store = _folder(tmp_path), LiveStore()
    _fill(folder, store, steps=2)
    reader = RunReader(folder.path)
    _, v = reader.metrics_since(0)
    with open(folder.path / "metrics.jsonl", "a") as f:
        f.write('{"kind": "step", "step": 3, "seq": 4')  # a writer in the middle of a line
    assert reader.metrics_since(v) == ([], v)
    with open(folder.path / "metrics.jsonl", "a") as f:
        f.write(', "loss": 0.1}\n')
    new, v2 = reader.metrics_since(v)
    assert [r["step"] for r in new] == [3] and v2 == 4


def test_garbage_lines_are_skipped_with_a_warning_and_the_folder_is_untouched(tmp_path):
    folder, store = _folder(tmp_path), LiveStore()
    _fill(folder, store, steps=3)
    folder.close()
    lines = (folder.path / "metrics.jsonl").read_text().splitlines()
    lines.insert(1, "this is not json")
    lines.insert(3, "[1, 2]")
    (folder.path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    before = _digest(folder.path)
    with pytest.warns(RuntimeWarning, match="malformed line"):
        records = RunReader(folder.path).metrics()
    assert [r["step"] for r in records] == [1, 2, 3, 3]
    assert _digest(folder.path) == before


def test_atomic_write_replaces_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "status.json"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["status.json"]


def test_snapshot_npz_loads_without_pickle_and_object_arrays_are_refused(tmp_path):
    folder = _folder(tmp_path)
    folder.write_snapshot(1, 0, 0.0, {}, {"a": np.eye(2)})
    assert load_npz(folder.snapshot_dir / "000001.npz")["a"].tolist() == [[1, 0], [0, 1]]
    with pytest.raises(TypeError, match="object"):
        folder.write_snapshot(2, 0, 0.0, {}, {"bad": np.array([{"x": 1}], dtype=object)})


def test_checkpoint_round_trip_and_clear_errors(tmp_path):
    folder = _folder(tmp_path)
    path = folder.save_checkpoint({"model": {"w": torch.ones(2)}, "step": 7})
    state = load_checkpoint(path)
    assert state["step"] == 7 and torch.equal(state["model"]["w"], torch.ones(2))
    assert load_checkpoint(folder.path)["step"] == 7  # a run folder means its last checkpoint
    path.write_bytes(path.read_bytes()[:40])  # truncated
    with pytest.raises(ValueError, match=r"last\.safetensors.*corrupt"):
        load_checkpoint(path)
    with pytest.raises(ValueError, match="does not exist"):
        load_checkpoint(folder.checkpoint_dir / "missing.pt")
    torch.save({"format": 1, "model": {}, "evil": _Unpicklable()}, folder.checkpoint_dir / "code.pt")
    with pytest.raises(ValueError, match="code.pt"):  # weights_only refuses arbitrary classes
        load_checkpoint(folder.checkpoint_dir / "code.pt")


class _Unpicklable:
    pass


def test_list_runs_reads_status_and_skips_non_runs(tmp_path):
    a = _folder(tmp_path, "first")
    a.write_status({"state": "finished", "step": 10, "total_steps": 10, "test_acc": 0.9})
    _folder(tmp_path, "second")
    (tmp_path / "not-a-run").mkdir()
    rows = list_runs(tmp_path)
    assert len(rows) == 2
    states = {r["name"].split("-", 2)[-1]: r["state"] for r in rows}
    assert states == {"first": "finished", "second": "unknown"}
    assert list_runs(tmp_path / "nowhere") == []
    assert json.loads((a.path / "config.json").read_text())["name"] == "first"


def test_truncate_after_drops_only_records_past_the_step_and_counts_them(tmp_path):
    folder, store = _folder(tmp_path), LiveStore()
    _fill(folder, store, steps=6)  # step records 1..6, an eval at 6, snapshots at 0 and 6
    folder.close()
    metrics = folder.path / "metrics.jsonl"
    with open(metrics, "a") as f:
        f.write("not json, but not ours to delete\n")
        f.write('{"kind": "step", "step": 7, "se')  # a killed writer's half line
    cut = folder.truncate_after(4)
    assert (cut.top_seq, cut.top_version, cut.dropped_metrics, cut.dropped_snapshots) == (7, 2, 3, 1)
    assert "dropped 3 metric record(s) and 1 snapshot(s)" in cut.describe()
    kept = metrics.read_text().splitlines()
    assert [json.loads(line)["step"] for line in kept[:-1]] == [1, 2, 3, 4] and kept[-1] == "not json, but not ours to delete"
    before = _digest(folder.path)
    again = folder.truncate_after(4)  # nothing left to drop: no file is rewritten
    assert (again.dropped_metrics, again.dropped_snapshots) == (0, 0) and _digest(folder.path) == before
    assert folder.truncate_after(None).dropped_metrics == 4  # no checkpoint: every record goes


@pytest.mark.parametrize("how", ["final status", "release"])
def test_a_folder_that_let_go_of_its_lock_refuses_every_write_and_changes_nothing(tmp_path, how):
    from kdviz.engine.lock import writer_alive
    from kdviz.engine.run_folder import RunFolderClosed

    folder, store = _folder(tmp_path), LiveStore()
    _fill(folder, store, steps=3)
    folder.save_checkpoint({"model": {"w": torch.ones(2)}, "step": 3})
    if how == "final status":
        folder.write_status({"state": "stopped", "step": 3})
    else:
        folder.release()
    assert folder.closed and writer_alive(folder.path) is False
    before = _digest(folder.path)
    writes = {
        "checkpoint": lambda: folder.save_checkpoint({"model": {"w": torch.zeros(2)}, "step": 4}),
        "metric record": lambda: folder.append_metric({"seq": 99, "kind": "step", "step": 4}),
        "snapshot": lambda: folder.write_snapshot(9, 4, 0.4, {}, {"a": np.eye(2)}),
        "reference file": lambda: folder.write_reference({"a": np.eye(2)}),
        "status": lambda: folder.write_status({"state": "running", "step": 4}),
        "truncation": lambda: folder.truncate_after(1),
    }
    for what, write in writes.items():
        with pytest.raises(RunFolderClosed, match=f"{what} not written"):
            write()
    assert _digest(folder.path) == before
    assert load_checkpoint(folder.path)["step"] == 3


def test_a_run_that_finishes_between_the_status_read_and_the_lock_check_reads_finished(tmp_path, monkeypatch):
    """read_status read "running", then the writer wrote "finished" and let go of its lock before the
    lock was checked: the run must read "finished", not "interrupted" (a Deep Compression stage once
    refused to start from a pruning run that had just finished)."""
    from kdviz.engine import run_reader

    folder = RunFolder.create(TrainConfig(runs_root=str(tmp_path), name="race"))
    folder.write_status({"state": "running", "step": 5})
    real_alive = run_reader.writer_alive

    def writer_ends_meanwhile(path):
        if not folder.closed:
            folder.write_status({"state": "finished", "step": 6})  # final status first, then the lock goes
        return real_alive(path)

    monkeypatch.setattr(run_reader, "writer_alive", writer_ends_meanwhile)
    status = run_reader.read_status(folder.path)
    assert status["state"] == "finished" and status["step"] == 6
    # a writer that really died mid-run still reads "interrupted"
    dead = RunFolder.create(TrainConfig(runs_root=str(tmp_path), name="dead"))
    dead.write_status({"state": "running", "step": 3})
    dead.release()
    assert run_reader.read_status(dead.path)["state"] == "interrupted"
