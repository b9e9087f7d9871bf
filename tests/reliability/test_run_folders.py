"""Run folders under faults and hostile contents (issue 13, items 7, 8, 9, 10, 12, 14).

One writer per folder (a second gets an error naming the first, in this process or another), a dead
writer's run reads "interrupted", reads never leave the folder (symlinks, absolute and ``../``
entries), checkpoints that hold code are refused without running it and without torch's advice,
periodic checkpoints bound what a kill loses, collapsed and overflowing runs are flagged, and an
empty test split is refused with a clear message.
"""
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from _support.jobs import slow_step_hook
from _support.polling import wait_for
import torch

from kdviz.data import DATASETS, DatasetBundle, load_dataset
from kdviz.engine import HOOKS, Job, TrainConfig, TrainingHook, list_runs, load_checkpoint, open_run, start
from kdviz.engine.lock import RunFolderLocked, writer_alive
from kdviz.engine.run_folder import RunFolder, npz_bytes
from kdviz.engine.run_reader import RunReader, read_status
from kdviz.present import describe, readiness

SMALL = {"hidden": [32]}


def cfg(root, **kw):
    base = dict(dataset="digits", model="mlp", model_options=SMALL, epochs=2, lr=0.1, runs_root=str(root), snapshot_every=0)
    return TrainConfig(**{**base, **kw})


def _folder(root, name="r"):
    return RunFolder.create(cfg(root, name=name))


# ---- one writer per run folder (item 7) ---------------------------------------------------------
def test_a_second_writer_in_the_same_process_is_refused_naming_the_first(tmp_path):
    first = _folder(tmp_path)
    with pytest.raises(RunFolderLocked, match=rf"being written by process {os.getpid()} on host {socket.gethostname()}"):
        RunFolder(first.path)
    first.append_metric({"seq": 1, "kind": "step", "step": 1})
    first.write_status({"state": "finished"})  # the writer's last word frees the folder
    second = RunFolder(first.path)
    second.release()


def test_a_second_writer_in_another_process_is_refused_and_a_killed_holder_frees_the_folder(tmp_path):
    folder = _folder(tmp_path)
    path = folder.path
    folder.release()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from kdviz.engine.run_folder import RunFolder
        folder = RunFolder({str(path)!r})
        print("locked", flush=True)
        time.sleep(120)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert writer_alive(path) is True
        with pytest.raises(RunFolderLocked, match=rf"process {holder.pid} on host"):
            RunFolder(path)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    assert writer_alive(path) is False  # the OS dropped the flock with the process
    RunFolder(path).release()


def test_two_jobs_on_one_folder_cannot_both_write(tmp_path, manager):
    job = start(cfg(tmp_path, epochs=50, name="busy", pace_s=120.0), manager)  # paced: still writing when probed
    try:
        wait_for(lambda: job.status().state == "running", 60, "the job to take its slot (a queued job holds no lock yet)")
        with pytest.raises(RunFolderLocked, match=f"process {os.getpid()}"):
            RunFolder(job.path)
    finally:
        job.stop()
        job.wait(30)
    assert writer_alive(job.path) is False


# ---- a dead writer reads as interrupted (item 14) -----------------------------------------------
@pytest.mark.parametrize("recorded", ["running", "queued", "paused"])
def test_a_live_state_without_a_writer_reads_interrupted(tmp_path, recorded):
    folder = _folder(tmp_path)
    folder.write_status({"state": recorded, "step": 7, "updated": time.time()})
    assert read_status(folder.path)["state"] == recorded  # its writer holds the lock: really live
    folder.release()
    status = read_status(folder.path)
    assert status["state"] == "interrupted" and status["recorded_state"] == recorded
    assert "step 7" in status["message"] and "resume" in status["message"]
    assert [r["state"] for r in list_runs(tmp_path)] == ["interrupted"]
    assert open_run(folder.path).status()["state"] == "interrupted"


def test_a_final_state_is_never_reported_as_interrupted(tmp_path):
    folder = _folder(tmp_path)
    folder.write_status({"state": "stopped", "step": 3})
    assert read_status(folder.path)["state"] == "stopped" and writer_alive(folder.path) is False


# ---- reads stay inside the run folder (item 8) --------------------------------------------------
SECRET = np.full((3,), 1234.5)


