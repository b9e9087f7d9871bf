"""The report of ``bench/load_sessions.py``: each run folder checked against what its config implies
(records, sequence numbers, final state) and the bench's tables (runs, slider latencies, page loads,
server memory, error elements)."""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

from _paired import load_note, quartiles


def _status(run: Path) -> dict:
    try:
        return json.loads((run / "status.json").read_text())
    except (OSError, ValueError):  # not written yet, or caught mid-rename
        return {}


def expected_records(config: dict, total_steps: int) -> tuple[int, int]:
    """(step records, eval records) a complete run of ``config`` writes (``engine.trainer``'s rules)."""
    steps = total_steps // max(1, int(config.get("log_every", 1)))
    every = int(config.get("eval_every", 0))  # 0: per epoch, not counted here (the lab's students set it)
    return steps, (1 + len({s for s in range(every, total_steps + 1, every)} | {total_steps}) if every else None)


def check_run(run: Path) -> dict:
    config = json.loads((run / "config.json").read_text())
    status = _status(run)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    total = int(status.get("total_steps") or 0)
    want_steps, want_evals = expected_records(config, total)
    got_steps = sum(r.get("kind") == "step" for r in records)
    got_evals = sum(r.get("kind") == "eval" for r in records)
    seq_ok = [r.get("seq") for r in records] == list(range(1, len(records) + 1))  # no record lost or repeated
    complete = (status.get("state") == "finished" and status.get("step") == total and got_steps == want_steps
                and (want_evals is None or got_evals == want_evals) and seq_ok)
    return {"run": run.name, "state": status.get("state"), "step": status.get("step"), "total": total,
            "step_records": f"{got_steps}/{want_steps}", "eval_records": f"{got_evals}/{want_evals or '?'}",
            "seq_ok": seq_ok, "complete": complete}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)  # the nearest-rank percentile
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] if ordered else math.nan


def iqr_text(values: list[float]) -> str:
    """"Q1-Q3" of ``values`` (interpolated, as ``bench/_paired.py``), or "-" for fewer than two."""
    if len(values) < 2:
        return "-"
    q1, _, q3 = quartiles(values)
    return f"{q1:.0f}-{q3:.0f}"


def report(sessions, compares, base, memory, args) -> bool:
    print(f"\n## Load: {args.rounds} round(s) of {args.sessions} browser sessions x {args.seconds:.0f} s of slider moves "
          "+ Compare runs reloads")
    print(f"machine: {load_note()}\n")
    print("| session | run | state | steps | step records | eval records | seq 1..n | complete |")
    print("|---|---|---|---|---|---|---|---|")
    all_complete = True
    for s in sessions:
        if not s.runs:
            print(f"| {s.name} | (no runs) | | | | | | no |")
            all_complete = False
        for run in s.runs:
            c = check_run(run)
            all_complete &= c["complete"]
            print(f"| {s.name} | {c['run']} | {c['state']} | {c['step']}/{c['total']} | {c['step_records']} | "
                  f"{c['eval_records']} | {'yes' if c['seq_ok'] else 'NO'} | {'yes' if c['complete'] else 'NO'} |")
    for what, attr in (("Pruning slider -> chart (in the browser)", "latencies_ms"),
                       ("Pruning slider -> exact box follows (server rerun)", "follow_ms")):
        under = [x for s in sessions for x in getattr(s, attr)]
        print(f"\n| {what} | moves | p50 ms | IQR ms | p95 ms | max ms |")
        print("|---|---|---|---|---|---|")
        for label, xs in (("one session alone", getattr(base, attr)), (f"{args.sessions} sessions, each training", under)):
            print(f"| {label} | {len(xs)} | {percentile(xs, 0.5):.0f} | {iqr_text(xs)} | {percentile(xs, 0.95):.0f} | "
                  f"{max(xs) if xs else math.nan:.0f} |")
    print("(alone and under load are not paired: the load cannot be switched on and off between moves, so no "
          "ratio of the two is given; compare them only with the load average beside them)")
    loads = [x for c in compares for x in c.loads_ms]
    if loads:
        print(f"\nCompare runs: {len(loads)} page loads, median {statistics.median(loads):.0f} ms, max {max(loads):.0f} ms")
    print("\n| server RSS | MB |\n|---|---|\n" + "\n".join(f"| {k} | {v:.0f} |" for k, v in memory.items()))
    print(f"| last end - start | {list(memory.values())[-1] - list(memory.values())[0]:+.0f} |")
    errors = [e for s in [*sessions, *compares, base] for e in s.errors]
    print(f"\nerror elements / failures on any page: {len(errors)}")
    for e in errors:
        print(f"  - {e}")
    print(f"\nnothing lost: {'yes' if all_complete else 'NO'}; no error element: {'yes' if not errors else 'NO'}")
    return all_complete and not errors
