"""The Streamlit lab through AppTest: every page and control, with real (tiny) training runs.

Expected numbers are recomputed here independently (numpy softmax of the teacher's logits, the
worked example from exp), never read back from the code under test.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest
import torch
from streamlit.testing.v1 import AppTest

from kdviz.data import load_dataset
from kdviz.engine import load_trained_model
from kdviz.methods import get_method
from kdviz.present.distill_configs import KD_JOB, SCRATCH_JOB

from _support.apptest import charts, ok, start_button, values, wait_until
from _support.apptest import texts as page_texts

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TRAIN = "kdviz/app/pages/train_student.py"
RUNS = "kdviz/app/pages/runs.py"


@pytest.fixture(scope="module")
def teacher(lab_env):
    from kdviz.app.sidebar import LabSettings
    from kdviz.app.teacher import teacher_job

    job = teacher_job(LabSettings())
    assert job.wait(120).state == "finished", job.status()
    return job


@pytest.fixture(scope="module")
def teacher_logits(teacher):
    """The teacher's test-set logits, computed here from its checkpoint."""
    model = load_trained_model(teacher.path).eval()
    with torch.no_grad():
        return model(load_dataset("digits").test_images).double().numpy()


@pytest.fixture(scope="module")
def finished_runs(teacher, lab_env):
    """A finished KD student and scratch student (1 epoch each) in the runs folder."""
    from kdviz.engine import TrainConfig, start

    common = dict(dataset="digits", model="mlp", model_options={"hidden": [8]}, epochs=1, runs_root=str(lab_env))
    jobs = [start(TrainConfig(method="kd", teacher=str(teacher.path), name="kd-student", **common)),
            start(TrainConfig(method="ce", name="scratch-student", **common))]
    assert [j.wait(120).state for j in jobs] == ["finished", "finished"]
    return [str(j.path) for j in jobs]


@pytest.fixture(scope="module")
def pruned_run(teacher, lab_env):
    """A finished cross-entropy run with a prune hook (digits, tiny MLP, a few steps): a pruned fine-tune."""
    from kdviz.engine import TrainConfig, start

    job = start(TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [8]}, epochs=1, max_steps=20,
                            eval_every=5, method="ce", hooks=[{"name": "prune", "sparsity": 0.5}], runs_root=str(lab_env)))
    assert job.wait(120).state == "finished"
    return job


def app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=90)


def softmax(z: np.ndarray, T: float) -> np.ndarray:
    e = np.exp((z - z.max()) / T)
    return e / e.sum()


def texts(at: AppTest) -> str:
    """The page's markdown, captions and info boxes (its error boxes left out)."""
    return page_texts(at, errors=False)


# ---- soft targets page ------------------------------------------------------------------------

def test_default_page_opens_at_once_on_digits_while_the_teacher_trains(tmp_path, monkeypatch):
    monkeypatch.setenv("KDVIZ_RUNS", str(tmp_path))  # nothing cached: the teacher must train
    at = ok(app().run())
    assert at.title[0].value == "Soft targets"
    assert at.selectbox(key="kdviz_dataset").value == "digits"
    assert "teacher" in texts(at) and ("Training the teacher" in texts(at) or "waits in the queue" in texts(at)
                                       or "ready" in texts(at))
    table = at.dataframe[0].value  # the worked example, logits [2, 7, 10]
    for row, T in zip(table.itertuples(index=False), (1, 5, 10, 20)):
        assert np.allclose(row[1:4], softmax(np.array([2.0, 7.0, 10.0]), T), atol=1e-12)
    assert np.allclose(table.iloc[0, 1:4], [0.00032, 0.04741, 0.95227], atol=5e-6)
    assert "softmax-curves" in charts(at)
    from kdviz.app.sidebar import LabSettings
    from kdviz.app.teacher import teacher_job

    job = teacher_job(LabSettings())
    job.stop()
    job.wait(30)


