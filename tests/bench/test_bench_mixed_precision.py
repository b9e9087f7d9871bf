"""``bench/mixed_precision.py --quick`` runs end to end on digits and prints every section with numbers
that agree with each other (the equal-size rows: mixed never larger than uniform)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_mixed_precision_quick_prints_ranges_noise_and_equal_size_rows():
    out = subprocess.run([sys.executable, str(BENCH / "mixed_precision.py"), "--quick", "--threads", "1"],
                         capture_output=True, text=True, timeout=180, cwd=BENCH.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    assert "LeNet-5 (6, 16), 120 / digits" in text and "float32 test accuracy" in text
    table = re.findall(r"^\s+(8|4|3) +([\d.]+) ± [\d.]+ +([\d.]+) ± [\d.]+ +([\d.]+) ± [\d.]+$", text, re.MULTILINE)
    assert [row[0] for row in table] == ["8", "4", "3"] * 2
    assert all(0 <= float(v) <= 100 for row in table for v in row[1:])
    assert re.search(r"seed 0: conv1 [-\d.]+ dB / [+-][\d.]+ pt, conv2 .*; worst: (conv1|conv2|fc1|fc2)$", text, re.MULTILINE)
    sizes = re.findall(r"uniform (\d) bits \(([\d.]+) KB\)", text)
    assert [b for b, _ in sizes] == ["2", "3", "4", "3", "4"]
    assert float(sizes[0][1]) < float(sizes[1][1]) < float(sizes[2][1])
