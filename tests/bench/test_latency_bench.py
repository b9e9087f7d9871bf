"""``bench/latency.py --quick`` runs end to end: paired ratios against dense for every form at batch 1
and 256 (the ``bench/_paired.py`` line format: median inside its IQR), and the README table with every
form's agreement with its source. No timing is asserted."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
RATIO = re.compile(r"^  (?P<name>[^:\n]+): ratio (?P<med>[\d.]+) \[IQR (?P<q1>[\d.]+)-(?P<q3>[\d.]+)\] wall, "
                   r"[\d.]+ \[IQR [\d.]+-[\d.]+\] CPU \((?P<n>\d+) pairs", re.MULTILINE)
ROW = re.compile(r"^\| (?P<model>LeNet-[^|]+) \| (?P<form>\w+(?: static)?) \(.*\| (?P<r1>[\d.]+); [\d.]+ \| (?P<r256>[\d.]+); [\d.]+ \| [\d.]+ KiB \| "
                 r"(?P<agree>[\d.]+)% ", re.MULTILINE)


def test_latency_bench_quick_prints_paired_ratios_and_the_readme_table():
    out = subprocess.run([sys.executable, str(BENCH / "latency.py"), "--quick"], capture_output=True, text=True,
                         timeout=300, cwd=BENCH.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    found = {m["name"]: m for m in RATIO.finditer(out.stdout)}
    expected = {f"{model} {form} / dense, batch {b}" for model in ("LeNet-300-100", "LeNet-5")
                for form in ("shrunk", "sparse", "int8", "int8 static") for b in (1, 256)}
    assert set(found) == expected, out.stdout
    for m in found.values():
        assert m["n"] == "4" and float(m["q1"]) <= float(m["med"]) <= float(m["q3"])
    rows = list(ROW.finditer(out.stdout))
    assert [(r["model"].strip(), r["form"]) for r in rows] == [(m, f) for m in ("LeNet-300-100", "LeNet-5")
                                                              for f in ("dense", "shrunk", "sparse", "int8", "int8 static")]
    for r in rows:
        if r["form"] == "dense":
            assert r["r1"] == r["r256"] == "1.00"
        assert float(r["agree"]) >= (95.0 if r["form"].startswith("int8") else 100.0)
    assert "semi-structured 2:4 sparse kernels on CPU:" in out.stdout
