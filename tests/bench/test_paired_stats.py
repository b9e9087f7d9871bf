"""``bench/_paired.py``: median of per-pair ratios, IQR and the median's 95 % interval against hand
computations, the interleaving order, and the CPU clock of child processes."""
from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "bench" / "_paired.py"
_spec = importlib.util.spec_from_file_location("bench_paired", _PATH)
paired = importlib.util.module_from_spec(_spec)
sys.modules["bench_paired"] = paired  # dataclasses look their module up while the class is built
_spec.loader.exec_module(paired)
S = paired.Sample


def test_median_of_per_pair_ratios_and_iqr_match_a_hand_computation():
    # pairs (top, bottom) wall seconds: ratios 1.2, 1.0, 1.5, 1.1, 1.9, 1.4
    tops = [S(2.4, 1.0), S(3.0, 1.0), S(1.5, 1.0), S(2.2, 1.0), S(1.9, 1.0), S(2.8, 1.0)]
    bottoms = [S(2.0, 2.0), S(3.0, 0.5), S(1.0, 1.0), S(2.0, 1.0), S(1.0, 4.0), S(2.0, 0.8)]
    ratios = paired.pair_ratios(tops, bottoms, "wall")
    assert ratios == pytest.approx([1.2, 1.0, 1.5, 1.1, 1.9, 1.4])
    stats = paired.ratio_stats(ratios)
    # sorted 1.0 1.1 1.2 1.4 1.5 1.9; quantile q at position 1 + q (n - 1) = 1 + 5q (1-based):
    # Q1 at 2.25 -> 1.1 + 0.25 * 0.1; median at 3.5 -> (1.2 + 1.4) / 2; Q3 at 4.75 -> 1.4 + 0.75 * 0.1
    assert stats.q1 == pytest.approx(1.125)
    assert stats.median == pytest.approx(1.3)
    assert stats.q3 == pytest.approx(1.475)
    assert stats.iqr_relative == pytest.approx((1.475 - 1.125) / 1.3)
    # the median of per-pair ratios is not the ratio of the medians (sum(tops) / sum(bottoms) differs too)
    median_top = sorted(s.wall for s in tops)[2:4]
    median_bottom = sorted(s.wall for s in bottoms)[2:4]
    assert sum(median_top) / sum(median_bottom) != pytest.approx(stats.median)
    # the CPU clock gives its own ratios: 0.5, 2, 1, 1, 0.25, 1.25 -> sorted 0.25 0.5 1 1 1.25 2
    cpu = paired.ratio_stats(paired.pair_ratios(tops, bottoms, "cpu"))
    assert (cpu.q1, cpu.median, cpu.q3) == pytest.approx((0.5 + 0.25 * 0.5, 1.0, 1.0 + 0.75 * 0.25))


def test_odd_count_quartiles_and_single_value():
    # sorted 1 2 2 3 5: Q1 at position 2 -> 2, median at 3 -> 2, Q3 at 4 -> 3
    assert paired.quartiles([2, 3, 5, 2, 1]) == pytest.approx((2.0, 2.0, 3.0))
    assert paired.quartiles([0.7]) == (0.7, 0.7, 0.7)
    with pytest.raises(ValueError, match="no values"):
        paired.quartiles([])


def test_median_interval_uses_binomial_order_statistics():
    # n = 5: P(Binom(5, 1/2) = 0) = 1/32 > 0.025, so no interval
    assert paired.median_ci95([1, 2, 3, 4, 5]) is None
    # n = 6: P(X = 0) = 1/64 <= 0.025 < P(X <= 1) = 7/64 -> k = 1: [x_(1), x_(6)]
    assert paired.median_ci95([6, 1, 5, 2, 4, 3]) == (1, 6)
    # n = 10: P(X <= 1) = 11/1024 <= 0.025 < P(X <= 2) = 56/1024 -> k = 2: [x_(2), x_(9)]
    assert paired.median_ci95(list(range(10, 0, -1))) == (2, 9)
    stats = paired.ratio_stats([float(x) for x in range(1, 11)])
    assert stats.ci_relative == pytest.approx((9 - 2) / 5.5)


