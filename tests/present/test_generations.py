"""``kdviz.present.generations``: born-again and teacher-assistant chains as real (tiny) runs on digits.

Each later run must be started only once the run it learns from has finished, with that run's folder
as its teacher; the results table must equal the final test accuracies read here from each run's
``metrics.jsonl`` with json (never through the reader under test); bad plans get ValueErrors that name
the problem.
"""
from __future__ import annotations

import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import pytest

from kdviz.engine import TrainConfig, start
from kdviz.methods import get_method
from kdviz.present.family_story import family_base_config
from kdviz.present.generations import (
    ASSISTANT, BORN_AGAIN, assistant_caption, assistant_plan, born_again_caption, born_again_plan, chain_experiment,
    chain_figures, chain_results, latest_accuracies,
)

from _support.run_files import metric_lines

MAX_CONCURRENT = 2
KD, SCRATCH = get_method("kd"), get_method("scratch")


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    return tmp_path_factory.mktemp("generation-runs")


@pytest.fixture(scope="module")
def teacher(manager, runs_root):
    job = start(TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [48]}, max_steps=60,
                            snapshot_every=0, runs_root=str(runs_root), name="teacher"), manager)
    assert job.wait(120).state == "finished"
    return job


@pytest.fixture(scope="module")
def base(teacher, runs_root):
    config = family_base_config(teacher=str(teacher.path), dataset="digits", train_size=1347, runs_root=str(runs_root),
                                pace_s=None)
    return replace(config, max_steps=24, eval_every=8, snapshot_every=0, probe_count=2)


def final_accuracy(run) -> float:
    return metric_lines(Path(run.path), "eval")[-1]["test_acc"]


def saved_config(run) -> dict:
    return json.loads((Path(run.path) / "config.json").read_text())


@pytest.fixture(scope="module")
def born_again(base, manager):
    plan = born_again_plan(base, 2, T=3.0, alpha=0.7, seeds=(4, 9))
    exp = chain_experiment(plan, manager, "test born-again")
    pending_at_start = set(exp.pending)
    teacher_state_at_start = {}  # each stage's predecessor's state the moment the stage appeared as a job
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # poll here (not through ``done``, which polls too) to see each start
        for name in exp.poll():  # the stages this poll started
            teacher_state_at_start[name] = exp.job(plan.run(name).teacher_from).status().state
        if not exp.pending and all(job.done for job in exp.jobs.values()):
            break
        time.sleep(0.02)
    states = exp.wait(10)
    return plan, exp, pending_at_start, states, teacher_state_at_start


def test_each_generation_learns_from_the_previous_finished_run(born_again):
    plan, exp, pending_at_start, states, teacher_state_at_start = born_again
    assert set(states) == {f"generation {k} · seed {s}" for k in range(3) for s in (4, 9)}
    assert all(state.state == "finished" for state in states.values())
    # generations 1 and 2 waited: they were stages, not jobs, while generation 0 trained
    assert pending_at_start == {f"generation {k} · seed {s}" for k in (1, 2) for s in (4, 9)}
    for seed in (4, 9):
        first = saved_config(exp.job(f"generation 0 · seed {seed}"))
        assert (first["method"], first["teacher"], first["seed"]) == (SCRATCH.loss, None, seed)
        for k in (1, 2):
            config = saved_config(exp.job(f"generation {k} · seed {seed}"))
            previous = exp.job(f"generation {k - 1} · seed {seed}")
            assert Path(config["teacher"]) == Path(previous.path)
            assert (config["method"], config["T"], config["alpha"], config["seed"]) == (KD.loss, 3.0, 0.7, seed)
            assert config["model_options"] == first["model_options"]  # the same architecture every generation
    # every later generation was started by a poll here, and its teacher had finished at that moment
    assert teacher_state_at_start == {name: "finished" for name in pending_at_start}


