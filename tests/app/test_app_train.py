"""The Train a student page through AppTest: KD and scratch students trained for real, live charts
that must grow while training and stand still while paused, the job queue, bad input.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from kdviz.methods import get_method
from kdviz.present.distill_configs import KD_JOB, SCRATCH_JOB

from _support.apptest import charts, lab_app, ok, start_button, values, wait_until
from _support.apptest import texts as page_texts

TRAIN = "kdviz/app/pages/train_student.py"


def texts(at: AppTest) -> str:
    """The page's markdown, captions and info boxes (its error boxes left out)."""
    return page_texts(at, errors=False)


def train_page(teacher, **values) -> AppTest:
    at = ok(lab_app().run())
    at.switch_page(TRAIN).run()
    for key, value in values.items():
        widget = at.slider(key=key) if key in ("tr_epochs", "tr_alpha") else at.number_input(key=key)
        widget.set_value(value).run()
    return ok(at)


def accuracy_points(at: AppTest) -> int:
    """How many evaluations the KD student's test-accuracy curve shows (0 before the chart)."""
    spec = charts(at).get("test-accuracy")
    return len(values(spec["data"][0]["x"])) if spec else 0


def test_start_trains_kd_and_scratch_students_with_live_charts(teacher):
    at = train_page(teacher, tr_epochs=2, tr_T=3.0, tr_alpha=0.75)
    start_button(at).click().run()
    exp = ok(at).session_state["kdviz_experiments"][-1]
    assert list(exp.jobs) == [KD_JOB, SCRATCH_JOB]
    kd, scratch = exp.job(KD_JOB).config, exp.job(SCRATCH_JOB).config
    assert (kd.method, scratch.method) == (get_method("kd").loss, get_method("scratch").loss) and kd.teacher == str(teacher.path)
    assert (kd.seed, kd.dataset, kd.model_options, kd.epochs) == (scratch.seed, scratch.dataset, scratch.model_options, 2)
    assert (kd.T, kd.alpha, kd.probe_temperatures) == (3.0, 0.75, [1.0, 3.0])
    wait_until(at, lambda a: exp.done)
    final = charts(ok(at.run()))
    acc = final["test-accuracy"]["data"]
    assert [(t["name"], t["line"]["color"]) for t in acc[:2]] == [("KD student", get_method("kd").colour),
                                                                   ("scratch student", get_method("scratch").colour)]
    kd_evals = [r["test_acc"] * 100 for r in exp.job(KD_JOB).store.metrics("eval")]
    assert np.allclose(values(acc[0]["y"]), kd_evals) and len(kd_evals) >= 8
    assert {"loss-kd-student", "loss-scratch-student", "probe-soft-targets"} <= set(final)
    names = [t["name"] for t in final["loss-kd-student"]["data"]]
    assert any("soft" in n for n in names) and any("hard" in n for n in names)
    probe = final["probe-soft-targets"]["data"]
    assert [(t["name"], t["marker"]["color"]) for t in probe] == [
        ("teacher", get_method("teacher").colour), ("KD student", get_method("kd").colour),
        ("scratch student", get_method("scratch").colour)]
    frames = final["probe-soft-targets"].get("frames", [])  # finished: the soft targets replay in the browser
    assert len(frames) >= 2 and final["probe-soft-targets"]["layout"]["updatemenus"][0]["buttons"][0]["label"] == "▶ Play"
    snaps = exp.job(KD_JOB).store.snapshots_since(0)[0]
    assert np.allclose(values(frames[0]["data"][1]["y"]), snaps[0].arrays["probe/soft"][-1, 0], atol=1e-6)
    assert np.allclose(values(frames[-1]["data"][1]["y"]), snaps[-1].arrays["probe/soft"][-1, 0], atol=1e-6)
    at.run()  # a finished run stays on screen
    assert "test-accuracy" in charts(ok(at)) and "finished" in texts(at)


def test_live_chart_grows_while_training_stands_still_when_paused_then_stop(teacher):
    at = train_page(teacher, tr_epochs=100)
    at.selectbox(key="kdviz_student").set_value("MLP 800-800 (Hinton)").run()  # slow enough to watch over reruns
    start_button(ok(at)).click().run()
    exp = ok(at).session_state["kdviz_experiments"][-1]
    jobs = list(exp.jobs.values())
    wait_until(at, lambda a: all(j.status().state == "running" for j in jobs) and accuracy_points(a) > 0)
    first = accuracy_points(at)
    # the chart must gain points on reruns while both jobs are still training (no user action)
    wait_until(at, lambda a: accuracy_points(a) > first and all(j.status().state == "running" for j in jobs))
    at.button(key="tr-pause").click().run()
    wait_until(at, lambda a: all(j.status().state == "paused" for j in jobs))
    ok(at.run())  # the jobs may have paused after the page's last run: draw what they say now
    assert at.button(key="tr-pause").label == "Resume" and "paused" in texts(at)
    time.sleep(2.0)  # longer than the chart's rebuild interval
    paused_points, steps = accuracy_points(ok(at.run())), [j.status().step for j in jobs]
    time.sleep(1.0)
    assert accuracy_points(ok(at.run())) == paused_points and [j.status().step for j in jobs] == steps
    at.button(key="tr-pause").click().run()
    wait_until(at, lambda a: all(j.status().state == "running" for j in jobs))
    at.button(key="tr-stop").click().run()
    wait_until(at, lambda a: exp.done)
    assert [j.status().state for j in jobs] == ["stopped", "stopped"]
    ok(at.run())
    assert "stopped" in texts(at) and not start_button(at).disabled


def test_a_zero_temperature_is_refused_with_a_message(teacher):
    at = train_page(teacher, tr_T=0.0)
    assert any("T = 0 is not allowed" in e.value for e in at.error)
    assert start_button(at).disabled


def test_runs_over_the_limit_queue_and_show_their_place(teacher, monkeypatch):
    monkeypatch.setenv("KDVIZ_MAX_JOBS", "1")
    at = train_page(teacher, tr_epochs=30)
    start_button(at).click().run()
    exp = ok(at).session_state["kdviz_experiments"][-1]
    scratch = exp.job(SCRATCH_JOB).status()
    assert scratch.state == "queued" and scratch.queue_position == 1
    assert "waiting in the queue, place 1 (at most 1 runs at once)" in texts(at)
    exp.stop()
    wait_until(at, lambda a: exp.done)


def test_train_page_overlays_an_earlier_run_dotted(teacher, finished_runs, pruned_run):
    at = train_page(teacher)
    options = at.multiselect(key="tr_overlay").options
    assert {Path(p).name for p in finished_runs} <= {o.split(" · ")[0] for o in options}
    by_name = {o.split(" · ")[0]: o.split(" · ")[1] for o in options}
    assert by_name[Path(pruned_run.path).name] == "pruned fine-tune" and by_name[Path(teacher.path).name] == "teacher"
    at.multiselect(key="tr_overlay").set_value([finished_runs[0], str(pruned_run.path)]).run()
    traces = charts(ok(at))["test-accuracy"]["data"]
    assert len(traces) == 2 and all(t["line"]["dash"] == "dot" for t in traces)
    assert [t["line"]["color"] for t in traces] == [get_method("kd").colour, get_method("prune").colour]


def test_export_code_holds_the_page_settings(teacher):
    at = train_page(teacher, tr_T=7.0, tr_alpha=0.35)
    code = "\n".join(c.value for c in at.code)
    assert "T=7.0" in code and "alpha=0.35" in code and "T=4.0" not in code
