"""A process that ends while jobs train (issue 13, item 3): returning, SIGTERM, SIGHUP, a closed
manager, a step longer than the exit wait. The process exits cleanly and leaves every run "stopped"
with its checkpoint, or "interrupted" and resumable when its writer died.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _support.jobs import slow_step_hook
from _support.polling import wait_for
from _support.run_files import run_dirs, saved_status
from kdviz.engine import Job, JobManager, TrainConfig, load_checkpoint, open_run, start
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


def python(code: str, cwd, timeout: float = 120, env_extra: dict | None = None, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "KDVIZ_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env, **kw)


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
    assert not (Path(second["path"]) / "checkpoints" / "last.safetensors").exists()  # a queued job never trained


def test_a_job_that_does_not_stop_in_time_is_still_marked_stopped(tmp_path):
    """The exit wait is bounded: a step longer than the wait cannot hold the process, and the run
    folder still ends "stopped", not "running"."""
    manager = JobManager(max_concurrent=1, cpu_threads=1)
    job = start(cfg(tmp_path, epochs=5, hooks=[slow_step_hook(1.5)]), manager)
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
    files = ("status.json", "metrics.jsonl", "checkpoints/last.safetensors")
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
    job = start(cfg(tmp_path, epochs=5, hooks=[slow_step_hook(1.0)]), manager)
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


def test_the_exit_wait_is_configurable_and_a_bad_value_falls_back(monkeypatch):
    from kdviz.engine import shutdown

    monkeypatch.setenv("KDVIZ_EXIT_WAIT_S", "2.5")
    assert shutdown.exit_wait_s() == 2.5
    for bad in ("soon", "-1", ""):
        monkeypatch.setenv("KDVIZ_EXIT_WAIT_S", bad)
        assert shutdown.exit_wait_s() == shutdown.EXIT_WAIT_S == 15.0


def test_a_jupyter_kernel_keeps_its_own_sigterm_and_shuts_down_at_once(tmp_path):
    """Inside a kernel kdviz installs no SIGTERM handler (the host stops the kernel with SIGTERM; turned
    into Ctrl-C, every shutdown waited ~5 s for the SIGKILL). A real kernel starts a job, then is shut down."""
    import time

    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3")
    try:
        code = ("import signal, kdviz.engine.shutdown as s\n"
                "from kdviz.engine import JobManager, TrainConfig, start\n"
                f"job = start(TrainConfig(dataset='synthetic', model='mlp', model_options={{'hidden': [8]}}, max_steps=2, "
                f"runs_root={str(tmp_path)!r}), "
                "JobManager(max_concurrent=1, cpu_threads=1))\n"
                "job.wait(60)\n"
                "print('handler', signal.getsignal(signal.SIGTERM) is s._on_stop_signal, s.in_jupyter_kernel())")
        reply = client.execute_interactive(code, timeout=120, output_hook=lambda msg: printed.append(msg))
        assert reply["content"]["status"] == "ok"
    finally:
        started = time.monotonic()
        manager.shutdown_kernel(now=False)
        shutdown_s = time.monotonic() - started
        client.stop_channels()
    text = "".join(m["content"].get("text", "") for m in printed if m["msg_type"] == "stream")
    assert "handler False True" in text
    assert shutdown_s < 4.5  # below the SIGKILL that came 5 s after the SIGTERM when Ctrl-C was raised instead


printed: list = []
