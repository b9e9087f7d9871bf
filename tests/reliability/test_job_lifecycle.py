"""Job lifecycle under faults and load (issue 13, items 3, 4 and 13, and the catalogue's job cases).

A process that ends while jobs train (returns, SIGTERM, SIGHUP) exits cleanly and leaves every run
"stopped" with its checkpoint; a job trains once (submitting it again is refused and frees no slot it
does not hold); a job that fails in setup, or whose thread cannot start, frees its slot; duplicate
teachers are never started by concurrent callers; paused jobs keep their slots and say so; six jobs
through two slots all finish with every metric; eight threads stopping one job leave one consistent
"stopped" status.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from _support.polling import wait_for
from kdviz.engine import HOOKS, Job, JobManager, TrainConfig, TrainingHook, load_checkpoint, open_run, start, train_teacher_cached
from kdviz.engine.lock import writer_alive
from kdviz.engine.resume import plan_resume
from kdviz.engine.run_folder import RunFolderClosed
from kdviz.present import describe, readiness

SMALL = {"hidden": [32]}
REPO = Path(__file__).resolve().parents[2]
ABORT = "terminate called without an active exception"


def cfg(root, **kw) -> TrainConfig:
    base = dict(dataset="digits", model="mlp", model_options=SMALL, epochs=2, lr=0.1, runs_root=str(root), snapshot_every=0)
    return TrainConfig(**{**base, **kw})


def saved_status(path) -> dict:
    return json.loads((Path(path) / "status.json").read_text())


def run_dirs(root) -> list[Path]:
    return sorted(p for p in Path(root).iterdir() if (p / "config.json").is_file())


def python(code: str, cwd, timeout: float = 120, env_extra: dict | None = None, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "KDVIZ_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env, **kw)


class SlowStep(TrainingHook):
    """Makes every step take ``seconds`` (a big model's step, on a tiny one)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def after_step(self, ctx):
        time.sleep(self.seconds)


if "test-slow-step" not in HOOKS:
    HOOKS.register("test-slow-step")(SlowStep)


# ---- item 3: the process ends while jobs train ----------------------------------------------------------

@pytest.mark.parametrize("attempt", range(3))
def test_the_issue_command_exits_0_and_leaves_the_run_stopped(tmp_path, attempt):
    """The "must show" line of issue 13, verbatim, several times: it used to abort (SIGABRT) and stay "running"."""
    code = "import kdviz; from kdviz.engine import start, TrainConfig; start(TrainConfig(dataset='digits', model='mlp', epochs=200))"
    out = python(code, tmp_path, env_extra={"KDVIZ_RUNS": str(tmp_path / "runs")})  # kdviz's runs root, here
    assert out.returncode == 0, out.stderr
    assert ABORT not in out.stderr and "Traceback" not in out.stderr
    [run] = run_dirs(tmp_path / "runs")
    status = saved_status(run)
    assert status["state"] == "stopped" and "process exited" in status["message"], status
    assert load_checkpoint(run)["step"] == status["step"] < status["total_steps"]


@pytest.mark.parametrize("moment", ["training", "paused", "queued"])
def test_a_script_ending_mid_training_stops_every_job_cleanly(tmp_path, moment):
    """Exit while the job is deep in training, while it is paused, and with a second job still queued."""
    code = f"""
import time
from kdviz.engine import JobManager, TrainConfig, start
manager = JobManager(max_concurrent=1, cpu_threads=1)
config = TrainConfig(dataset='digits', model='mlp', model_options={SMALL!r}, epochs=300, runs_root='runs', snapshot_every=0)
first = start(config, manager)
second = start(TrainConfig(**{{**config.to_dict(), 'name': 'second'}}), manager)
deadline = time.monotonic() + 60
while first.status().step < 30 and time.monotonic() < deadline:
    time.sleep(0.02)
if {moment!r} == 'paused':
    first.pause()
    while first.status().state != 'paused' and time.monotonic() < deadline:
        time.sleep(0.02)
print(first.status().state, first.status().step, flush=True)
"""
    out = python(code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert ABORT not in out.stderr
    state_at_exit, step_at_exit = out.stdout.split()
    assert state_at_exit == ("paused" if moment == "paused" else "running") and int(step_at_exit) >= 30
    first, second = (saved_status(p) for p in run_dirs(tmp_path / "runs"))
    assert first["state"] == "stopped" and "the process exited" in first["message"]
    assert load_checkpoint(first["path"])["step"] == first["step"] >= 30
    assert second["state"] == "stopped" and second["message"] == "stopped before it started: the process exited"
    assert not (Path(second["path"]) / "checkpoints" / "last.pt").exists()  # a queued job never trained


def test_a_job_that_does_not_stop_in_time_is_still_marked_stopped(tmp_path):
    """The exit wait is bounded: a step longer than the wait cannot hold the process, and the run
    folder still ends "stopped", not "running"."""
    manager = JobManager(max_concurrent=1, cpu_threads=1)
    job = start(cfg(tmp_path, epochs=5, hooks=[{"name": "test-slow-step", "seconds": 1.5}]), manager)
    wait_for(lambda: job.status().step >= 1, 60, "the first slow step")
    time.sleep(0.3)  # past the step boundary (where a stop is seen at once): inside the second 1.5 s step
    began = time.monotonic()
    manager.close("the process exited")
    late = manager.join(0.2)
    assert time.monotonic() - began < 1.2  # bounded: it did not wait for the 1.5 s step
    assert late == [job]
    assert job.done and job.status().state == "stopped" and "without waiting for the step to end (the process exited)" in job.status().message
    assert saved_status(job.path)["state"] == "stopped"
    assert writer_alive(job.path) is False  # the lock went with the final status: another process may resume now
    files = ("status.json", "metrics.jsonl", "checkpoints/last.pt")
    before = {name: (job.path / name).read_bytes() for name in files}
    checkpoint_step = load_checkpoint(job.path)["step"]
    assert job._join_thread(30)  # the step ends; its record and its stop checkpoint come after the lock is gone...
    assert {name: (job.path / name).read_bytes() for name in files} == before  # ...so the folder refused them
    assert saved_status(job.path)["state"] == "stopped" and writer_alive(job.path) is False
    assert plan_resume(job.path).checkpoint_step == checkpoint_step  # the run still resumes from what it says it kept


def test_a_late_thread_cannot_write_between_the_final_status_and_its_next_step(tmp_path):
    """The final status and the thread's writes are serialised: once "stopped" is on disk every write
    of that job is refused (RunFolderClosed), whichever thread tries, and nothing in the folder changes."""
    manager = JobManager(max_concurrent=1, cpu_threads=1)
    job = start(cfg(tmp_path, epochs=5, hooks=[{"name": "test-slow-step", "seconds": 1.0}]), manager)
    wait_for(lambda: job.status().step >= 1, 60, "the first slow step")
    time.sleep(0.3)  # inside the second 1 s step
    manager.close("the process exited")
    assert manager.join(0.1) == [job]
    folder = job._folder
    assert folder.closed
    with pytest.raises(RunFolderClosed, match=r"checkpoint not written: the run already ended \(stopped\)"):
        folder.save_checkpoint({"model": {}, "step": 999})
    with pytest.raises(RunFolderClosed, match="metric record not written"):
        folder.append_metric({"seq": 999, "kind": "step", "step": 999})
    assert job._join_thread(30)
    assert load_checkpoint(job.path)["step"] < 999 and '"seq": 999' not in (job.path / "metrics.jsonl").read_text()


def _dead_writer_run(root, step: int, total: int) -> Path:
    """A run folder whose writer process died mid-run: status "running", writer.lock left unheld."""
    code = (f"import os; from kdviz.engine import TrainConfig; from kdviz.engine.run_folder import RunFolder; "
            f"f = RunFolder.create(TrainConfig(runs_root={str(root)!r}, name='dead')); "
            f"f.write_status({{'state': 'running', 'step': {step}, 'total_steps': {total}, 'updated': 0}}); "
            f"print(f.path, flush=True); os._exit(9)")
    out = python(code, root)
    assert out.returncode == 9, out.stderr
    return Path(out.stdout.strip())


def test_a_reopened_interrupted_run_is_done_and_says_how_to_resume_it(tmp_path):
    """A killed writer's run reopens as "interrupted": wait() returns at once (it used to block forever),
    and both UIs' status text names it, where it stopped and the command that continues it."""
    path = _dead_writer_run(tmp_path, step=7, total=40)
    job = Job.reopened(path)
    began = time.monotonic()
    status = job.wait(20)
    assert time.monotonic() - began < 1 and job.done and status.done and status.state == "interrupted"
    text = describe(status, "teacher")
    assert (text.state, text.icon, text.progress) == ("interrupted", "running_with_errors", 7 / 40)
    assert text.detail.startswith("step 7/40 · process ") and f"kdviz resume {path}" in text.detail
    assert "interrupted: " not in text.detail  # the headline says it already
    ready = readiness(status, "teacher")
    assert ready.headline == "The teacher was interrupted at 18%" and f"kdviz resume {path}" in ready.detail


def test_a_closed_manager_starts_nothing_more(tmp_path):
    manager = JobManager(max_concurrent=1, cpu_threads=1)
    manager.close("the process exited")
    job = manager.submit(Job(cfg(tmp_path), manager))
    assert job.done and job.status().state == "stopped" and job.status().message == "not started: the process exited"
    assert saved_status(job.path)["state"] == "stopped" and manager.running() == [] and manager.queued() == []


def _cli_until_training(tmp_path, extra_env=None, preexec=None):
    env = {**os.environ, "KDVIZ_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", **(extra_env or {})}
    cmd = [sys.executable, "-m", "kdviz", "train", "--dataset", "digits", "--model", "mlp", "--model-options", json.dumps(SMALL),
           "--epochs", "300", "--snapshot-every", "0", "--runs-root", str(tmp_path / "runs"), "--quiet"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=preexec)

    def training():
        runs = run_dirs(tmp_path / "runs") if (tmp_path / "runs").is_dir() else []
        try:
            return runs and saved_status(runs[0]).get("step", 0) >= 20 and runs[0]
        except (ValueError, OSError):  # status.json between its temp file and the rename
            return False

    try:
        return proc, wait_for(training, 90, "the CLI run to pass step 20")
    except AssertionError:
        proc.kill()
        raise


def _default_hup():
    signal.signal(signal.SIGHUP, signal.SIG_DFL)  # the test runner may run under nohup


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_stop_a_cli_run_like_ctrl_c(tmp_path, sig):
    proc, run = _cli_until_training(tmp_path, preexec=_default_hup)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 4, (stdout, stderr)  # cli.EXIT_CODES["stopped"], as after Ctrl-C
    assert "stopping (saving a checkpoint)" in stderr and "Traceback" not in stderr and ABORT not in stderr
    status = saved_status(run)
    assert status["state"] == "stopped" and f"stopped: {status['message']}" in stdout
    assert load_checkpoint(run)["step"] == status["step"] >= 20
    assert open_run(run).metrics("step")[-1]["step"] <= status["step"]  # nothing recorded past the checkpoint


def test_sigterm_to_a_script_waiting_on_its_job_stops_the_run(tmp_path):
    """A script blocked in ``job.wait()`` gets what Ctrl-C gives it (a KeyboardInterrupt); leaving
    through the exit handler, it stops the run with a checkpoint instead of aborting."""
    code = f"""
import os, signal, threading, time
from kdviz.engine import TrainConfig, start
job = start(TrainConfig(dataset='digits', model='mlp', model_options={SMALL!r}, epochs=300, runs_root='runs', snapshot_every=0))
def kill_when_training():
    while job.status().step < 20:
        time.sleep(0.02)
    os.kill(os.getpid(), signal.SIGTERM)
threading.Thread(target=kill_when_training, daemon=True).start()
job.wait()
"""
    env = {**os.environ, "KDVIZ_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env,
                         preexec_fn=_default_hup)
    assert out.returncode != 0 and "KeyboardInterrupt: SIGTERM received" in out.stderr and ABORT not in out.stderr
    [run] = run_dirs(tmp_path / "runs")
    status = saved_status(run)
    assert status["state"] == "stopped" and "the process exited" in status["message"]
    assert load_checkpoint(run)["step"] == status["step"] >= 20


def test_an_ignored_sighup_stays_ignored_and_a_host_handler_is_kept(tmp_path):
    """nohup's SIG_IGN is respected, and a host's own SIGTERM handler (Streamlit's server installs one)
    is not replaced; the host still shuts down on SIGTERM and the job still ends "stopped"."""
    code = f"""
import signal, sys, time
signal.signal(signal.SIGHUP, signal.SIG_IGN)
def host_handler(signum, frame):
    print('host shut down', flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, host_handler)
from kdviz.engine import TrainConfig, start
job = start(TrainConfig(dataset='digits', model='mlp', model_options={SMALL!r}, epochs=300, runs_root='runs', snapshot_every=0))
print(signal.getsignal(signal.SIGHUP) is signal.SIG_IGN, signal.getsignal(signal.SIGTERM) is host_handler, flush=True)
while job.status().step < 20:
    time.sleep(0.02)
import os
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(30)
print('not reached')
"""
    out = python(code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["True True", "host shut down"] and ABORT not in out.stderr
    [run] = run_dirs(tmp_path / "runs")
    assert saved_status(run)["state"] == "stopped"


def test_no_handler_is_installed_from_a_worker_thread(tmp_path):
    """A Streamlit script runs in a worker thread: starting a job there leaves the signals alone."""
    code = f"""
import signal, threading
from kdviz.engine import TrainConfig, start
jobs = []
worker = threading.Thread(target=lambda: jobs.append(start(TrainConfig(dataset='digits', model='mlp', model_options={SMALL!r},
                          epochs=1, runs_root='runs', snapshot_every=0))))
worker.start(); worker.join()
print(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, jobs[0].wait(60).state)
"""
    out = python(code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "finished"]


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


def test_the_exit_wait_is_configurable_and_a_bad_value_falls_back(monkeypatch):
    from kdviz.engine import shutdown

    monkeypatch.setenv("KDVIZ_EXIT_WAIT_S", "2.5")
    assert shutdown.exit_wait_s() == 2.5
    for bad in ("soon", "-1", ""):
        monkeypatch.setenv("KDVIZ_EXIT_WAIT_S", bad)
        assert shutdown.exit_wait_s() == shutdown.EXIT_WAIT_S == 15.0
