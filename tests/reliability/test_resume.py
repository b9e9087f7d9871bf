"""Resume under bad input (issue 13, items 2, 5, 10, 12, 14): a refused resume writes nothing, a
checkpoint's fields are checked against the run's records, only records strictly after the
checkpoint are dropped (and counted), and a run killed before its first checkpoint starts over."""
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import torch

from kdviz.engine import TrainConfig, load_checkpoint, open_run, resume, start
from kdviz.engine.lock import RunFolderLocked
from kdviz.engine.run_folder import RunFolder, checkpoint_file
from kdviz.models.checkpoint_io import read_state, state_from_bytes, write_state
from kdviz.engine.run_reader import read_status

SMALL = {"hidden": [32]}


def cfg(root, **kw):
    base = dict(dataset="digits", model="mlp", model_options=SMALL, epochs=2, lr=0.1, runs_root=str(root), snapshot_every=10)
    return TrainConfig(**{**base, **kw})


def digest(folder):
    """Every file under ``folder``: its bytes' hash and its mtime (a rewrite with equal bytes shows too)."""
    out = {}
    for base, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(base, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = (hashlib.sha256(f.read()).hexdigest(), os.stat(path).st_mtime_ns)
    return out


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def teacher(root, manager):
    """A finished 2-epoch teacher: the run a clumsy resume must never damage."""
    job = start(cfg(root, name="teacher"), manager)
    assert job.wait(60).state == "finished"
    return job.path


@pytest.fixture
def copy_of(teacher, tmp_path):
    def make(name="copy"):
        return shutil.copytree(teacher, tmp_path / name)
    return make


def refused_untouched(path, match, manager, **kw):
    """Resume ``path`` expecting a ValueError matching ``match``; the folder must not change."""
    before = digest(path)
    with pytest.raises(ValueError, match=match) as info:
        resume(path, manager, **kw)
    assert digest(path) == before
    return str(info.value)


# ---- item 2: validate first, write nothing on refusal -------------------------------------------
@pytest.mark.parametrize("epochs", [1, 2])
def test_a_finished_teacher_with_too_few_epochs_is_byte_identical(teacher, manager, epochs):
    message = refused_untouched(teacher, r"already trained 2 epoch\(s\).*epochs must be at least 3", manager, epochs=epochs)
    assert "it was not resumed" in message
    assert read_status(teacher)["state"] == "finished" and json.loads((teacher / "config.json").read_text())["epochs"] == 2


def test_the_cli_resume_with_too_few_epochs_leaves_the_folder_byte_identical(copy_of):
    path = copy_of()
    before = digest(path)
    done = subprocess.run([sys.executable, "-m", "kdviz", "resume", str(path), "--epochs", "1", "--quiet"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "epochs must be at least 3" in done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    assert digest(path) == before


def test_a_finished_run_without_epochs_is_refused_untouched(teacher, manager):
    refused_untouched(teacher, "already finished", manager)


def test_a_missing_checkpoint_after_training_is_refused_untouched(copy_of, manager):
    path = copy_of()
    os.unlink(checkpoint_file(path))
    refused_untouched(path, r"no checkpoint .*recorded training up to step 44", manager, epochs=5)


def test_a_corrupt_checkpoint_is_refused_untouched(copy_of, manager):
    path = copy_of()
    ckpt = checkpoint_file(path)
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    refused_untouched(path, r"last\.safetensors is corrupt", manager, epochs=5)


def test_a_bad_reference_file_is_refused_untouched(copy_of, manager):
    path = copy_of()
    (path / "snapshots" / "reference.npz").write_bytes(b"PK\x03\x04 not really a zip")
    refused_untouched(path, r"reference file .*reference\.npz cannot be read", manager, epochs=5)


def test_a_checkpoint_that_does_not_fit_the_model_is_refused_untouched(copy_of, manager):
    path = copy_of()
    ckpt = checkpoint_file(path)
    state = read_state(ckpt)
    first = next(iter(state["model"]))
    state["model"][first] = torch.zeros(3, 3)
    write_state(ckpt, state)
    message = refused_untouched(path, "does not fit this run's model 'mlp'", manager, epochs=5)
    assert "RuntimeError" not in message and "size mismatch" in message


class _Trap:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_a_checkpoint_holding_code_is_refused_untouched_and_never_runs(copy_of, manager, tmp_path):
    path = copy_of()
    marker = tmp_path / "code-ran"
    state = read_state(checkpoint_file(path))
    (path / "checkpoints" / "last.safetensors").unlink()  # a run folder of an older kdviz: torch.save files
    torch.save({**state, "payload": _Trap(marker)}, path / "checkpoints" / "last.pt")
    message = refused_untouched(path, "this file is not a plain-tensor checkpoint and was not loaded", manager, epochs=5)
    assert not marker.exists() and "weights_only" not in message and "\x1b" not in message


def test_a_live_run_is_refused_naming_its_process_and_its_config_is_kept(root, manager):
    job = start(cfg(root, epochs=60, name="live"), manager)
    try:
        job.pause()
        deadline = time.monotonic() + 30
        while job.status().state != "paused" and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(RunFolderLocked, match=f"being written by process {os.getpid()}"):
            resume(job.path, manager, epochs=80)
        assert json.loads((job.path / "config.json").read_text())["epochs"] == 60
    finally:
        job.stop()
        job.wait(30)


# ---- item 5: checkpoint fields checked against the records --------------------------------------
@pytest.mark.parametrize("changes,match", [
    ({"step": -5}, r"step -5, outside this run's 0\.\.44 steps"),
    ({"step": 10**6}, "outside this run's"),
    ({"step": 3.0}, "no integer step"),
    ({"step": 20}, "does not match its step"),
    ({"step": 20, "epoch": 20 / 22}, r"records written before it reach step 44"),
    ({"epoch": 0.5}, "does not match its step"),
    ({"metric_seq": 10**6}, "does not belong to these records"),
])
def test_tampered_checkpoint_fields_are_refused_and_nothing_is_deleted(copy_of, manager, changes, match):
    path = copy_of()
    ckpt = checkpoint_file(path)
    state = {**read_state(ckpt), **changes}
    write_state(ckpt, {k: v for k, v in state.items() if v is not None})
    refused_untouched(path, match, manager, epochs=5)


def test_a_checkpoint_past_the_end_of_the_records_is_refused_untouched(copy_of, manager):
    path = copy_of()
    metrics = path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps(r) + "\n" for r in lines(metrics) if r["step"] <= 10))
    ckpt = checkpoint_file(path)
    state = read_state(ckpt)
    del state["metric_seq"]  # a checkpoint from before checkpoints recorded it
    write_state(ckpt, state)
    refused_untouched(path, r"at step 44 but the run's records before it stop at step 10", manager, epochs=5)


def _interrupted_between_checkpoints(root, manager, name):
    """A real run stopped at some step past an earlier checkpoint, whose checkpoint is then put back
    to that earlier one and whose status says "running": what a kill between checkpoints leaves.

    The run is paced (20 ms a step) and the epoch-1 checkpoint (step 22) is copied as soon as it is
    on disk, so a busy machine that lets the run reach the next checkpoint before the pause lands
    still yields the same folder (CI once saw step 44 there)."""
    job = start(cfg(root, epochs=20, checkpoint_every_steps=1000, pace_s=8.8, name=name), manager)
    ckpt, early = job.path / "checkpoints" / "last.safetensors", None
    deadline = time.monotonic() + 60
    while (early is None or job.status().step < 30) and time.monotonic() < deadline:
        if early is None and ckpt.exists():
            data = ckpt.read_bytes()
            step = state_from_bytes(data, ckpt)["step"]
            assert step in (0, 22), f"missed the epoch-1 checkpoint: the first one read is at step {step}"
            early = data if step == 22 else None
        time.sleep(0.005)
    job.pause()
    while job.status().state != "paused" and time.monotonic() < deadline:
        time.sleep(0.005)
    job.stop()
    job.wait(30)
    ckpt.write_bytes(early)
    status = json.loads((job.path / "status.json").read_text())
    (job.path / "status.json").write_text(json.dumps({**status, "state": "running"}))
    return job.path


def test_only_records_after_the_checkpoint_are_dropped_and_they_are_counted(root, manager):
    path = _interrupted_between_checkpoints(root, manager, "between")
    ckpt_step = load_checkpoint(path)["step"]
    assert ckpt_step == 22 and read_status(path)["state"] == "interrupted"
    metrics, index = lines(path / "metrics.jsonl"), lines(path / "snapshots" / "index.jsonl")
    after = [r for r in metrics if r["step"] > ckpt_step]
    snaps_after = [e for e in index if e["step"] > ckpt_step]
    assert after and snaps_after
    job = resume(path, manager, epochs=3)
    plan = job.resume_plan
    assert (plan.checkpoint_step, plan.dropped_metrics, plan.dropped_snapshots) == (22, len(after), len(snaps_after))
    status = job.wait(60)
    assert status.state == "finished"
    assert f"dropped {len(after)} metric record(s) and {len(snaps_after)} snapshot(s)" in status.message
    kept_after = lines(path / "metrics.jsonl")
    assert [r for r in kept_after if r["step"] <= ckpt_step] == [r for r in metrics if r["step"] <= ckpt_step]
    assert [r["step"] for r in kept_after if r["kind"] == "step"] == list(range(1, 67))
    assert [r["step"] for r in kept_after if r["kind"] == "eval"] == [0, 22, 44, 66]
    seqs = [r["seq"] for r in kept_after]
    assert seqs == sorted(set(seqs)) and min(seqs[len(metrics) - len(after):]) > max(r["seq"] for r in metrics)
    assert json.loads((path / "config.json").read_text())["epochs"] == 3


# ---- item 14: a run killed before its first checkpoint ------------------------------------------
def test_a_run_without_a_checkpoint_and_a_dead_writer_restarts_from_scratch(tmp_path, manager):
    config = cfg(tmp_path, name="early")
    folder = RunFolder.create(config)
    folder.write_status({"state": "running", "step": 0, "updated": time.time()})
    folder.append_metric({"seq": 1, "kind": "eval", "step": 0, "test_acc": 0.1})
    folder.close()
    folder.release()  # the process "died" before its first checkpoint
    assert read_status(folder.path)["state"] == "interrupted"
    job = resume(folder.path, manager)
    assert job.resume_plan.checkpoint_step is None and job.resume_plan.dropped_metrics == 1
    status = job.wait(60)
    assert status.state == "finished" and "restarted from step 0" in status.message
    reader = open_run(folder.path)
    assert [r["step"] for r in reader.metrics("step")] == list(range(1, 45))
    assert [r["step"] for r in reader.metrics("eval")] == [0, 22, 44]
    assert reader.reference()["probe/indices"].shape == (20,)
