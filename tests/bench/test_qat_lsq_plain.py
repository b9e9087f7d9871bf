"""``bench/qat_lsq.py --plain`` compares at matching granularity and reports every seed: run on digits
(two seeds, short loops), LSQ started from min-max (``--lsq-init minmax``) begins at exactly the PTQ model
of its own granularity, and each "LSQ above PTQ" line is the paired per-seed difference of the table's numbers."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_plain_bench_pairs_lsq_with_ptq_of_the_same_granularity(tmp_path):
    out = subprocess.run([sys.executable, str(BENCH / "qat_lsq.py"), "--plain", "--dataset", "digits", "--seeds", "0", "1",
                          "--bits", "3", "--float-steps", "150", "--qat-steps", "20", "--lsq-init", "paper", "minmax",
                          "--threads", "1", "--float-tuned", "--json", str(tmp_path / "t.json")],
                         capture_output=True, text=True, timeout=240, cwd=BENCH.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    table = json.loads((tmp_path / "t.json").read_text())
    assert table["settings"]["granularity"] == ["tensor", "channel"] and "float fine-tuned" in table
    for g in ("tensor", "channel"):
        ptq, start = table[f"PTQ/{g}"]["3"]["values"], table[f"LSQ-minmax/{g}"]["3"]["values"]
        # the min-max start is PTQ itself (one of the 450 test digits may fall on a rounding tie)
        assert all(abs(a - b) <= 1.01 / 450 for a, b in zip(ptq, table[f"LSQ-minmax/{g} start"]["3"]["values"]))
        lsq = table[f"LSQ-minmax/{g}"]["3"]["values"]
        diffs = [100 * (a - b) for a, b in zip(lsq, ptq)]
        line = re.search(rf"^target LSQ-minmax/{g} \(vs PTQ/{g}\) above PTQ at 3 bits: ([+-][\d.]+) points -> (met|MISSED) "
                         rf"\(paired over seeds: [+-][\d.]+ ± [\d.]+; per seed ([^)]*)\)$", out.stdout, re.MULTILINE)
        assert line, out.stdout
        assert float(line.group(1)) == round(sum(diffs) / 2, 2) or abs(float(line.group(1)) - sum(diffs) / 2) < 0.006
        assert line.group(3) == ", ".join(f"{d:+.2f}" for d in diffs)
    assert re.search(r"^PTQ/tensor: 3 bits [\d.]+% \[", out.stdout, re.MULTILINE)
