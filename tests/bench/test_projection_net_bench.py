"""``bench/projection_net.py --quick`` end to end, in this process: every bit budget is trained through the
engine and the printed table's numbers are the runs' own (read back from their run folders here)."""
from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_quick_prints_accuracy_and_bytes_per_bit_budget(tmp_path, capsys):
    sys.path.insert(0, str(BENCH))
    try:
        bench = importlib.import_module("projection_net")
        assert bench.main(["--quick", "--runs-root", str(tmp_path), "--parallel", "2"]) == 0
    finally:
        sys.path.remove(str(BENCH))
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| 8 (1 x 8)") or line.startswith("| 32 (4 x 8)")]
    assert len(rows) == 2
    for row, (t, hidden_in) in zip(rows, ((1, 8), (4, 32))):
        run = tmp_path / next(p.name for p in tmp_path.iterdir() if p.name.endswith(f"pn-{t}x8-seed0-joint"))
        last = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
                if json.loads(line)["kind"] == "eval"][-1]
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1].startswith(f"{100 * last['test_acc']:.1f}")
        assert cells[3].startswith(f"{100 * last['projection/trainer_test_acc']:.1f}")
        assert cells[4] == f"{4 * (hidden_in * 128 + 128 + 128 * 10 + 10) + 8:,}"
        assert cells[5] == f"{4 * (64 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10):,}"


def test_bad_budgets_are_named():
    sys.path.insert(0, str(BENCH))
    try:
        bench = importlib.import_module("projection_net")
    finally:
        sys.path.remove(str(BENCH))
    with pytest.raises(SystemExit, match="T x d pairs"):
        bench.parse_budgets("8by8")