def test_pair_ratios_skip_missing_sides_and_clocks_that_did_not_tick():
    tops = [S(2.0, 1.0), None, S(3.0, 0.5), S(4.0)]
    bottoms = [S(1.0, 0.0), S(1.0, 1.0), S(2.0, 0.25), S(2.0)]
    assert paired.pair_ratios(tops, bottoms, "wall") == pytest.approx([2.0, 1.5, 2.0])
    assert paired.pair_ratios(tops, bottoms, "cpu") == pytest.approx([2.0])  # 0 s and NaN CPU left out
    with pytest.raises(ValueError, match="clock must be one of"):
        paired.pair_ratios(tops, bottoms, "gpu")


def test_interleave_alternates_the_order_and_adds_pairs_until_enough():
    calls = []

    def side(name, seconds):
        return lambda: calls.append(name) or S(seconds, seconds)

    samples = paired.interleave({"candidate": side("c", 2.0), "baseline": side("b", 1.0)}, pairs=4)
    assert calls == ["c", "b", "b", "c", "c", "b", "b", "c"]
    assert len(samples["candidate"]) == len(samples["baseline"]) == 4
    calls.clear()
    seen = []
    samples = paired.interleave({"candidate": side("c", 2.0), "baseline": side("b", 1.0)}, pairs=2, max_pairs=9,
                                enough=lambda s: len(s["candidate"]) >= 5, on_pair=lambda i, s: seen.append(i))
    assert len(samples["baseline"]) == 5 and seen == [0, 1, 2, 3, 4]
    samples = paired.interleave({"a": side("a", 1.0), "b": side("b", 1.0)}, pairs=3, max_pairs=50,
                                enough=lambda s: False)
    assert len(samples["a"]) == 50  # never settled: stops at max_pairs


def test_settled_by_narrow_interval_or_by_clearing_the_target():
    tight = [1.00 + 0.001 * i for i in range(12)]  # interval [x_(3), x_(10)] = 1.002-1.009: 0.7 %
    assert paired.settled(tight, tolerance=0.01)
    assert not paired.settled(tight, tolerance=0.005)
    wide = [0.5 + 0.1 * i for i in range(12)]  # interval 0.7-1.4
    assert not paired.settled(wide, tolerance=0.05)
    assert paired.settled(wide, tolerance=0.05, target=1.6)  # wholly below the target
    assert not paired.settled(wide, tolerance=0.05, target=1.0)
    assert not paired.settled(tight[:5], tolerance=1.0)  # too few pairs for an interval


def test_describe_prints_median_iqr_wall_and_cpu_and_the_verdicts():
    tops = [S(1.0 + 0.012 * i, 1.0) for i in range(8)]
    bottoms = [S(1.0, 1.0) for _ in range(8)]
    text = paired.describe("engine / plain", tops, bottoms, target=1.05)
    # wall ratios 1.000, 1.012 .. 1.084: median 1.042, Q1 at 1 + 7/4 -> 1.021, Q3 at 1 + 21/4 -> 1.063
    assert "engine / plain: ratio 1.042 [IQR 1.021-1.063] wall, 1.000 [IQR 1.000-1.000] CPU (8 pairs" in text
    assert "wall target <= 1.05: met (IQR straddles it; 95% interval straddles it: not settled)" in text
    assert "CPU  target <= 1.05: met (IQR clear of it; 95% interval clear of it)" in text
    faster = paired.describe("kdviz / plain", [S(1.0)] * 3, [S(4.0)] * 3, target=2.0, better="higher")
    assert "ratio 0.250 [IQR 0.250-0.250] wall, - CPU (3 pairs)" in faster
    assert "target >= 2: MISSED" in faster


def test_children_cpu_counts_a_busy_child_process():
    before = paired.children_cpu_s()
    child = subprocess.Popen([sys.executable, "-c",
                              "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass\n"
                              "import sys; sys.stdout.write('x'); sys.stdout.flush(); time.sleep(30)"],
                             stdout=subprocess.PIPE)
    try:
        assert child.stdout.read(1) == b"x"  # its busy loop is over; it sleeps, still alive
        used = paired.children_cpu_s() - before
        assert 0.3 <= used < 5.0
    finally:
        child.kill()
        child.wait()
    assert math.isfinite(paired.children_cpu_s())