@pytest.fixture
def outside(tmp_path):
    """A folder beside the runs root holding files a hostile run folder points at."""
    place = tmp_path / "outside"
    place.mkdir()
    (place / "secret.npz").write_bytes(npz_bytes({"probe/logits": SECRET}))
    (place / "metrics.jsonl").write_text(json.dumps({"seq": 1, "kind": "eval", "step": 0, "test_acc": 0.99}) + "\n")
    return place


def _hostile_folder(root, outside, entries):
    folder = _folder(root / "runs")
    folder.write_snapshot(1, 0, 0.0, {"probe_acc": 0.5}, {"probe/logits": np.zeros(3)})
    with open(folder.snapshot_dir / "index.jsonl", "a") as f:
        for version, file in enumerate(entries, start=2):
            f.write(json.dumps({"version": version, "step": version, "epoch": 0.0, "meta": {}, "file": file}) + "\n")
    folder.release()
    return folder


def test_absolute_and_dotdot_snapshot_entries_are_refused_with_a_note(tmp_path, outside):
    secret = outside / "secret.npz"
    relative = os.path.relpath(secret, tmp_path / "runs" / "x" / "snapshots")
    folder = _hostile_folder(tmp_path, outside, [str(secret), "../../../outside/secret.npz", relative])
    reader = RunReader(folder.path)
    with pytest.warns(RuntimeWarning, match="outside the run folder"):
        snaps, version = reader.snapshots_since(0)
    assert [s.version for s in snaps] == [1]  # only the honest snapshot
    assert all(not np.array_equal(s.arrays.get("probe/logits"), SECRET) for s in snaps)
    assert len(reader.notes) == 3 and all("points outside the run folder" in n and "was not read" in n for n in reader.notes)


def test_refused_files_reach_the_status_line_of_both_uis(tmp_path, outside):
    """``RunReader.notes`` travel with the reader's status (and a reopened job's), and ``describe``
    turns them into one short line: how many files were not read, the first, the rest counted."""
    folder = _hostile_folder(tmp_path, outside, [str(outside / "secret.npz"), "../../../outside/secret.npz"])
    (folder.path / "metrics.jsonl").symlink_to(outside / "metrics.jsonl")
    reader = RunReader(folder.path)
    assert "notes" not in reader.status()  # nothing refused before anything is read
    with pytest.warns(RuntimeWarning, match="outside the run folder"):
        reader.snapshots_since(0)
        reader.metrics()
    assert reader.status()["notes"] == reader.notes and len(reader.notes) == 3
    text = describe(reader.status(), "hostile run")
    assert text.note.startswith("3 files of this run not read: refused ") and text.note.endswith(" (and 2 more)")
    assert len(text.note) < 220 and text.detail.endswith(text.note)
    job = Job.reopened(folder.path)
    with pytest.warns(RuntimeWarning):
        job.store.metrics()
    assert job.status().notes == job.store.notes and len(job.store.notes) == 3  # one refresh reads every log
    assert describe(job.status(), "x").note.startswith("3 files of this run not read: refused 'metrics.jsonl'")


def test_symlinks_out_of_the_folder_are_refused_for_every_file_a_reader_opens(tmp_path, outside):
    folder = _hostile_folder(tmp_path, outside, ["000009.npz"])
    (folder.snapshot_dir / "000009.npz").symlink_to(outside / "secret.npz")
    (folder.snapshot_dir / "reference.npz").symlink_to(outside / "secret.npz")
    (folder.path / "metrics.jsonl").symlink_to(outside / "metrics.jsonl")
    (folder.path / "status.json").symlink_to(outside / "metrics.jsonl")
    reader = RunReader(folder.path)
    with pytest.warns(RuntimeWarning):
        assert reader.metrics() == []
        assert [s.version for s in reader.snapshots_since(0)[0]] == [1]
        assert reader.reference() == {}
    assert len(reader.notes) == 3
    assert {"metrics.jsonl", "000009.npz", "reference.npz"} == {n.split("'")[1].split("/")[-1] for n in reader.notes}
    status = read_status(folder.path)
    assert status["state"] == "unknown" and "outside the run folder" in status["message"]
    # a symlink that stays inside the folder is fine
    os.unlink(folder.snapshot_dir / "000009.npz")
    (folder.snapshot_dir / "000009.npz").symlink_to(folder.snapshot_dir / "000001.npz")
    assert [s.version for s in RunReader(folder.path).snapshots_since(0)[0]] == [1, 2]