def test_results_equal_the_final_accuracies_in_the_run_folders(born_again):
    plan, exp, *_ = born_again
    results = chain_results(plan, latest_accuracies(exp.jobs))
    assert [r.group for r in results] == ["generation 0", "generation 1", "generation 2"]
    for r in results:
        expected = [final_accuracy(exp.job(f"{r.group} · seed {s}")) for s in (4, 9)]
        assert r.accuracies == pytest.approx(expected)
        assert r.mean == pytest.approx(statistics.mean(expected))
        assert r.spread == pytest.approx(statistics.stdev(expected))
        assert (r.runs, r.finished) == (2, 2)
    text = born_again_caption(results)
    gap = 100 * (results[1].mean - results[0].mean)
    assert f"({gap:+.1f} points" in text and f"{results[0].mean:.1%}" in text
    g0, g1 = ([final_accuracy(exp.job(f"generation {k} · seed {s}")) for s in (4, 9)] for k in (0, 1))
    assert f"higher in {sum(b > a for a, b in zip(g0, g1))} of 2 seeds" in text.split("Generation 2")[0]
    figure, caption = chain_figures(plan, results)[0]
    assert [round(y, 6) for y in figure.data[0].y] == [round(100 * r.mean, 6) for r in results]
    seeds_of = lambda g: [final_accuracy(exp.job(f"{g} · seed {s}")) for s in (4, 9)]  # noqa: E731
    assert list(figure.data[0].error_y.array) == pytest.approx([100 * statistics.stdev(seeds_of(r.group)) for r in results])
    assert sorted(figure.data[1].y) == pytest.approx(sorted(100 * a for r in results for a in seeds_of(r.group)))
    assert caption == text


def test_assistant_chain_sizes_and_teachers(base, teacher, manager):
    plan = assistant_plan(base, str(teacher.path), [24], 6, T=5.0, alpha=0.8, seeds=(3,))
    assert plan.kind == ASSISTANT and plan.teacher_params == 64 * 48 + 48 + 48 * 10 + 10
    by_group = {run.group: run for run in plan.runs}
    assert by_group["assistant"].config.model_options["hidden"] == [24]
    assert by_group["student direct"].config.model_options["hidden"] == [6]
    assert (by_group["assistant"].params, by_group["student direct"].params) == (64 * 24 + 24 + 250, 64 * 6 + 6 + 70)
    assert plan.dependencies == {"assistant · seed 3": None, "student direct · seed 3": None,
                                 "student via assistant · seed 3": "assistant · seed 3"}
    exp = chain_experiment(plan, manager, "test TA")
    assert all(state.state == "finished" for state in exp.wait(120).values())
    via, helper = saved_config(exp.job("student via assistant · seed 3")), exp.job("assistant · seed 3")
    assert Path(via["teacher"]) == Path(helper.path) and (via["T"], via["alpha"]) == (5.0, 0.8)
    assert saved_config(exp.job("student direct · seed 3"))["teacher"] == str(teacher.path)
    results = chain_results(plan, latest_accuracies(exp.jobs))
    accs = {r.group: r.mean for r in results}
    assert accs["student via assistant"] == pytest.approx(final_accuracy(exp.job("student via assistant · seed 3")))
    gap = 100 * (accs["student via assistant"] - accs["student direct"])
    text = assistant_caption(plan, results)
    assert f"{abs(gap):.1f} points" in text and f"capacity gap {plan.teacher_params / 460:.0f}x" in text
    figures = chain_figures(plan, results)
    gap_chart = figures[1][0]
    assert list(gap_chart.data[1].x) == [pytest.approx(plan.teacher_params / 460)]


def test_bad_plans_are_refused_with_the_reason(base, teacher):
    with pytest.raises(ValueError, match="generations"):
        born_again_plan(base, 0, T=4.0, alpha=0.9)
    with pytest.raises(ValueError, match="temperature"):
        born_again_plan(base, 2, T=0.0, alpha=0.9)
    with pytest.raises(ValueError, match="alpha"):
        born_again_plan(base, 2, T=4.0, alpha=1.5)
    with pytest.raises(ValueError, match="seeds must differ"):
        born_again_plan(base, 2, T=4.0, alpha=0.9, seeds=(1, 1))
    with pytest.raises(ValueError, match="assistant .* must be smaller than the teacher"):
        assistant_plan(base, str(teacher.path), [64], [8])
    with pytest.raises(ValueError, match="student .* must be smaller than the assistant"):
        assistant_plan(base, str(teacher.path), [16], [16])
    with pytest.raises(ValueError, match="assistant_size"):
        assistant_plan(base, str(teacher.path), [0], [8])
    with pytest.raises(ValueError, match="has no hidden layers"):
        assistant_plan(replace(base, model="resnet", model_options={}), str(teacher.path), [16], [8])
    with pytest.raises(ValueError, match="not a readable run folder"):
        assistant_plan(base, "/no/such/run", [16], [8])
    assert born_again_plan(base, 1, T=4.0, alpha=0.9).kind == BORN_AGAIN
