"""``SpecialistsMonitor`` without a browser: it follows a live specialists pipeline (real tiny runs on
digits) from the generalist to the combination. Expected values come from the run folders
(``metrics.jsonl`` read here with json) and the experiment's measured result, never from the widget."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("ipywidgets")

from kdviz.engine import TrainConfig  # noqa: E402
from kdviz.present.specialists import SpecialistsPlan, generalist_config, specialists_experiment  # noqa: E402

from _support.polling import wait_for  # noqa: E402
from _support.run_files import metric_lines  # noqa: E402


def test_monitor_follows_the_pipeline_and_ends_with_the_combination(manager, tmp_path):
    from kdviz.widgets.specialists import SpecialistsMonitor

    base = TrainConfig(dataset="digits", model_options={"hidden": [16]}, epochs=6, lr=0.05, batch_size=32,
                       snapshot_every=0, runs_root=str(tmp_path), seed=2, pace_s=1.5)
    plan = SpecialistsPlan(generalist_config(base, 250), clusters=6, count=2, epochs=2, lr=0.02)
    exp = specialists_experiment(plan, manager)
    monitor = SpecialistsMonitor(exp, interval_ms=50)
    seen_waiting, curves = set(), set()

    def collect() -> bool:
        if "waiting for the generalist" in monitor.status["specialist 1"].value:
            seen_waiting.add("specialist 1")
        data = monitor.accuracy_chart.widget.data
        if data:
            curves.add(tuple(len(t.y) for t in data))
        return exp.done and not monitor.poller.running

    wait_for(collect, 90, "the pipeline to end and the monitor to stop polling", pause=0.05)
    assert seen_waiting == {"specialist 1"}
    assert len(curves) >= 2, f"the accuracy chart never changed while the runs trained: {curves}"
    g = Path(exp.job("generalist").path)
    trace = next(t for t in monitor.accuracy_chart.widget.data if t.name == "generalist")
    assert list(trace.y) == pytest.approx([100 * r["test_acc"] for r in metric_lines(g, "eval")])
    result = exp.result()
    assert result is not None and f"{100 * result.combined_acc:.1f} %" in monitor.caption.value
    assert "done" in monitor.status["combination"].value and "finished" in monitor.status["generalist"].value
    assert len(monitor.subsets_chart.widget.data) == 1 and len(monitor.gain_chart.widget.data) == 2
    assert list(monitor.gain_chart.widget.data[1].y) == pytest.approx([100 * r.combined for r in result.covered])


def test_monitor_refuses_what_is_not_a_specialists_pipeline():
    from kdviz.present import Experiment
    from kdviz.widgets.specialists import SpecialistsMonitor

    with pytest.raises(ValueError, match="specialists_experiment"):
        SpecialistsMonitor(Experiment())
