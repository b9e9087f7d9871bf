"""Background jobs: live streaming, pause/resume/stop, divergence, failures, concurrency, queueing,
resuming from a checkpoint, and a run folder reopened in a fresh process."""
import json
import math
import os
import shutil
import subprocess
import sys
import time

import pytest
import torch

from kdviz.engine import HOOKS, JobManager, TrainConfig, TrainingHook, load_checkpoint, open_run, resume, start, train_teacher_cached
from kdviz.engine.run_folder import checkpoint_file
from kdviz.models.checkpoint_io import read_state, write_state

SMALL = {"hidden": [64]}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


def cfg(root, **kw):
    base = dict(dataset="digits", model="mlp", model_options=SMALL, epochs=3, lr=0.1, runs_root=str(root), snapshot_every=0)
    return TrainConfig(**{**base, **kw})


def wait_for(predicate, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    raise AssertionError("condition not reached in time")


@pytest.fixture(scope="module")
def teacher(root, manager):
    job = train_teacher_cached("digits", "mlp", manager=manager, model_options={"hidden": [96]}, epochs=4, lr=0.1,
                               runs_root=str(root), snapshot_every=0)
    assert job.wait(60).state == "finished"
    return job


def test_train_teacher_cached_reuses_a_finished_run(teacher, root, manager):
    again = train_teacher_cached("digits", "mlp", manager=manager, model_options={"hidden": [96]}, epochs=4, lr=0.1,
                                 runs_root=str(root), snapshot_every=0)
    assert again.path == teacher.path and again.status().state == "finished"
    assert again.store.metrics("eval")[-1]["test_acc"] == pytest.approx(teacher.store.metrics("eval")[-1]["test_acc"])
    other = train_teacher_cached("digits", "mlp", manager=manager, model_options={"hidden": [96]}, epochs=1, lr=0.1,
                                 runs_root=str(root), snapshot_every=0)
    assert other.path != teacher.path  # a different config trains a new teacher
    assert other.wait(60).state == "finished"


def test_a_cached_teacher_whose_checkpoint_no_longer_fits_is_retrained(tmp_path, manager):
    """A finished run saved before a model's layers changed must not be reused as the teacher."""
    options = dict(manager=manager, model_options={"hidden": [48]}, epochs=1, lr=0.1, runs_root=str(tmp_path), snapshot_every=0)
    first = train_teacher_cached("digits", "mlp", **options)
    assert first.wait(60).state == "finished"
    checkpoint = checkpoint_file(first.path)
    state = read_state(checkpoint)
    state["model"] = {k: v[:, :-1] if v.ndim == 2 else v for k, v in state["model"].items()}  # one input too few
    write_state(checkpoint, state)
    second = train_teacher_cached("digits", "mlp", **options)
    assert second.path != first.path
    assert second.wait(60).state == "finished"
    assert train_teacher_cached("digits", "mlp", **options).path == second.path


def test_metrics_and_snapshots_stream_while_the_job_runs(root, manager):
    job = start(cfg(root, epochs=25, snapshot_every=50, name="stream"), manager)
    metric_polls, snapshot_polls, mv, sv = [], [], 0, 0
    while not job.done:
        records, mv = job.store.metrics_since(mv)
        snaps, sv = job.store.snapshots_since(sv)
        if records:
            metric_polls.append([r["seq"] for r in records])
        if snaps:
            snapshot_polls.append(len(snaps))
        time.sleep(0.02)
    assert job.status().state == "finished"
    assert len(metric_polls) >= 3 and len(snapshot_polls) >= 2  # data arrived in pieces, during training
    flat = [s for poll in metric_polls for s in poll]
    assert flat == sorted(set(flat))  # no record twice, none out of order
    records, mv = job.store.metrics_since(mv)
    assert len(flat) + len(records) == len(job.store.metrics())


def test_pause_resume_and_stop(root, manager):
    job = start(cfg(root, epochs=500, name="pausing"), manager)
    wait_for(lambda: job.status().step > 5)
    job.pause()
    wait_for(lambda: job.status().state == "paused")
    frozen = job.status().step
    time.sleep(0.3)
    assert job.status().step == frozen
    paused_elapsed = job.status().elapsed_s
    job.resume()
    wait_for(lambda: job.status().step > frozen + 5)
    assert job.status().state == "running" and job.status().eta_s > 0
    job.stop()
    status = job.wait(30)
    assert status.state == "stopped" and "stopped" in status.message
    assert load_checkpoint(job.path)["step"] == status.step < status.total_steps
    assert json.loads((job.path / "status.json").read_text())["state"] == "stopped"
    assert status.elapsed_s >= paused_elapsed


def test_a_stopped_run_resumes_from_its_checkpoint_and_can_be_extended(root, manager):
    job = start(cfg(root, epochs=6, snapshot_every=10, name="resumable"), manager)
    wait_for(lambda: job.status().step > 10)
    job.pause()
    wait_for(lambda: job.status().state == "paused")
    job.stop()
    stopped_at = job.wait(30).step
    assert 10 < stopped_at < 132
    again = resume(job.path, manager)
    assert again.wait(60).state == "finished"
    steps = [r["step"] for r in again.store.metrics("step")]
    assert steps == list(range(1, 133))  # every step exactly once, none lost or repeated
    seqs = [r["seq"] for r in open_run(job.path).metrics()]
    assert seqs == sorted(set(seqs))
    assert [r["step"] for r in again.store.metrics("eval")] == [0, 22, 44, 66, 88, 110, 132]
    with pytest.raises(ValueError, match="already finished"):
        resume(job.path, manager)
    longer = resume(job.path, manager, epochs=7)
    assert longer.wait(60).state == "finished" and longer.status().step == 154
    assert [r["step"] for r in open_run(job.path).metrics("eval")][-2:] == [132, 154]


def test_a_killed_run_resumes_and_a_live_one_is_refused(root, manager):
    job = start(cfg(root, epochs=3, name="killed"), manager)
    wait_for(lambda: job.status().step > 20)
    job.pause()
    wait_for(lambda: job.status().state == "paused")
    with pytest.raises(ValueError, match=f"being written by process {os.getpid()}"):
        resume(job.path, manager)
    job.stop()
    job.wait(30)
    # make the folder look like its process died mid-run: "running", and a half-written last line
    status_file = job.path / "status.json"
    status = {**json.loads(status_file.read_text()), "state": "running", "updated": time.time()}
    status_file.write_text(json.dumps(status))
    assert open_run(job.path).status()["state"] == "interrupted"
    with open(job.path / "metrics.jsonl", "a") as f:
        f.write('{"kind": "step", "step": 999, "se')
    again = resume(job.path, manager)
    assert again.wait(60).state == "finished"
    assert [r["step"] for r in open_run(job.path).metrics("step")] == list(range(1, 67))


class NaNAfter(TrainingHook):
    def __init__(self, step: int) -> None:
        self.step = step

    def loss_terms(self, ctx, batch):
        return {"bad": torch.tensor(float("nan") if ctx.step >= self.step else 0.0)}


class Exploding(TrainingHook):
    def after_step(self, ctx):
        if ctx.step == 3:
            raise RuntimeError("the test hook exploded")


for name, factory in (("test-nan-after", NaNAfter), ("test-exploding", Exploding)):
    if name not in HOOKS:
        HOOKS.register(name)(factory)


def test_a_nan_loss_gives_diverged_and_keeps_the_last_good_checkpoint(root, manager):
    job = start(cfg(root, eval_every=10, hooks=[{"name": "test-nan-after", "step": 25}], name="nan"), manager)
    status = job.wait(30)
    assert status.state == "diverged"
    assert "step 26" in status.message and "test-nan-after/bad=nan" in status.message
    state = load_checkpoint(job.path)
    assert state["step"] == 20 and "step 20" in status.message
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_a_huge_learning_rate_diverges_with_a_message_naming_it(root, manager):
    status = start(cfg(root, lr=1e6, name="hot"), manager).wait(30)
    assert status.state == "diverged"
    assert "learning rate lr=1e+06" in status.message and "at step" in status.message


def test_an_exception_in_a_job_becomes_failed_with_the_traceback(root, manager):
    job = start(cfg(root, hooks=[{"name": "test-exploding"}], name="boom"), manager)
    status = job.wait(30)
    assert status.state == "failed" and "the test hook exploded" in status.message
    saved = json.loads((job.path / "status.json").read_text())
    assert saved["state"] == "failed" and "RuntimeError" in saved["traceback"] and "after_step" in saved["traceback"]


def test_a_corrupt_teacher_checkpoint_fails_the_job_with_the_file_named(root, teacher, manager):
    broken = root / "broken-teacher"
    shutil.copytree(teacher.path, broken)
    ckpt = checkpoint_file(broken)
    ckpt.write_bytes(b"not a checkpoint at all")
    status = start(cfg(root, method="kd", teacher=str(broken), name="kd-broken"), manager).wait(30)
    assert status.state == "failed"
    assert str(ckpt) in status.message and "corrupt" in status.message


def test_two_jobs_train_side_by_side_sharing_the_cores(root, teacher):
    mgr = JobManager(max_concurrent=2, cpu_threads=2)
    kd = start(cfg(root, method="kd", teacher=str(teacher.path), epochs=15, name="kd-side"), mgr)
    scratch = start(cfg(root, epochs=15, name="scratch-side"), mgr)
    wait_for(lambda: kd.status().step > 10 and scratch.status().step > 10 or kd.done or scratch.done)
    both_running = {kd.status().state, scratch.status().state} == {"running"}
    share = mgr.thread_share()
    assert kd.wait(60).state == scratch.wait(60).state == "finished"
    assert both_running and share == 1 and mgr.thread_share() == 2


def test_jobs_beyond_max_concurrency_queue_in_order(root):
    mgr = JobManager(max_concurrent=1, cpu_threads=1)
    jobs = [start(cfg(root, epochs=2, name=f"q{i}"), mgr) for i in range(3)]
    assert [j.status().queue_position for j in jobs] == [None, 1, 2]
    assert jobs[1].status().state == "queued" and "queue_position" in (jobs[1].path / "status.json").read_text()
    jobs[2].stop()
    assert jobs[2].status().state == "stopped" and jobs[2].done
    assert jobs[0].wait(60).state == "finished"
    assert jobs[1].wait(60).state == "finished"
    assert jobs[1].store.metrics("eval")[-1]["step"] == 44
    assert mgr.queued() == [] and mgr.running() == []


def test_a_run_folder_reloads_in_a_fresh_process(teacher):
    code = (
        "import json, sys; from kdviz.engine import open_run\n"
        "r = open_run(sys.argv[1]); recs, v = r.metrics_since(0); snaps, sv = r.snapshots_since(0)\n"
        "print(json.dumps({'n': len(recs), 'v': v, 'last': r.metrics('eval')[-1], 'snaps': [s.step for s in snaps],"
        " 'state': r.status()['state'], 'ref': sorted(r.reference())}))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(teacher.path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    live, v = teacher.store.metrics_since(0)
    assert got["n"] == len(live) and got["v"] == v and got["state"] == "finished"
    assert got["last"] == teacher.store.metrics("eval")[-1]
    assert got["snaps"] == [s.step for s in teacher.store.snapshots_since(0)[0]]
    assert got["ref"] == sorted(teacher.store.reference())
    assert math.isfinite(got["last"]["test_acc"]) and got["last"]["test_acc"] > 0.8
