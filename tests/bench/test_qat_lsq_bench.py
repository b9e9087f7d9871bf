"""``bench/qat_lsq.py --quick`` runs end to end on digits: float, PTQ, QAT and LSQ at 4 and 2 bits, one
seed, and prints the issue's two targets with a verdict each (the numbers themselves live in the README)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_quick_bench_prints_every_approach_and_both_targets(tmp_path):
    out = subprocess.run([sys.executable, str(BENCH / "qat_lsq.py"), "--quick", "--threads", "1", "--json",
                          str(tmp_path / "table.json")], capture_output=True, text=True, timeout=180, cwd=BENCH.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    for label in ("PTQ", "QAT", "LSQ"):
        assert re.search(rf"^{label}: 4 bits [\d.]+% \[[\d.]+-[\d.]+\]; 2 bits [\d.]+%", out.stdout, re.MULTILINE), out.stdout
    assert re.search(r"target QAT 4 bits within 0\.5 points of float: [+-][\d.]+ points below -> (met|MISSED)", out.stdout)
    assert re.search(r"target LSQ above PTQ at 2 bits: [+-][\d.]+ points -> (met|MISSED)", out.stdout)
    table = json.loads((tmp_path / "table.json").read_text())
    assert 0.8 < table["float"]["mean"] <= 1.0
    # the printed percentages are the table's numbers
    lsq2 = 100 * table["LSQ"]["2"]["mean"]
    assert f"2 bits {lsq2:.2f}%" in out.stdout.split("LSQ: ", 1)[1]
