"""Jobs and their slots under faults and load (issue 13, items 4 and 13, and the catalogue's job cases).

A job trains once (submitting it again is refused and frees no slot it does not hold); a job that
fails in setup, or whose thread cannot start, frees its slot; duplicate teachers are never started by
concurrent callers; paused jobs keep their slots and say so; six jobs through two slots all finish with
every metric; eight threads stopping one job leave one consistent "stopped" status.
"""
from __future__ import annotations

import threading
import time

import pytest

from _support.polling import wait_for
from _support.run_files import run_dirs, saved_status
from kdviz.engine import Job, JobManager, TrainConfig, load_checkpoint, open_run, start, train_teacher_cached
from kdviz.present import describe, readiness

SMALL = {"hidden": [32]}


def cfg(root, **kw) -> TrainConfig:
    base = dict(dataset="digits", model="mlp", model_options=SMALL, epochs=2, lr=0.1, runs_root=str(root), snapshot_every=0)
    return TrainConfig(**{**base, **kw})


# ---- item 4: a job trains once ---------------------------------------------------------------------------

def test_resubmitting_a_finished_job_is_refused_and_the_queue_keeps_moving(tmp_path):
    manager = JobManager(max_concurrent=1, cpu_threads=1)
    job = start(cfg(tmp_path, name="once"), manager)
    assert job.wait(60).state == "finished"
    before = {p.name: p.read_bytes() for p in job.path.rglob("*") if p.is_file()}
    with pytest.raises(ValueError) as refused:
        manager.submit(job)
    message = str(refused.value)
    assert job.name in message and "already submitted" in message and "'finished'" in message
    assert "resume" in message and "start(job.config)" in message
    assert {p.name: p.read_bytes() for p in job.path.rglob("*") if p.is_file()} == before  # nothing retrained or rewritten
    later = [start(cfg(tmp_path, name=f"later{i}"), manager) for i in range(2)]
    assert [j.wait(60).state for j in later] == ["finished", "finished"]  # the slot was never taken
    assert manager.running() == [] and manager.queued() == []


def test_resubmitting_a_running_or_queued_job_is_refused(tmp_path):
    manager = JobManager(max_concurrent=1, cpu_threads=1)
    running = start(cfg(tmp_path, epochs=200, name="running"), manager)
    queued = start(cfg(tmp_path, name="queued"), manager)
    for job, state in ((running, "running"), (queued, "queued")):
        with pytest.raises(ValueError, match=f"job {job.name} was already submitted \\(state '{state}'\\)"):
            manager.submit(job)
    assert manager.running() == [running] and manager.queued() == [queued]  # no second thread, no second place
    running.stop()
    assert running.wait(30).state == "stopped" and queued.wait(60).state == "finished"


def test_a_reopened_run_cannot_be_submitted(tmp_path):
    manager = JobManager(max_concurrent=1, cpu_threads=1)
    done = start(cfg(tmp_path), manager)
    done.wait(60)
    with pytest.raises(ValueError, match="already submitted .*resume"):
        manager.submit(Job.reopened(done.path))


def test_a_job_failing_in_setup_frees_its_slot(tmp_path):
    """init_from a folder whose checkpoint is missing: the job fails in setup, the next one runs."""
    source = tmp_path / "no-checkpoint"
    source.mkdir()
    (source / "config.json").write_text(cfg(tmp_path).to_json())
    manager = JobManager(max_concurrent=1, cpu_threads=1)
    broken = start(cfg(tmp_path, init_from=str(source), name="broken"), manager)
    after = start(cfg(tmp_path, name="after"), manager)
    status = broken.wait(60)
    assert status.state == "failed" and "does not exist" in status.message and str(source) in status.message
    assert after.wait(60).state == "finished"
    assert manager.running() == [] and manager.queued() == []


def test_a_thread_that_cannot_start_fails_its_job_and_frees_the_slot(tmp_path):
    manager = JobManager(max_concurrent=1, cpu_threads=1)
    doomed = Job(cfg(tmp_path, name="doomed"), manager)

    def no_thread():
        raise RuntimeError("can't start new thread")

    doomed._launch = no_thread  # what threading raises when the process is out of threads
    manager.submit(doomed)
    assert doomed.done and doomed.status().state == "failed" and "can't start new thread" in doomed.status().message
    assert saved_status(doomed.path)["state"] == "failed" and manager.running() == []
    assert start(cfg(tmp_path, name="next"), manager).wait(60).state == "finished"


# ---- item 13: one teacher for concurrent callers; paused jobs and their slots ----------------------------

