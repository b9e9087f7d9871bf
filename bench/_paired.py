"""Paired, interleaved speed ratios: the one way every bench in ``bench/`` measures "A is x times B".

Why paired. On a machine shared with other work, two timings taken minutes apart differ by more
than the effect being measured (``bench/train_overhead.py`` once gave 0.896 and then 1.106 for the
same ratio). So each repeat is a *pair*: the candidate and the baseline run back to back, in
forward order (candidate, baseline) on even pairs and reversed on odd ones, so neither side always
goes first and a burst of load from other processes hits both sides of a pair alike. A ratio is
formed within each pair; the result is the **median of the per-pair ratios**, its spread the
**interquartile range** (Q1..Q3, the middle half of the per-pair ratios).

Two spreads, two questions. The IQR says how much one pair scatters: it does not shrink with more
pairs. How well the *median* is known does shrink: its distribution-free 95 % confidence interval
(order statistics of Binomial(n, 1/2); e.g. Conover, *Practical Nonparametric Statistics*, 3rd ed.,
section 3.2) narrows about as 1/sqrt(n). "Enough repeats" here means: keep adding pairs until that
interval is narrower than the tolerance asked for (``relative_ci_width``), or lies clear of the
target, or ``max_pairs`` is reached (the report says which).

Clocks. Wall time (``time.perf_counter``) is what a user waits for; CPU time
(``time.process_time``: this process, all its threads, OpenMP workers included) is what the work
costs and is far less disturbed by other processes, so it is reported beside wall time. For work in
other processes (a browser, a Streamlit server) ``children_cpu_s`` sums the CPU time of every
descendant process from ``/proc`` (clock-tick resolution, 10 ms).

This module imports nothing outside the standard library, so its statistics are cheap to test.
"""
from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

CLOCKS = ("wall", "cpu")


@dataclass(frozen=True)
class Sample:
    """One timed piece of work: wall seconds and CPU seconds (NaN when no CPU clock applies)."""

    wall: float
    cpu: float = math.nan


def timed(fn: Callable[[], object]) -> Sample:
    """Wall and process CPU time of ``fn()``."""
    return timed_value(fn)[0]


def timed_value(fn: Callable[[], object]) -> tuple[Sample, object]:
    """(wall and process CPU time of ``fn()``, its value)."""
    c0, w0 = time.process_time(), time.perf_counter()
    value = fn()
    return Sample(time.perf_counter() - w0, time.process_time() - c0), value


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """(Q1, median, Q3) by linear interpolation between order statistics (``statistics.quantiles``,
    method "inclusive", the same as numpy's default): for sorted x_1..x_n the q-quantile sits at
    position 1 + q (n - 1). A single value is its own quartiles."""
    if not values:
        raise ValueError("quartiles of no values")
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def median_ci95(values: Sequence[float]) -> tuple[float, float] | None:
    """Distribution-free ~95 % confidence interval of the median: [x_(k), x_(n+1-k)] with the largest
    k such that P(Binomial(n, 1/2) < k) <= 0.025; None for n < 6, where no such k exists."""
    n, xs = len(values), sorted(values)
    k, tail = 0, 0.0
    while k < n:
        p = math.comb(n, k) / 2**n
        if tail + p > 0.025:
            break
        tail += p
        k += 1
    return None if k == 0 else (xs[k - 1], xs[n - k])


def pair_ratios(tops: Iterable[Sample | None], bottoms: Iterable[Sample | None], clock: str = "wall") -> list[float]:
    """top / bottom within each pair on ``clock`` ("wall" or "cpu"); pairs with a missing side, a NaN
    or a zero denominator (a CPU clock that did not tick) are left out."""
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {CLOCKS}, not {clock!r}")
    out = []
    for a, b in zip(tops, bottoms):
        if a is None or b is None:
            continue
        x, y = getattr(a, clock), getattr(b, clock)
        if y > 0 and math.isfinite(x) and math.isfinite(y):
            out.append(x / y)
    return out


@dataclass(frozen=True)
class RatioStats:
    """The median of per-pair ratios with its IQR and the 95 % interval of the median."""

    median: float
    q1: float
    q3: float
    n: int
    ci: tuple[float, float] | None

    @property
    def iqr_relative(self) -> float:
        """(Q3 - Q1) / median: the scatter of one pair, as a fraction."""
        return (self.q3 - self.q1) / self.median

    @property
    def ci_relative(self) -> float:
        """Width of the median's 95 % interval / median (inf when there are too few pairs for one)."""
        return math.inf if self.ci is None else (self.ci[1] - self.ci[0]) / self.median


def ratio_stats(ratios: Sequence[float]) -> RatioStats:
    """Summary of per-pair ratios (at least one)."""
    q1, med, q3 = quartiles(ratios)
    return RatioStats(med, q1, q3, len(ratios), median_ci95(ratios))