def test_temperature_slider_moves_the_bars_and_the_entropy_marker(teacher, teacher_logits):
    at = ok(app().run())
    before = charts(at)
    z = teacher_logits[0]
    assert np.allclose(values(before["soft-targets"]["data"][0]["y"]), softmax(z, 4.0))
    at.select_slider(key="st_T_slider").set_value(20.0).run()
    after = charts(ok(at))
    p = softmax(z, 20.0)
    assert np.allclose(values(after["soft-targets"]["data"][0]["y"]), p)
    assert not np.allclose(values(after["soft-targets"]["data"][0]["y"]), values(before["soft-targets"]["data"][0]["y"]))
    marker = after["entropy-vs-temperature"]["data"][-1]
    assert values(marker["x"])[0] == 20.0 and np.isclose(values(marker["y"])[0], -(p * np.log(p)).sum())
    assert at.number_input(key="st_T_exact").value == 20.0


def test_exact_temperature_box_and_a_zero_gives_a_clear_message(teacher, teacher_logits):
    at = ok(app().run())
    at.number_input(key="st_T_exact").set_value(2.5).run()
    assert np.allclose(values(charts(ok(at))["soft-targets"]["data"][0]["y"]), softmax(teacher_logits[0], 2.5))
    assert at.select_slider(key="st_T_slider").value == 2.5
    at.number_input(key="st_T_exact").set_value(0.0).run()
    ok(at)
    assert any("T = 0 is not allowed" in e.value for e in at.error)
    assert np.allclose(values(charts(at)["soft-targets"]["data"][0]["y"]), softmax(teacher_logits[0], 2.5))  # T kept


