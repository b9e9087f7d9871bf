"""``bench/gpu_check.py`` (issue 19): on a machine without a CUDA GPU it says so in one line and exits 0;
asked for a device that is not cuda or cpu, it names the problem."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu_check.py"


def gpu_check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120,
                          cwd=SCRIPT.parent.parent)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: gpu_check.py --quick trains for minutes; run it by hand")
def test_without_a_gpu_it_says_so_in_one_line_and_exits_0():
    out = gpu_check("--quick")
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_check: skipped: no CUDA GPU on this machine")
    assert f"torch {torch.__version__}" in lines[0] and "Traceback" not in out.stderr


def test_an_unknown_device_is_named():
    out = gpu_check("--quick", "--devices", "tpu")
    assert out.returncode == 2 and "--devices takes cuda and/or cpu, got ['tpu']" in out.stderr
