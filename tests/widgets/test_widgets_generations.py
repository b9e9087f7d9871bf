"""``GenerationsMonitor`` without a browser: it follows a live born-again chain (real tiny runs on digits)
and a finished teacher-assistant chain.

Expected values come from the run folders (``metrics.jsonl`` lines read here with json), never from the
widget code under test.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("ipywidgets")

from kdviz.engine import TrainConfig, start  # noqa: E402
from kdviz.present import Experiment  # noqa: E402
from kdviz.present.family_story import family_base_config  # noqa: E402
from kdviz.present.generations import assistant_plan, born_again_plan, chain_experiment  # noqa: E402

from _support.polling import wait_for  # noqa: E402
from _support.run_files import metric_lines  # noqa: E402


@pytest.fixture(scope="module")
def base(manager, tmp_path_factory):
    runs = tmp_path_factory.mktemp("generations-widget-runs")
    teacher = start(TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [40]}, max_steps=60,
                                snapshot_every=0, runs_root=str(runs), name="teacher"), manager)
    assert teacher.wait(120).state == "finished"
    config = family_base_config(teacher=str(teacher.path), dataset="digits", train_size=1347, runs_root=str(runs),
                                pace_s=None)
    return replace(config, max_steps=24, eval_every=6, snapshot_every=0, probe_count=2)


def test_monitor_follows_the_generations_as_they_start_and_ends_with_their_accuracies(base, manager):
    from kdviz.widgets.generations import GenerationsMonitor

    plan = born_again_plan(replace(base, pace_s=1.0), 2, T=2.0, alpha=0.6, seeds=(5,))
    exp = chain_experiment(plan, manager, "widget born-again")
    monitor = GenerationsMonitor(exp, interval_ms=50)
    seen_waiting, seen_bars = set(), set()

    def collect() -> bool:
        text = monitor.status["generation 2 · seed 5"].value
        if "waiting for generation 1 · seed 5" in text:
            seen_waiting.add("g2")
        bars = monitor.generation_chart.widget.data
        if bars:
            seen_bars.add(tuple(y is not None for y in bars[0].y))
        return exp.done and not monitor.poller.running

    wait_for(collect, 60, "the chain to end and the monitor to stop polling", pause=0.05)
    assert seen_waiting == {"g2"}  # shown as waiting for its teacher before it started
    assert len(seen_bars) >= 2, f"the generation chart never changed while the chain trained: {seen_bars}"
    finals = [metric_lines(Path(exp.job(f"generation {k} · seed 5").path), "eval")[-1]["test_acc"] for k in range(3)]
    assert list(monitor.generation_chart.widget.data[0].y) == pytest.approx([100 * a for a in finals])
    assert f"{finals[0]:.1%}" in monitor.caption.value and "generation 1" in monitor.caption.value.lower()
    assert "finished" in monitor.status["generation 2 · seed 5"].value


def test_monitor_of_a_teacher_assistant_chain_draws_the_capacity_gap(base, manager):
    from kdviz.widgets.generations import GenerationsMonitor

    plan = assistant_plan(base, base.teacher, [20], [5], seeds=(1,))
    exp = chain_experiment(plan, manager, "widget TA")
    exp.wait(60)
    monitor = GenerationsMonitor(exp, autostart=False)
    direct, via = monitor.gap_chart.widget.data
    teacher_params = 64 * 40 + 40 + 410
    assert list(direct.x) == pytest.approx([teacher_params / (64 * 20 + 20 + 210), teacher_params / (64 * 5 + 5 + 60)])
    final = metric_lines(Path(exp.job("student via assistant · seed 1").path), "eval")[-1]["test_acc"]
    assert list(via.y) == pytest.approx([100 * final])
    assert "via the assistant" in monitor.caption.value
    teacher_final = metric_lines(Path(base.teacher), "eval")[-1]["test_acc"]  # the chain's teacher, not the assistant
    assert [shape.y0 for shape in monitor.generation_chart.widget.layout.shapes] == pytest.approx([100 * teacher_final])


def test_monitor_refuses_an_experiment_that_is_not_a_chain(manager):
    from kdviz.widgets.generations import GenerationsMonitor

    with pytest.raises(ValueError, match="chain_experiment"):
        GenerationsMonitor(Experiment(manager))