def test_a_symlinked_config_outside_the_folder_is_refused(tmp_path, outside):
    folder = _folder(tmp_path / "runs")
    folder.release()
    (outside / "config.json").write_text(cfg(tmp_path).to_json())
    os.unlink(folder.path / "config.json")
    (folder.path / "config.json").symlink_to(outside / "config.json")
    with pytest.raises(ValueError, match="points outside the run folder"):
        RunReader(folder.path)


# ---- checkpoints that hold code (item 12) -------------------------------------------------------
class _Trap:
    """Unpickling this runs os.mkdir(marker): the code a hostile checkpoint would run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("how", ["torch.save", "raw pickle", "nested in the model"])
def test_a_checkpoint_holding_code_is_refused_with_one_plain_sentence_and_never_runs(tmp_path, how):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    if how == "torch.save":
        torch.save({"format": 1, "model": {}, "step": 0, "payload": _Trap(marker)}, path)
    elif how == "raw pickle":
        path.write_bytes(pickle.dumps(_Trap(marker)))
    else:
        torch.save({"format": 1, "model": {"fc.weight": _Trap(marker)}, "step": 0}, path)
    with pytest.raises(ValueError) as info:
        load_checkpoint(path)
    assert str(info.value) == f"checkpoint {path}: this file is not a plain-tensor checkpoint and was not loaded"
    assert not marker.exists()


def test_corrupt_and_truncated_checkpoints_say_so_without_torch_text(tmp_path):
    good = tmp_path / "good.pt"
    torch.save({"format": 1, "model": {"w": torch.ones(2)}, "step": 1}, good)
    truncated, garbage = tmp_path / "truncated.pt", tmp_path / "garbage.pt"
    truncated.write_bytes(good.read_bytes()[:60])
    garbage.write_bytes(b"\x1b[31mnot a checkpoint\x1b[0m")
    for path in (truncated, garbage):
        with pytest.raises(ValueError) as info:
            load_checkpoint(path)
        message = str(info.value)
        assert str(path) in message and "corrupt" in message and "was not loaded" in message
        assert "weights_only" not in message and "\x1b" not in message and "PytorchStreamReader" not in message


# ---- periodic checkpoints (item 14) -------------------------------------------------------------
class CheckpointAge(TrainingHook):
    """Records, after every step, how many steps the checkpoint on disk is behind (the run is the
    only folder under its runs root)."""

    seen: list = []

    def after_step(self, ctx):
        (run,) = os.listdir(ctx.config.runs_root)
        saved = load_checkpoint(os.path.join(ctx.config.runs_root, run))["step"]
        CheckpointAge.seen.append(ctx.step - saved)


if "test-checkpoint-age" not in HOOKS:
    HOOKS.register("test-checkpoint-age")(CheckpointAge)


def test_checkpoints_are_written_every_n_steps_not_only_per_epoch(tmp_path, manager):
    CheckpointAge.seen.clear()
    job = start(cfg(tmp_path, epochs=2, checkpoint_every_steps=7, hooks=[{"name": "test-checkpoint-age"}], name="ck"), manager)
    assert job.wait(60).state == "finished"
    spe = job.status().total_steps // 2
    assert spe > 14  # several periodic checkpoints inside each epoch
    # after a step the checkpoint on disk is at most 7 steps behind (it is taken after after_step)
    assert max(CheckpointAge.seen) == 7 and len(CheckpointAge.seen) == 2 * spe
    state = load_checkpoint(job.path)
    assert state["step"] == 2 * spe and state["epoch"] == pytest.approx(2.0)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_checkpoint_every_steps_is_validated(bad):
    with pytest.raises((ValueError, TypeError), match="checkpoint_every_steps"):
        TrainConfig(checkpoint_every_steps=bad).validate()


def test_checkpoint_every_steps_does_not_change_what_a_run_trains():
    assert TrainConfig(checkpoint_every_steps=5).identity() == TrainConfig().identity()
    assert TrainConfig().validate().checkpoint_every_steps is None  # by default: every few seconds of training


def test_by_default_a_checkpoint_follows_a_few_seconds_of_training(tmp_path, manager, monkeypatch):
    import kdviz.engine.trainer as trainer

    monkeypatch.setattr(trainer, "AUTO_CHECKPOINT_S", 0.25)  # the 5 s default, scaled down for a test
    CheckpointAge.seen.clear()
    hooks = [slow_step_hook(0.02), {"name": "test-checkpoint-age"}]
    job = start(cfg(tmp_path, epochs=1, eval_every=0, hooks=hooks, name="timed"), manager)
    assert job.wait(60).state == "finished"
    # 22 steps of >= 20 ms with no evaluation inside the epoch: without timed checkpoints the lag would reach 21
    assert 0 < max(CheckpointAge.seen) <= 14


# ---- collapse and overflow (item 9) -------------------------------------------------------------
def test_a_collapsed_run_finishes_flagged_at_chance(tmp_path, manager):
    status = start(cfg(tmp_path, optimizer="adam", lr=10.0, epochs=3, name="collapse"), manager).wait(60)
    assert status.state == "finished" and status.test_acc <= 0.12
    assert "collapsed: test accuracy at chance (10 %)" in status.message
    assert "lr=10" in status.message and "adam" in status.message
    (run,) = tmp_path.iterdir()
    assert json.loads((run / "status.json").read_text())["message"] == status.message
    # the warning has its own field, kept on disk, and every UI's status text shows it with the warning icon
    assert status.warning.startswith("collapsed: test accuracy at chance (10 %)") and status.warning in status.message
    saved = json.loads((run / "status.json").read_text())
    assert saved["warning"] == status.warning and "notes" not in saved  # notes are a reader's, never written
    reopened = Job.reopened(run).status()
    assert reopened.warning == status.warning
    text = describe(reopened, "KD student", epochs=3)
    assert (text.state, text.icon, text.warning) == ("finished", "warning", status.warning)
    assert text.detail.endswith(f" · Warning: {status.warning}")
    ready = readiness(reopened, "teacher")
    assert ready.icon == "warning" and ready.detail == f"Warning: {status.warning}"


def test_a_healthy_run_is_not_flagged(tmp_path, manager):
    status = start(cfg(tmp_path, epochs=2, name="healthy"), manager).wait(60)
    assert status.state == "finished" and status.test_acc > 0.8 and "collapsed" not in status.message
    assert status.warning == "" and describe(status, "x").icon == "check_circle" and "Warning" not in describe(status, "x").detail


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_an_overflowing_learning_rate_diverges_with_the_divergence_message(tmp_path, manager, optimizer):
    job = start(cfg(tmp_path, lr=1e300, optimizer=optimizer, name=f"overflow-{optimizer}"), manager)
    status = job.wait(60)
    assert status.state == "diverged", status.message
    assert read_status(job.path)["state"] == "diverged" and writer_alive(job.path) is False
    assert "learning rate lr=1e+300" in status.message and f"too high for {optimizer}" in status.message
    assert status.traceback == "" and "overflow" not in status.message


# ---- an empty test split (item 10) --------------------------------------------------------------
def _no_test_images(root=None, download=False):
    digits = load_dataset("digits")
    return DatasetBundle(name="test-no-test-images", train_images=digits.train_images[:64], train_labels=digits.train_labels[:64],
                         test_images=digits.test_images[:0], test_labels=digits.test_labels[:0],
                         class_names=digits.class_names, description="digits without a test split")


@pytest.fixture
def no_test_images():
    """A plug-in dataset whose test split is empty, registered for this test only."""
    DATASETS.register("test-no-test-images")(_no_test_images)
    yield
    DATASETS._items.pop("test-no-test-images", None)


def test_a_dataset_with_no_test_images_is_refused_with_a_clear_message(tmp_path, manager, no_test_images):
    job = start(cfg(tmp_path, dataset="test-no-test-images", name="empty"), manager)
    status = job.wait(60)
    assert status.state == "failed" and writer_alive(job.path) is False  # a crashed job frees its folder
    assert "dataset 'test-no-test-images' has no test images" in status.message
    assert "max() arg" not in status.message
