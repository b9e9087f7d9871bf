"""``bench/lottery_ticket.py --quick`` runs end to end on digits: a row per IMP round with the share of
weights kept falling as (1 - p)^r, the re-init control at its rounds, and the 2:4 vs unstructured table."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
ROW = re.compile(r"^\s+(?P<round>\d+)\s+(?P<kept>[\d.]+)%\s+(?P<ticket>[\d.]+)% \+- ", re.MULTILINE)


def test_lottery_bench_quick_prints_every_round_and_the_n_m_table():
    out = subprocess.run([sys.executable, str(BENCH / "lottery_ticket.py"), "--quick", "--threads", "1"],
                         capture_output=True, text=True, timeout=180, cwd=BENCH.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [m.groupdict() for m in ROW.finditer(out.stdout)]
    assert [int(r["round"]) for r in rows] == [1, 2, 3, 4]
    kept = [float(r["kept"]) / 100 for r in rows]
    assert all(abs(k - 0.8 ** (i + 1)) < 0.01 for i, k in enumerate(kept)), kept  # p = 0.2 per round
    assert re.search(r"seed 0 round 4: .* re-init [\d.]+%", out.stdout)
    assert re.search(r"2:4: sparsity 50\.0%, one-shot [\d.]+% .* fine-tuned [\d.]+%", out.stdout)
    assert "unstructured 50%: sparsity 50.0%" in out.stdout
