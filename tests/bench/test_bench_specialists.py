"""``bench/specialists.py --quick`` runs the whole section 5 pipeline on digits and prints a row whose
numbers agree with each other: sizes are float32 parameters, every specialist a copy of the generalist."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_quick_bench_prints_accuracy_and_size_of_generalist_and_specialists(tmp_path):
    out = subprocess.run([sys.executable, str(BENCH / "specialists.py"), "--quick", "--runs-root", str(tmp_path)],
                         capture_output=True, text=True, timeout=180, cwd=BENCH.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    row = next(line for line in out.stdout.splitlines() if line.startswith("| 0 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    subsets = re.findall(r"\{([\d,]+)\}", cells[1])
    assert 1 <= len(subsets) <= 3 and all(2 <= len(s.split(",")) <= 4 for s in subsets)
    accs = [float(c) for c in cells[2:7]]
    assert all(0 <= a <= 100 for a in accs) and accs[0] > 50  # a trained generalist
    alone, with_, bytes_alone, bytes_with = (int(c.replace(",", "")) for c in cells[7:11])
    assert with_ == alone * (1 + len(subsets)) and bytes_alone == 4 * alone and bytes_with == 4 * with_
    assert alone == 64 * 16 + 16 + 16 * 10 + 10  # MLP [16] on 8x8 digits
    assert "mean ± std over 1 seed(s)" in out.stdout and "wall" in out.stdout
    assert len(list(tmp_path.iterdir())) == 1 + len(subsets)  # the generalist and one folder per specialist
