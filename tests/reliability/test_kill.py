"""kill -9 of a real ``python -m kdviz train`` at several moments, then a resume (issue 13, item 14).

Before its first checkpoint, mid-epoch between periodic checkpoints, and several epochs in: each
time the folder reads "interrupted" (its writer lock died with the process), resumes, and ends with
every step recorded exactly once, every evaluation once, growing sequence numbers, and every record
made up to the checkpoint kept byte for byte; only records after the checkpoint are dropped.
"""
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from kdviz.engine import load_checkpoint, open_run, resume
from kdviz.engine.lock import writer_alive
from kdviz.engine.run_reader import list_runs, read_status

STEPS_PER_EPOCH = 22  # digits: 1437 training images in batches of 64
EVERY = 10  # checkpoint_every_steps of the killed runs


def _train(root: Path, name: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "kdviz", "train", "--dataset", "digits", "--model", "mlp", "--model-options", '{"hidden": [32]}',
           "--epochs", "400", "--lr", "0.1", "--runs-root", str(root), "--name", name, "--checkpoint-every-steps", str(EVERY),
           "--snapshot-every", "15", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "KDVIZ_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def _run_folder(root: Path, name: str) -> Path | None:
    found = [p for p in root.iterdir() if p.name.endswith(f"-{name}") and (p / "status.json").is_file()] if root.is_dir() else []
    return found[0] if found else None


def _last_step(path: Path) -> int:
    try:
        data = (path / "metrics.jsonl").read_bytes()
    except FileNotFoundError:
        return -1
    steps = [json.loads(line)["step"] for line in data.split(b"\n")[:-1] if line]
    return max(steps, default=-1)


def _kill_when(proc: subprocess.Popen, root: Path, name: str, ready, timeout: float = 120.0) -> Path:
    """SIGKILL ``proc`` as soon as ``ready(run folder)`` holds (polled every millisecond)."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the training process ended before it could be killed"
            path = _run_folder(root, name)
            if path is not None and ready(path):
                proc.send_signal(signal.SIGKILL)
                proc.wait(30)
                return path
            time.sleep(0.001)
        raise AssertionError(f"{name}: the moment to kill never came")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def _records(path: Path, log: str) -> list[dict]:
    if not (path / log).exists():
        return []
    raw = (path / log).read_bytes().split(b"\n")
    return [json.loads(line) for line in raw[:-1] if line.strip()]  # a half-written last line is no record


MOMENTS = {
    "before the first checkpoint": lambda p: True,  # the folder exists: setup (data, model) has not finished
    "mid-epoch": lambda p: _last_step(p) >= 2 * STEPS_PER_EPOCH + 13,
    "several epochs in": lambda p: _last_step(p) >= 6 * STEPS_PER_EPOCH + 5,
}


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_kill_9_then_resume_loses_nothing_before_the_checkpoint(tmp_path, manager, moment):
    name = moment.replace(" ", "-")
    path = _kill_when(_train(tmp_path, name), tmp_path, name, MOMENTS[moment])
    status = read_status(path)
    assert writer_alive(path) is False
    assert status["state"] == "interrupted" and status["recorded_state"] in ("queued", "running")
    assert [r["state"] for r in list_runs(tmp_path)] == ["interrupted"]

    has_checkpoint = (path / "checkpoints" / "last.safetensors").exists()
    assert has_checkpoint == (moment != "before the first checkpoint")
    ckpt_step = load_checkpoint(path)["step"] if has_checkpoint else -1
    metrics_before, index_before = _records(path, "metrics.jsonl"), _records(path, "snapshots/index.jsonl")
    if moment != "before the first checkpoint":
        killed_at = _last_step(path)
        assert killed_at - ckpt_step <= EVERY  # a kill loses at most checkpoint_every_steps steps
        assert ckpt_step > 0
    kept = [r for r in metrics_before if r["step"] <= ckpt_step]
    kept_snaps = [e for e in index_before if e["step"] <= ckpt_step]

    epochs = max(1, math.ceil(max(ckpt_step, 0) / STEPS_PER_EPOCH)) + 1
    job = resume(path, manager, epochs=epochs)
    plan = job.resume_plan
    assert plan.dropped_metrics == len(metrics_before) - len(kept)
    assert plan.dropped_snapshots == len(index_before) - len(kept_snaps)
    final = job.wait(120)
    assert final.state == "finished", final.message
    total = epochs * STEPS_PER_EPOCH

    metrics_after = _records(path, "metrics.jsonl")
    assert metrics_after[: len(kept)] == kept  # nothing up to the checkpoint lost or changed
    assert [r["step"] for r in metrics_after if r["kind"] == "step"] == list(range(1, total + 1))
    assert [r["step"] for r in metrics_after if r["kind"] == "eval"] == list(range(0, total + 1, STEPS_PER_EPOCH))
    seqs = [r["seq"] for r in metrics_after]
    assert seqs == sorted(set(seqs))

    index_after = _records(path, "snapshots/index.jsonl")
    assert index_after[: len(kept_snaps)] == kept_snaps
    versions = [e["version"] for e in index_after]
    assert versions == sorted(set(versions))
    snaps = open_run(path).snapshots_since(0)[0]
    assert [s.version for s in snaps] == versions and all(np.isfinite(s.arrays["probe/logits"]).all() for s in snaps)
    assert read_status(path)["state"] == "finished" and writer_alive(path) is False
