"""``LotteryMonitor`` and ``NMMonitor`` without a browser: they follow a live ticket search and a
finished N:M comparison (real tiny runs on digits). Expected values come from the run folders."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("ipywidgets")

from kdviz.engine import TrainConfig  # noqa: E402
from kdviz.present.lottery import (  # noqa: E402
    base_config, control_name, lottery_experiment, lottery_plan, n_m_experiment, n_m_plan, ticket_name,
)

from _support.polling import wait_for  # noqa: E402
from _support.run_files import metric_lines  # noqa: E402


def tiny(root, **more):
    base = base_config("digits", str(root), epochs=2, train_subset=320, evals=3, **more)
    return TrainConfig.from_dict({**base.to_dict(), "model": "mlp", "model_options": {"hidden": [32, 16]}})


def test_lottery_monitor_follows_the_rounds_live(manager, tmp_path):
    from kdviz.widgets.lottery import LotteryMonitor

    plan = lottery_plan(tiny(tmp_path, pace_s=0.6), rounds=2, prune_fraction=0.4, control_rounds=[2])
    exp = lottery_experiment(plan, manager, "widget lottery")
    monitor = LotteryMonitor(exp, interval_ms=50)
    seen_waiting, seen_points = set(), set()

    def collect() -> bool:
        if "waiting for ticket 1" in monitor.status[ticket_name(2)].value:
            seen_waiting.add("t2")
        data = monitor.charts[1].widget.data
        seen_points.add(sum(len(trace.x) for trace in data))
        return exp.done and not monitor.poller.running

    wait_for(collect, 90, "the search to end and the monitor to stop polling")
    assert seen_waiting == {"t2"}
    assert len(seen_points) >= 3, f"the overlap chart never grew while the rounds trained: {seen_points}"
    ticket, control = monitor.charts[0].widget.data
    finals = [metric_lines(Path(exp.jobs[n].path), "eval")[-1]["test_acc"] for n in (ticket_name(1), ticket_name(2))]
    assert list(ticket.y) == pytest.approx([100 * a for a in finals])
    last = metric_lines(Path(exp.jobs[control_name(2)].path), "eval")[-1]
    assert list(control.y) == pytest.approx([100 * last["test_acc"]])
    assert list(control.x) == pytest.approx([100 * (1 - last["lottery/sparsity"])])
    assert "finished" in monitor.status[control_name(2)].value and "ticket" in monitor.caption.value


def test_n_m_monitor_draws_the_comparison_and_the_pattern(manager, tmp_path):
    from kdviz.widgets.lottery import LotteryMonitor, NMMonitor

    plan = n_m_plan(tiny(tmp_path), 1, 4, fine_tune_epochs=1)
    exp = n_m_experiment(plan, manager, "widget N:M")
    exp.wait(90)
    monitor = NMMonitor(exp, autostart=False)
    bars = monitor.charts[0].widget.data[0]
    assert list(bars.x) == ["dense", "1:4", "unstructured 75%"]
    final = metric_lines(Path(exp.jobs["N:M"].path), "eval")[-1]["test_acc"]
    assert bars.y[1] == pytest.approx(100 * final)
    heat = monitor.charts[1].widget.data[0]
    kept = [[v == v for v in row] for row in heat.z]  # NaN: pruned
    assert all(sum(r[g * 4:(g + 1) * 4]) == 1 for r in kept for g in range(len(r) // 4))
    with pytest.raises(ValueError, match="LotteryMonitor follows"):
        LotteryMonitor(exp, autostart=False)
