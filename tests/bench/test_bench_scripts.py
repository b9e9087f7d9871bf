"""Every bench script still imports and parses its options (``--help``), so a refactor that breaks
a bench fails CI instead of the next person who measures. The benches themselves run by hand."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_bench_script_imports_and_parses_its_options(script):
    out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120,
                         cwd=BENCH.parent)
    assert out.returncode == 0, out.stderr[-1500:]
    assert "usage:" in out.stdout.lower()
