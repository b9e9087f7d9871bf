"""The command line under ordinary mistakes (issue 13, item 10), in real subprocesses: one line on
stderr with the cause and the fix, a non-zero exit status, no traceback unless ``--debug``, the
traceback kept in the run folder's error.log; ``kdviz resume --force``; and ``scripts/setup.sh``
(issue 14, bug 10): an install with more extras satisfies one with fewer.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "KDVIZ_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
TINY = ["--dataset", "digits", "--model", "mlp", "--model-options", '{"hidden": [8]}', "--quiet"]


def kdviz(*args, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kdviz", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=ENV)


def error_lines(out: subprocess.CompletedProcess) -> list[str]:
    return [line for line in out.stderr.splitlines() if line.startswith("kdviz: error:")]


def assert_one_clear_line(out: subprocess.CompletedProcess, *phrases: str) -> str:
    assert out.returncode != 0
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout, out.stderr
    (line,) = error_lines(out)
    for phrase in phrases:
        assert phrase in line, line
    return line


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """One finished 1-epoch run on digits (22 steps), made by the CLI itself."""
    root = tmp_path_factory.mktemp("cli-runs")
    out = kdviz("train", *TINY, "--epochs", 1, "--name", "base", "--runs-root", root, cwd=root)
    assert out.returncode == 0, out.stderr
    (run,) = [p for p in root.iterdir() if p.is_dir()]
    return run


def test_bad_data_root_is_one_line_and_writes_no_run_folder(tmp_path):
    out = kdviz("train", *TINY, "--dataset", "mnist", "--data-root", tmp_path / "nowhere", "--runs-root",
                tmp_path / "runs", cwd=tmp_path)
    assert out.returncode == 2
    assert_one_clear_line(out, "nowhere does not exist", "--data-root", "--dataset digits")
    assert not (tmp_path / "runs").exists()


def test_bad_model_option_names_it_and_the_known_ones(tmp_path):
    args = ["train", *TINY, "--model-options", '{"hiden": [3]}', "--runs-root", tmp_path / "runs"]
    out = kdviz(*args, cwd=tmp_path)
    assert out.returncode == 2
    assert_one_clear_line(out, "hiden", "hidden, dropout, input_dropout")
    assert not (tmp_path / "runs").exists()
    debug = kdviz(*args, "--debug", cwd=tmp_path)
    assert debug.returncode == 2 and "Traceback (most recent call last)" in debug.stderr


def test_failing_run_keeps_its_traceback_in_error_log(finished_run, tmp_path):
    """A run that fails after it started (its init checkpoint is damaged): one line, error.log in its folder."""
    broken = tmp_path / "broken"
    shutil.copytree(finished_run, broken)
    checkpoint = broken / "checkpoints" / "last.safetensors"
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    out = kdviz("train", *TINY, "--epochs", 1, "--init-from", broken, "--runs-root", tmp_path / "runs", cwd=tmp_path)
    assert out.returncode == 1
    line = assert_one_clear_line(out, "last.safetensors", "not loaded")
    (run,) = (tmp_path / "runs").iterdir()
    log = (run / "error.log").read_text()
    assert "Traceback (most recent call last)" in log and str(run / "error.log") in line
    assert json.loads((run / "status.json").read_text())["state"] == "failed"


def test_damaged_run_folder_is_refused_and_left_byte_identical(finished_run, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(finished_run, damaged)
    (damaged / "config.json").write_text('{"dataset": "digits", ')
    before = folder_bytes(damaged)
    out = kdviz("resume", damaged, "--epochs", 3, cwd=tmp_path)
    assert out.returncode == 2
    assert_one_clear_line(out, "config.json is damaged", "not valid JSON")
    assert folder_bytes(damaged) == before
    out = kdviz("resume", tmp_path / "no-such-run", cwd=tmp_path)
    assert_one_clear_line(out, "is not a run folder", "kdviz runs")


def test_resume_force_continues_a_run_whose_process_was_killed(finished_run, tmp_path):
    """A run folder without a writer lock (written before locks existed) whose status.json still says
    "running", updated a moment ago: refused with advice naming --force, then resumed with --force."""
    run = tmp_path / "killed"
    shutil.copytree(finished_run, run)
    (run / "writer.lock").unlink(missing_ok=True)
    status = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps({**status, "state": "running", "updated": time.time()}))
    refused = kdviz("resume", run, "--epochs", 2, cwd=tmp_path)
    line = assert_one_clear_line(refused, "--force")
    assert "force=True" not in line
    resumed = kdviz("resume", run, "--epochs", 2, "--force", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "Traceback" not in resumed.stderr
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    steps = [r["step"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r.get("kind") == "step"]
    assert max(steps) == 44


def test_full_disk_is_one_line_saying_so(tmp_path):
    """A 120 kB tmpfs as the runs root (needs root and mount; skipped otherwise)."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=120k", "tmpfs", str(mount_point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        out = kdviz("train", *TINY, "--model-options", '{"hidden": [256]}', "--epochs", 2, "--runs-root", mount_point,
                    cwd=tmp_path)
        assert out.returncode == 1
        assert_one_clear_line(out, "No space left on device", "disk is full", "--runs-root")
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


# --- scripts/setup.sh: install stamps (issue 14, bug 10) ----------------------------------------

@pytest.fixture
def setup_copy(tmp_path) -> Path:
    """scripts/setup.sh and pyproject.toml in a temp checkout whose .venv/bin/python only logs its
    arguments (pip calls) to .venv/calls.log, so no package is installed."""
    shutil.copytree(REPO / "scripts", tmp_path / "scripts")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    fake = tmp_path / ".venv" / "bin" / "python"
    fake.write_text('#!/bin/sh\necho "$*" >> "$(dirname "$0")/../calls.log"\n')
    fake.chmod(0o755)
    return tmp_path


def run_setup(root: Path, extras: str = "") -> list[str]:
    """Run setup.sh with ``extras``; the pip install lines it ran (the editable install of kdviz)."""
    log = root / ".venv" / "calls.log"
    log.unlink(missing_ok=True)
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(["bash", "scripts/setup.sh", *([extras] if extras else [])], cwd=root, env=env, check=True,
                   capture_output=True, text=True)
    return [line for line in log.read_text().splitlines() if " -e " in line] if log.exists() else []


def test_dev_install_satisfies_the_plain_one(setup_copy):
    assert run_setup(setup_copy, "dev") == ["-m pip install --quiet -e .[dev]"]
    assert run_setup(setup_copy) == []  # lab.sh after test.sh: nothing to install
    assert run_setup(setup_copy, "dev") == []
    digest = hashlib.sha256((setup_copy / "pyproject.toml").read_bytes()).hexdigest()
    assert (setup_copy / ".venv" / ".kdviz-installed").read_text().split() == [digest, "dev"]


def test_plain_install_then_dev_installs_the_extra(setup_copy):
    assert run_setup(setup_copy) == ["-m pip install --quiet -e ."]
    assert run_setup(setup_copy, "dev") == ["-m pip install --quiet -e .[dev]"]
    assert run_setup(setup_copy) == []


def test_changed_pyproject_reinstalls_keeping_the_extras(setup_copy):
    run_setup(setup_copy, "dev")
    with open(setup_copy / "pyproject.toml", "a") as f:
        f.write("\n# changed\n")
    assert run_setup(setup_copy) == ["-m pip install --quiet -e .[dev]"]
    assert run_setup(setup_copy) == []


def test_stamp_of_the_previous_script_is_honoured(setup_copy):
    """A .venv made by the old setup.sh (.kdviz-installed-dev holding the hash) needs no reinstall."""
    digest = hashlib.sha256((setup_copy / "pyproject.toml").read_bytes()).hexdigest()
    (setup_copy / ".venv" / ".kdviz-installed-dev").write_text(digest + "\n")
    assert run_setup(setup_copy) == []
    (setup_copy / ".venv" / ".kdviz-installed-dev").write_text("0" * 64 + "\n")
    assert run_setup(setup_copy) == ["-m pip install --quiet -e ."]


def test_runs_lists_an_interrupted_run_with_the_command_and_resume_says_where_it_continues(finished_run, tmp_path, capsys):
    """A run whose process died (status.json says "running", nobody holds writer.lock) is listed as
    "interrupted" in an aligned column with the command that continues it; `kdviz resume` then says,
    before training, which checkpoint it continues from and how many records it drops."""
    from kdviz.engine.cli import main

    runs = tmp_path / "runs"
    run = runs / "20260101-000000-killed"
    shutil.copytree(finished_run, run)
    assert (run / "writer.lock").is_file()  # the dead writer's lock file stays; its flock died with it
    status = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps({**status, "state": "running", "step": 20, "updated": time.time()}))
    assert main(["runs", "--runs-root", str(runs)]) == 0
    header, row, *rest = capsys.readouterr().out.splitlines()
    assert row.split()[4:6] == ["interrupted", "20/22"]
    assert row.index("20/22") + len("20/22") == header.index("steps") + len("steps")  # the column fits the word
    assert row.index("interrupted") == header.index("state")
    assert rest == ["", "1 run(s) interrupted: their process ended mid-run. Continue one from its last checkpoint with",
                    f"  kdviz resume {run}"]
    resumed = kdviz("resume", run, "--epochs", 2, "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    first, *_ = resumed.stdout.splitlines()
    assert first == f"{run}: resuming from the checkpoint at step 22 of 44; no records dropped"
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
