"""``labs/workspace.py``: labs are opened from a working copy, so the tracked notebooks are never
written, and a fresh copy carries the kernel's language_info (JupyterLab then opens it clean)."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

from _labs_build import LABS, load_workspace


def test_copies_every_lab_with_this_kernels_language_info(tmp_path):
    ws = load_workspace()
    copied, kept = ws.copy_labs(tmp_path / "work")
    tracked = sorted(p.name for p in LABS.glob("*.ipynb"))
    assert copied == tracked and kept == []
    for name in tracked:
        copy = json.loads((tmp_path / "work" / name).read_text())
        original = json.loads((LABS / name).read_text())
        assert copy["cells"] == original["cells"]
        assert copy["metadata"]["language_info"]["version"] == platform.python_version()
        assert copy["metadata"]["kernelspec"] == original["metadata"]["kernelspec"]


def test_a_users_copy_is_never_overwritten_and_a_newer_lab_is_reported(tmp_path):
    ws = load_workspace()
    work = tmp_path / "work"
    ws.copy_labs(work)
    mine = work / "01_soft_targets.ipynb"
    mine.write_text('{"my": "edits"}')
    old = (LABS / "01_soft_targets.ipynb").stat().st_mtime - 3600  # the tracked lab changed after the copy
    os.utime(mine, (old, old))
    copied, kept = ws.copy_labs(work)
    assert copied == [] and "01_soft_targets.ipynb" in kept
    assert mine.read_text() == '{"my": "edits"}'
    assert ws.stale_copies(work, kept) == ["01_soft_targets.ipynb"]


def test_the_command_copies_without_starting_jupyter_and_leaves_labs_untouched(tmp_path):
    before = {p.name: p.read_bytes() for p in LABS.glob("*.ipynb")}
    out = subprocess.run([sys.executable, str(LABS / "workspace.py"), "--dir", str(tmp_path / "w"), "--no-start"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"{len(before)} copied, 0 kept" in out.stdout
    assert {p.name: p.read_bytes() for p in LABS.glob("*.ipynb")} == before