def verdict(stats: RatioStats, target: float, better: str = "lower") -> str:
    """"met" or "missed" by the median against ``target`` (``better`` "lower": median <= target;
    "higher": median >= target), and whether the IQR and the median's 95 % interval are clear of it."""
    met = stats.median <= target if better == "lower" else stats.median >= target
    sign = "<=" if better == "lower" else ">="
    iqr = "IQR clear of it" if not stats.q1 <= target <= stats.q3 else "IQR straddles it"
    if stats.ci is None:
        ci = "too few pairs for a 95% interval"
    else:
        ci = "95% interval clear of it" if not stats.ci[0] <= target <= stats.ci[1] else "95% interval straddles it: not settled"
    return f"target {sign} {target:g}: {'met' if met else 'MISSED'} ({iqr}; {ci})"


def format_ratio(stats: RatioStats | None, digits: int = 3) -> str:
    """``median [IQR lo-hi]``, or "-" for no pairs."""
    if stats is None:
        return "-"
    return f"{stats.median:.{digits}f} [IQR {stats.q1:.{digits}f}-{stats.q3:.{digits}f}]"


def describe(name: str, tops: Sequence[Sample | None], bottoms: Sequence[Sample | None], target: float | None = None,
             better: str = "lower", digits: int = 3) -> str:
    """One report line per ratio: ``name: ratio median [IQR lo-hi] wall, median [IQR] CPU, n pairs,
    95% interval of the wall median``, and the verdict against ``target`` (on wall time, and on CPU
    time when the CPU clock was read)."""
    wall, cpu = (pair_ratios(tops, bottoms, c) for c in CLOCKS)
    ws, cs = (ratio_stats(r) if r else None for r in (wall, cpu))
    ci = f", wall median 95% interval {ws.ci[0]:.{digits}f}-{ws.ci[1]:.{digits}f}" if ws and ws.ci else ""
    line = (f"  {name}: ratio {format_ratio(ws, digits)} wall, {format_ratio(cs, digits)} CPU "
            f"({len(wall)} pairs{ci})")
    if target is not None and ws is not None:
        line += f"\n    wall {verdict(ws, target, better)}"
        if cs is not None:
            line += f"\n    CPU  {verdict(cs, target, better)}"
    return line


def settled(ratios: Sequence[float], tolerance: float, target: float | None = None) -> bool:
    """Enough pairs: the median's 95 % interval is narrower than ``tolerance`` (relative to the
    median), or it lies wholly on one side of ``target``."""
    if not ratios:
        return False
    stats = ratio_stats(ratios)
    if stats.ci is None:
        return False
    if target is not None and not stats.ci[0] <= target <= stats.ci[1]:
        return True
    return stats.ci_relative < tolerance


def interleave(sides: dict[str, Callable[[], Sample]], pairs: int, max_pairs: int | None = None,
               enough: Callable[[dict[str, list[Sample]]], bool] | None = None,
               on_pair: Callable[[int, dict[str, list[Sample]]], None] | None = None) -> dict[str, list[Sample]]:
    """Run every side once per pair, in the given order on even pairs and reversed on odd ones.

    At least ``pairs`` pairs; then, up to ``max_pairs``, more until ``enough(samples)`` is true
    (``enough`` None: exactly ``pairs``). ``on_pair(index, samples)`` after each pair (progress lines).
    Returns each side's samples, in pair order."""
    names = list(sides)
    samples: dict[str, list[Sample]] = {k: [] for k in names}
    limit = max(pairs, max_pairs or pairs)
    for pair in range(limit):
        if pair >= pairs and (enough is None or enough(samples)):
            break
        for name in (names if pair % 2 == 0 else names[::-1]):
            samples[name].append(sides[name]())
        if on_pair is not None:
            on_pair(pair, samples)
    return samples


def children_cpu_s(root_pid: int | None = None) -> float:
    """CPU seconds (user + system) used so far by every live descendant of ``root_pid`` (default: this
    process), from ``/proc/<pid>/stat``; the processes a bench started (a browser, a server). 0.0 where
    ``/proc`` is missing. Processes that ended are not counted, so take differences over short windows."""
    proc = Path("/proc")
    if not proc.is_dir():
        return 0.0
    parent_of: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended while we looked
            continue
        parent_of[int(entry.name)] = int(fields[1])
        ticks[int(entry.name)] = int(fields[11]) + int(fields[12])  # utime, stime
    root = os.getpid() if root_pid is None else root_pid
    total, stack, seen = 0, [root], set()
    children: dict[int, list[int]] = {}
    for pid, parent in parent_of.items():
        children.setdefault(parent, []).append(pid)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in seen:
                seen.add(child)
                total += ticks.get(child, 0)
                stack.append(child)
    return total / os.sysconf("SC_CLK_TCK")


def load_note() -> str:
    """Cores and the 1/5/15-minute load averages (beside every number: the machine is shared)."""
    one, five, fifteen = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return f"{len(os.sched_getaffinity(0))} cores, load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min)"
