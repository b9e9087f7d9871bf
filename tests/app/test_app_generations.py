"""The Generations page through AppTest, with real (tiny) chains on digits: a non-default number of
born-again generations reaches the started experiment, each generation starts from its finished parent,
and the charts follow the runs; a teacher-assistant chain whose student is not smaller than its
assistant is refused with the reason.

Expected values are read back from the run folders (config.json, metrics.jsonl), never from the page.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from _support.apptest import charts, harness, ok, texts, values, wait_until
from _support.run_files import metric_lines
from kdviz.figures.generations import group_styles

PAGE = Path(__file__).resolve().parents[2] / "kdviz" / "app" / "pages" / "generations.py"
HARNESS = harness((PAGE, "Generations"))
TEACHER_EPOCHS = 2


def test_the_page_is_in_the_navigation_from_the_spec():
    from kdviz.app.navigation import lab_pages

    pages = {p.title: p for p in lab_pages()}
    assert Path(pages["Generations"].path) == PAGE


def test_born_again_chain_with_chosen_generations_starts_and_charts_appear(lab_env):
    at = ok(AppTest.from_string(HARNESS, default_timeout=60).run())
    assert at.title[0].value == "Generations: born-again and teacher assistant" and "press **Start**" in texts(at)
    at.slider(key="gen_generations").set_value(2).run()
    at.slider(key="gen_epochs").set_value(2).run()
    at.slider(key="gen_T").set_value(6.0).run()
    next(b for b in ok(at).button if b.label.startswith("Start")).click().run()
    exp = ok(at).session_state["kdviz_experiments"][-1]
    assert [run.name for run in exp.plan.runs] == [f"generation {k} · seed 0" for k in range(3)]
    wait_until(at, lambda a: exp.done, timeout=90, pause=0.3)
    final = charts(ok(at.run()))
    folders = [Path(exp.job(f"generation {k} · seed 0").path) for k in range(3)]
    configs = [json.loads((f / "config.json").read_text()) for f in folders]
    assert configs[0]["teacher"] is None and [c["epochs"] for c in configs] == [2, 2, 2]
    assert [Path(c["teacher"]) for c in configs[1:]] == folders[:2] and configs[2]["T"] == 6.0
    finals = [metric_lines(f, "eval")[-1]["test_acc"] for f in folders]
    bars = final["gen-chain-0"]["data"][0]
    np.testing.assert_allclose(values(bars["y"]), [100 * a for a in finals], rtol=1e-6)
    curves = {t["name"]: values(t["y"]) for t in final["gen-accuracy"]["data"]}
    np.testing.assert_allclose(curves["generation 1 · seed 0"], [100 * r["test_acc"] for r in metric_lines(folders[1], "eval")],
                               rtol=1e-6)
    # every generation's curve in its own colour, the one its bar has on the chart beside it
    line_colours = {t["name"]: t["line"]["color"] for t in final["gen-accuracy"]["data"] if t["name"] in curves}
    assert len({line_colours[f"generation {k} · seed 0"] for k in range(3)}) == 3
    assert [line_colours[f"generation {k} · seed 0"] for k in range(3)] == [c for c, _ in group_styles(3)]
    assert f"{finals[0]:.1%}" in texts(at)


def test_assistant_not_smaller_than_the_student_is_refused(lab_env):
    at = ok(AppTest.from_string(HARNESS, default_timeout=60).run())
    wait_until(at, lambda a: "ready" in texts(a), timeout=120, pause=0.3)
    at.segmented_control(key="gen_kind").set_value("teacher assistant").run()
    at.selectbox(key="gen_assistant").set_value(16).run()
    at.selectbox(key="gen_student").set_value(32).run()
    before = len(at.session_state["kdviz_experiments"]) if "kdviz_experiments" in at.session_state else 0
    next(b for b in ok(at).button if b.label.startswith("Start")).click().run()
    assert "must be smaller than the assistant" in texts(at)
    assert len(at.session_state["kdviz_experiments"]) == before  # nothing started


def test_assistant_chain_starts_with_its_sizes_and_draws_the_capacity_gap(lab_env):
    at = ok(AppTest.from_string(HARNESS, default_timeout=60).run())
    wait_until(at, lambda a: "ready" in texts(a), timeout=120, pause=0.3)
    at.segmented_control(key="gen_kind").set_value("teacher assistant").run()
    at.selectbox(key="gen_assistant").set_value(64).run()
    at.selectbox(key="gen_student").set_value(4).run()
    at.slider(key="gen_epochs").set_value(2).run()
    next(b for b in ok(at).button if b.label.startswith("Start")).click().run()
    exp = ok(at).session_state["kdviz_experiments"][-1]
    wait_until(at, lambda a: exp.done, timeout=90, pause=0.3)
    final = charts(ok(at.run()))
    saved = {name: json.loads((Path(job.path) / "config.json").read_text()) for name, job in exp.jobs.items()}
    assert saved["assistant · seed 0"]["model_options"]["hidden"] == [64]
    assert saved["student via assistant · seed 0"]["model_options"]["hidden"] == [4]
    assert Path(saved["student via assistant · seed 0"]["teacher"]) == Path(exp.job("assistant · seed 0").path)
    via = metric_lines(Path(exp.job("student via assistant · seed 0").path), "eval")[-1]["test_acc"]
    gap_traces = {t["name"]: t for t in final["gen-chain-1"]["data"]}
    np.testing.assert_allclose(values(gap_traces["via the teacher assistant"]["y"]), [100 * via], rtol=1e-6)
    assert "capacity gap" in texts(at)


def test_stop_ends_the_chain_and_no_later_generation_starts(lab_env):
    at = ok(AppTest.from_string(HARNESS, default_timeout=60).run())
    at.toggle(key="gen_pace").set_value(True).run()  # generation 0 lasts at least 30 s: still running at Stop
    next(b for b in ok(at).button if b.label.startswith("Start")).click().run()
    exp = ok(at).session_state["kdviz_experiments"][-1]
    wait_until(at, lambda a: exp.job("generation 0 · seed 0").status().step >= 1, timeout=60, pause=0.2)
    at.button(key="gen-stop").click().run()
    wait_until(at, lambda a: exp.done, timeout=60, pause=0.2)
    assert list(exp.jobs) == ["generation 0 · seed 0"] and exp.job("generation 0 · seed 0").status().state == "stopped"
    assert set(exp.blocked) == {"generation 1 · seed 0", "generation 2 · seed 0", "generation 3 · seed 0"}
    assert "will not start" in texts(ok(at.run()))