@pytest.mark.parametrize("attempt", range(3))
def test_four_threads_asking_for_one_teacher_start_one(tmp_path, attempt):
    managers = [JobManager(max_concurrent=2, cpu_threads=1), JobManager(max_concurrent=2, cpu_threads=1)]
    barrier, jobs = threading.Barrier(4), []

    def ask(i):
        barrier.wait()
        jobs.append(train_teacher_cached("digits", "mlp", manager=managers[i % 2], model_options={"hidden": [24 + attempt]},
                                         epochs=1, lr=0.1, runs_root=str(tmp_path), snapshot_every=0))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(jobs) == 4 and len({id(j) for j in jobs}) == 1
    assert len(run_dirs(tmp_path)) == 1
    assert jobs[0].wait(60).state == "finished"
    again = train_teacher_cached("digits", "mlp", model_options={"hidden": [24 + attempt]}, epochs=1, lr=0.1,
                                 runs_root=str(tmp_path), snapshot_every=0)
    assert again.path == jobs[0].path and len(run_dirs(tmp_path)) == 1  # then reused from disk


def test_a_paused_job_keeps_its_slot_and_both_jobs_say_so(tmp_path):
    manager = JobManager(max_concurrent=1, cpu_threads=1)
    paused = start(cfg(tmp_path, epochs=200, name="held"), manager)
    waiting = start(cfg(tmp_path, name="waiting"), manager)
    wait_for(lambda: paused.status().step > 3, 60, "training to start")
    paused.pause()
    wait_for(lambda: paused.status().state == "paused", 30, "the pause")
    time.sleep(0.3)
    assert waiting.status().state == "queued"  # the paused job holds the only slot
    queued_text = describe(waiting.status(), "scratch student", max_concurrent=1)
    assert paused.name in queued_text.detail and "held by paused run" in queued_text.detail and "resume or stop" in queued_text.detail
    assert paused.name in readiness(waiting.status(), "teacher").detail
    assert "keeps its run slot" in describe(paused.status(), "KD student", epochs=200).detail
    assert readiness(paused.status(), "teacher").headline.startswith("The teacher is paused at")
    assert "keeps its run slot" in saved_status(paused.path)["message"]
    paused.resume()  # Resume continues at once: the slot was kept
    wait_for(lambda: paused.status().state == "running", 30, "the resume")
    paused.stop()  # stopping frees the slot
    assert paused.wait(30).state == "stopped" and waiting.wait(60).state == "finished"


# ---- the catalogue: load and concurrency -----------------------------------------------------------------

def test_six_jobs_through_two_slots_all_finish_with_every_metric(tmp_path):
    manager = JobManager(max_concurrent=2, cpu_threads=2)
    jobs = [start(cfg(tmp_path, epochs=2 + i % 2, eval_every=10, name=f"six{i}"), manager) for i in range(6)]
    most_running, stop_watching = 0, threading.Event()

    def watch():
        nonlocal most_running
        while not stop_watching.is_set():
            most_running = max(most_running, len(manager.running()))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        states = [job.wait(120).state for job in jobs]
    finally:
        stop_watching.set()
        watcher.join()
    assert states == ["finished"] * 6 and most_running == 2
    for job in jobs:
        total = job.status().total_steps
        assert total == job.config.epochs * 22
        assert [r["step"] for r in job.store.metrics("step")] == list(range(1, total + 1))
        assert [r["step"] for r in job.store.metrics("eval")] == [*range(0, total, 10), total]
        on_disk = open_run(job.path)
        assert on_disk.metrics() == job.store.metrics() and on_disk.status()["state"] == "finished"
    assert manager.running() == [] and manager.queued() == []


@pytest.mark.parametrize("which", ["running", "queued"])
def test_eight_threads_stopping_one_job_leave_one_consistent_stopped_status(tmp_path, which):
    manager = JobManager(max_concurrent=1, cpu_threads=1)
    first = start(cfg(tmp_path, epochs=200, name="first"), manager)
    second = start(cfg(tmp_path, epochs=1, name="second"), manager)
    target, other = (first, second) if which == "running" else (second, first)
    wait_for(lambda: first.status().step > 5, 60, "training to start")
    ended, original = [], manager._job_ended
    manager._job_ended = lambda job: (ended.append(job.name), original(job))  # count slot releases
    barrier = threading.Barrier(8)

    def stop():
        barrier.wait()
        target.stop()

    threads = [threading.Thread(target=stop) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    status = target.wait(30)
    assert status.state == "stopped" and saved_status(target.path)["state"] == "stopped"
    assert ended.count(target.name) == 1  # its slot (or queue place) released exactly once
    if which == "running":
        assert load_checkpoint(target.path)["step"] == status.step == saved_status(target.path)["step"]
        assert other.wait(60).state == "finished"  # the freed slot went to the queued job, once
    else:
        assert status.message == "stopped before it started" and manager.queued() == []
        other.stop()
        assert other.wait(30).state == "stopped"
    assert manager.running() == [] and manager.queued() == []
