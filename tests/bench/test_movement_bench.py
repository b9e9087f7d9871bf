"""``bench/movement.py --quick`` runs end to end on digits: a dense baseline, then movement and magnitude
pruning fine-tunes of it at 50 % and 90 %, each ending at the sparsity asked for, and the README table whose
cells are the JSON's numbers (the numbers themselves live in the README)."""
from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
SEED_LINE = re.compile(r"seed 0 sparsity (\d+)%: movement ([\d.]+)% \(at ([\d.]+)%\), magnitude ([\d.]+)% \(at ([\d.]+)%\)")


def test_quick_bench_prints_both_rules_at_each_sparsity_and_the_table(tmp_path):
    out = subprocess.run([sys.executable, str(BENCH / "movement.py"), "--quick", "--threads", "1", "--json",
                          str(tmp_path / "movement.json")], capture_output=True, text=True, timeout=180, cwd=BENCH.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = SEED_LINE.findall(out.stdout)
    assert [int(line[0]) for line in lines] == [50, 90], out.stdout
    for target, _, movement_at, _, magnitude_at in lines:  # both runs end at the sparsity asked for
        assert abs(float(movement_at) - int(target)) < 0.2 and abs(float(magnitude_at) - int(target)) < 0.2
    saved = json.loads((tmp_path / "movement.json").read_text())
    assert 0.8 < saved["table"]["dense"][0] <= 1.0  # a trained baseline
    for sparsity, row in saved["table"]["rows"].items():
        gap = statistics.fmean(row["gap"])
        assert gap == row["movement"][0] - row["magnitude"][0]
        pattern = (rf"^\| {100 * float(sparsity):.0f} % \| {100 * row['movement'][0]:.2f}% .* \| "
                   rf"{100 * row['magnitude'][0]:.2f}% .* \| {100 * gap:+.2f} points \| {int(gap > 0)} of 1 seeds \|$")
        assert re.search(pattern, out.stdout, re.MULTILINE), (pattern, out.stdout)