def test_sample_pickers_by_index_most_confused_and_random(teacher, teacher_logits):
    at = ok(app().run())
    at.number_input(key="st_index").set_value(7).run()
    assert charts(ok(at))["sample"]["layout"]["title"]["text"].startswith("<b>#7:")
    p = np.exp(teacher_logits - teacher_logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    top2 = np.sort(p, 1)[:, -2:]
    order = np.argsort(top2[:, 1] - top2[:, 0], kind="stable")
    for rank in (0, 1):
        at.button[[b.label for b in at.button].index("Most confused")].click().run()
        assert at.number_input(key="st_index").value == order[rank]
    assert np.allclose(values(charts(ok(at))["soft-targets"]["data"][0]["y"]), softmax(teacher_logits[order[1]], 4.0))
    seen = {at.number_input(key="st_index").value}
    for _ in range(5):
        at.button[[b.label for b in at.button].index("Random sample")].click().run()
        seen.add(at.number_input(key="st_index").value)
    assert len(seen) > 1 and all(0 <= i < len(teacher_logits) for i in seen)


def test_new_random_logits_redraw_the_softmax_curves(teacher):
    at = ok(app().run())
    before = charts(at)["softmax-curves"]["data"][0]["x"]
    at.button[[b.label for b in at.button].index("New random logits")].click().run()
    after = charts(ok(at))["softmax-curves"]["data"][0]["x"]
    assert not np.allclose(values(before), values(after))


def test_every_chart_exports_png_or_svg_and_csv(teacher):
    at = ok(app().run())
    exported = [c for c in at.get("plotly_chart") if "chart-sample" not in c.proto.id]
    assert len(exported) == 3
    for c in exported:
        assert json.loads(c.proto.config)["toImageButtonOptions"]["format"] == "png"
    csv = [d for d in at.get("download_button") if d.proto.label == "Download CSV"]
    assert len(csv) == len(exported) + 1  # one per chart and one for the worked-example table
    at.radio(key="kdviz_image_format").set_value("svg").run()
    for c in ok(at).get("plotly_chart"):
        if "chart-sample" not in c.proto.id:
            assert json.loads(c.proto.config)["toImageButtonOptions"]["format"] == "svg"


def test_figure_frame_is_the_traces_data_in_long_form():
    from kdviz.app.charts import figure_frame

    fig = go.Figure([go.Scatter(x=[1, 2], y=[0.5, 0.25], name="a"), go.Bar(x=["p", "q", "r"], y=[3, 4, 5], name="b")])
    frame = figure_frame(fig)
    assert frame.values.tolist() == [["a", 1, 0.5], ["a", 2, 0.25], ["b", "p", 3], ["b", "q", 4], ["b", "r", 5]]
    heat = figure_frame(go.Figure(go.Heatmap(z=[[1, 2], [3, 4]], name="h")))
    assert heat[["row", "column", "value"]].values.tolist() == [[0, 0, 1], [0, 1, 2], [1, 0, 3], [1, 1, 4]]


def test_fast_temperature_view_draws_what_the_figure_functions_draw():
    from kdviz.app.temperature import TEMPERATURES, TemperatureView, temperature_figures

    z = np.random.default_rng(3).uniform(-8, 8, size=10)
    names = [str(i) for i in range(10)]
    view = TemperatureView(z, names)
    for T in (*TEMPERATURES[::3], 1.0, 3.7, 1000.0):  # from-scratch figures are slow: a spread of values
        fast = [json.loads(pio.to_json(f, validate=False)) for f in view.figures(T)]
        slow = [json.loads(pio.to_json(f, validate=False)) for f in temperature_figures(z, T, names)]
        assert fast == slow, f"TemperatureView differs from kdviz.figures.soft_targets at T = {T}"


def test_sidebar_mnist_without_a_folder_gives_a_clear_message(teacher):
    at = ok(app().run())
    at.selectbox(key="kdviz_dataset").set_value("mnist").run()
    assert any("IDX files" in e.value for e in ok(at).error)
    at.text_input(key="kdviz_data_root").input("/no/such/folder").run()
    assert any("/no/such/folder" in e.value and "does not exist" in e.value for e in ok(at).error)
    at.selectbox(key="kdviz_dataset").set_value("digits").run()
    assert not ok(at).error
    at.selectbox(key="kdviz_student").set_value("MLP 64-64").run()
    n = 64 * 64 + 64 + 64 * 64 + 64 + 64 * 10 + 10  # 64 inputs -> 64 -> 64 -> 10
    assert any(f"{n:,} parameters" in c.value for c in ok(at).sidebar.caption)


# ---- train a student --------------------------------------------------------------------------

def train_page(teacher, **values) -> AppTest:
    at = ok(app().run())
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


# ---- compare runs -----------------------------------------------------------------------------

def test_runs_page_reopens_and_overlays_and_refuses_unreadable_folders(teacher, finished_runs, tmp_path):
    at = ok(app().run())
    at.switch_page(RUNS).run()
    options = set(at.multiselect(key="cr_selected").options)
    assert {f"{Path(p).name} · {label}" for p, label in zip(finished_runs, ("KD student", "scratch student"))} <= options
    at.multiselect(key="cr_selected").set_value(finished_runs).run()
    spec = charts(ok(at))
    assert len(spec["compare-accuracy"]["data"]) == 2 and "final-accuracy" in spec and "compare-loss" in spec
    assert [t["line"]["color"] for t in spec["compare-accuracy"]["data"]] == [get_method("kd").colour,
                                                                             get_method("scratch").colour]
    bad = tmp_path / "broken-run"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    (bad / "metrics.jsonl").write_text('{"seq": 1}\n')
    before = {f.name: f.read_bytes() for f in bad.iterdir()}
    at.text_input(key="cr_path").input(str(bad)).run()
    at.button[[b.label for b in at.button].index("Open")].click().run()
    assert any("Cannot open" in e.value and "not valid JSON" in e.value for e in ok(at).error)
    assert {f.name: f.read_bytes() for f in bad.iterdir()} == before  # nothing touched
    at.text_input(key="cr_path").input(str(tmp_path / "missing")).run()
    at.button[[b.label for b in at.button].index("Open")].click().run()
    assert any("does not exist" in e.value for e in ok(at).error)
    at.text_input(key="cr_path").input(str(teacher.path)).run()
    at.button[[b.label for b in at.button].index("Open")].click().run()
    assert str(teacher.path) in ok(at).multiselect(key="cr_selected").value


def test_compare_runs_labels_and_colours_a_pruned_cross_entropy_run_as_pruning(teacher, finished_runs, pruned_run):
    prune, scratch = get_method("prune"), get_method("scratch")
    path = str(pruned_run.path)
    at = ok(app().run())
    at.switch_page(RUNS).run()
    assert f"{Path(path).name} · {prune.label}" in ok(at).multiselect(key="cr_selected").options
    at.multiselect(key="cr_selected").set_value([path, finished_runs[1]]).run()
    spec = charts(ok(at))
    pruned, plain = spec["compare-accuracy"]["data"]
    assert pruned["name"] == f"pruned to 50% · {Path(path).name[:15]}" == f"{prune.run_label(pruned_run.config)} · {Path(path).name[:15]}"
    assert pruned["line"]["color"] == prune.colour != scratch.colour
    assert plain["name"].startswith("scratch · ") and plain["line"]["color"] == scratch.colour
    assert list(spec["final-accuracy"]["data"][0]["marker"]["color"]) == [prune.colour, scratch.colour]
    table = at.dataframe[0].value.set_index("name")
    assert table.loc[Path(path).name, "kind"] == prune.label and table.loc[Path(teacher.path).name, "kind"] == "teacher"


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


# ---- sessions and errors ----------------------------------------------------------------------

class FakeJob:
    def __init__(self):
        self.stopped = 0

    def stop(self):
        self.stopped += 1


def make_watchdog(active: dict, now: list):
    from kdviz.app.session import SessionWatchdog

    return SessionWatchdog(grace_s=10, heartbeat_timeout_s=100, interval_s=3600,
                           is_active=lambda sid: active.get(sid), clock=lambda: now[0])


def test_watchdog_stops_the_jobs_of_a_closed_tab_after_the_grace_period():
    active, now = {"a": True, "b": True}, [0.0]
    dog = make_watchdog(active, now)
    ja, jb = FakeJob(), FakeJob()
    dog.add_job("a", ja), dog.add_job("b", jb)
    active["a"] = False  # tab a closed: its websocket is gone
    now[0] = 5.0
    assert dog.check() == [] and ja.stopped == 0  # within the grace period (it may reconnect)
    now[0] = 16.0
    assert dog.check() == ["a"] and ja.stopped == 1 and jb.stopped == 0
    now[0] = 1000.0  # b is connected: no heartbeat needed
    assert dog.check() == [] and jb.stopped == 0 and dog.jobs("b") == [jb]


def test_watchdog_reconnect_within_grace_keeps_jobs_and_heartbeat_is_the_fallback():
    active, now = {"a": True}, [0.0]
    dog = make_watchdog(active, now)
    ja, jc = FakeJob(), FakeJob()
    dog.add_job("a", ja)
    active["a"] = False
    now[0] = 5.0
    dog.check()
    active["a"] = True  # reconnected
    now[0] = 30.0
    assert dog.check() == [] and ja.stopped == 0
    dog.add_job("c", jc)  # no runtime answer for c: the heartbeat decides
    now[0] = 120.0
    dog.touch("c")
    now[0] = 200.0
    assert dog.check() == [] and jc.stopped == 0
    now[0] = 221.0
    assert dog.check() == ["c"] and jc.stopped == 1


def test_user_errors_show_a_message_never_a_traceback():
    def script():
        import streamlit as st

        from kdviz.app.errors import parse_temperature, user_errors

        with user_errors("Temperature"):
            parse_temperature(float("nan"))
        with user_errors("Reading"):
            raise RuntimeError("disk on fire")
        st.write("page continues")

    at = AppTest.from_function(script).run()
    assert not at.exception
    assert "Temperature:" in at.error[0].value and "finite" in at.error[0].value
    assert "RuntimeError: disk on fire" in at.error[1].value and "untouched" in at.error[1].value
    assert at.markdown[-1].value == "page continues"
