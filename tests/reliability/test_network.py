"""Network exposure (issue 13, item 1): the lab listens on 127.0.0.1 only unless asked, and the
sidebar's data-folder box opens only allowed folders and never lists a folder's contents.

The server tests start the real ``scripts/lab.sh`` (and plain ``streamlit run``) in a copy of the
checkout's launch files whose ``.venv/bin/python`` hands over to this interpreter, so no install
runs, and read the listening sockets with ``ss -ltn`` (psutil when ``ss`` is missing).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from streamlit.testing.v1 import AppTest

from _support.apptest import harness, lab_environment
from _support.browser import free_port

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a TCP socket listening on ``port`` (``ss -ltn``, else psutil)."""
    if shutil.which("ss"):
        out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
        return {line.split()[3].rsplit(":", 1)[0].strip("[]") for line in out.splitlines() if line.strip()}
    return {c.laddr.ip for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN and c.laddr.port == port}


@pytest.fixture
def launch_copy(tmp_path) -> Path:
    """scripts/, app.py, .streamlit/ and pyproject.toml copied; .venv/bin/python runs this interpreter
    and the install stamp is current, so ``scripts/setup.sh`` has nothing to install."""
    root = tmp_path / "checkout"
    shutil.copytree(REPO / "scripts", root / "scripts")
    shutil.copytree(REPO / ".streamlit", root / ".streamlit")
    for name in ("app.py", "pyproject.toml"):
        shutil.copy(REPO / name, root / name)
    (root / ".venv" / "bin").mkdir(parents=True)
    python = root / ".venv" / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    digest = hashlib.sha256((root / "pyproject.toml").read_bytes()).hexdigest()
    (root / ".venv" / ".kdviz-installed").write_text(f"{digest} dev\n")
    return root


def serve(command: list[str], cwd: Path, port: int, runs: Path, env_extra: dict | None = None) -> set[str]:
    """Start ``command``, wait until something listens on ``port``, return the addresses, stop it."""
    env = {**os.environ, "KDVIZ_RUNS": str(runs), "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            addresses = listening_addresses(port)
            if addresses:
                time.sleep(1.0)  # a server binding several sockets: let it finish
                return listening_addresses(port)
            if proc.poll() is not None:
                pytest.fail(f"{command} exited with {proc.returncode}: {proc.stdout.read()}")
            time.sleep(0.3)
        pytest.fail(f"nothing listened on port {port} within {START_TIMEOUT_S} s")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return set()


def test_lab_sh_listens_on_loopback_only(launch_copy, tmp_path):
    port = free_port()
    addresses = serve(["bash", "scripts/lab.sh", "--server.port", str(port), "--server.headless", "true"],
                      launch_copy, port, tmp_path / "runs")
    assert addresses == {"127.0.0.1"}
    assert not (launch_copy / ".venv" / "pip.log").exists()


def test_streamlit_config_alone_binds_loopback(launch_copy, tmp_path):
    """Started without lab.sh (``streamlit run app.py``), the checkout's config still binds 127.0.0.1."""
    port = free_port()
    addresses = serve([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                       "--server.headless", "true"], launch_copy, port, tmp_path / "runs")
    assert addresses == {"127.0.0.1"}


def test_address_can_be_chosen_on_purpose(launch_copy, tmp_path):
    """KDVIZ_ADDRESS (the README's way to expose the lab) is honoured; 127.0.0.2 keeps it private here."""
    port = free_port()
    addresses = serve(["bash", "scripts/lab.sh", "--server.port", str(port), "--server.headless", "true"],
                      launch_copy, port, tmp_path / "runs", {"KDVIZ_ADDRESS": "127.0.0.2"})
    assert addresses == {"127.0.0.2"}


# --- the sidebar's data-folder box ---------------------------------------------------------------

DATA_PAGE = """
import streamlit as st
from kdviz.app.errors import user_errors
from kdviz.app.sidebar import current_settings, load_bundle
with user_errors("Dataset"):
    bundle = load_bundle(current_settings())
    st.write(f"loaded {len(bundle.train_labels)} training images")
"""


@pytest.fixture
def app_runs(tmp_path):
    """A runs root (an allowed root) for the app, restored afterwards."""
    with lab_environment(tmp_path / "runs", 1) as root:
        root.mkdir(parents=True, exist_ok=True)
        yield root


def sidebar_page(folder: str, tmp_path: Path) -> AppTest:
    """The real sidebar and a page that loads the sidebar's dataset, with ``folder`` typed in the box."""
    page = tmp_path / "data_page.py"
    page.write_text(DATA_PAGE)
    at = AppTest.from_string(harness((page, "Data")), default_timeout=60).run()
    at.selectbox(key="kdviz_dataset").set_value("mnist").run()
    at.text_input(key="kdviz_data_root").input(folder).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def sidebar_errors(folder: str, tmp_path: Path) -> list[str]:
    return [e.value for e in sidebar_page(folder, tmp_path).error]


def test_data_folder_outside_the_allowed_roots_is_refused_without_listing(app_runs, tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "id_rsa").write_text("-----BEGIN KEY-----")
    errors = sidebar_errors(str(secret), tmp_path)
    assert any("not an allowed data folder" in e for e in errors), errors
    assert not any("id_rsa" in e for e in errors)
    errors = sidebar_errors(str(Path.home() / ".ssh"), tmp_path)
    assert any("not an allowed data folder" in e for e in errors), errors


def test_data_folder_inside_a_root_names_only_the_expected_files(app_runs, tmp_path):
    """An allowed folder that lacks the IDX files: the message names the files, not what is there."""
    folder = app_runs / "data"
    folder.mkdir(exist_ok=True)
    (folder / "private-notes.txt").write_text("x")
    errors = sidebar_errors(str(folder), tmp_path)
    assert any("train-images-idx3-ubyte" in e for e in errors), errors
    assert not any("private-notes" in e for e in errors)
    errors = sidebar_errors(str(app_runs / "no" / "such"), tmp_path)
    assert any("does not exist" in e for e in errors), errors


def test_relative_data_folder_inside_an_allowed_root_loads(app_runs, tmp_path, monkeypatch):
    """A relative path resolves against the working folder as before, and loads when it is allowed."""
    from data.test_data_idx import write_idx_folder

    write_idx_folder(app_runs / "mnist-small", n_train=12, n_test=10)
    monkeypatch.chdir(app_runs)
    at = sidebar_page("mnist-small", tmp_path)
    assert not at.error, [e.value for e in at.error]
    assert any("loaded 12 training images" in m.value for m in at.markdown)
    errors = sidebar_errors("../" + app_runs.name + "/mnist-small/../../outside", tmp_path)
    assert any("not an allowed data folder" in e for e in errors), errors
