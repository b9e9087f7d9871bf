"""The "Which distillation?" page through AppTest, with real (tiny) runs on digits: the page lists the
family registry's members (here KD and a member this test registers around KD with knobs of its own),
draws each chosen member's knobs, starts the scratch student and the chosen members on the same
teacher, and its accuracy chart, results table and member panels come from the runs' records.

Expected values are read back from the run folders (config.json, metrics.jsonl), never from the page.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

from kdviz.methods import get_method
from kdviz.present.family import FAMILY, FamilyMember, Knob, PanelFigure, register_member

from _support.apptest import charts, harness, ok, texts, values, wait_until
from _support.run_files import metric_lines, run_folder

PAGE = Path(__file__).resolve().parents[2] / "kdviz" / "app" / "pages" / "family.py"
HARNESS = harness((PAGE, "Which distillation?"))
TEACHER_EPOCHS = 2
KD = get_method("kd")
SOFT = replace(KD, name="soft_test", label="soft-test student")  # a member only this test registers


def soft_panel(view) -> list[PanelFigure]:
    """The test member's panel: its loss per step, captioned with the last step it shows."""
    if not view.steps:
        return []
    steps = [r["step"] for r in view.steps]
    return [PanelFigure(go.Figure(go.Scatter(x=steps, y=[r["loss"] for r in view.steps])),
                        f"soft-test loss up to step {steps[-1]}")]


@pytest.fixture(scope="module", autouse=True)
def soft_member():
    """KD with knobs of its own (``hot``: the temperature, ``labels_weight``: 1 - alpha) and a panel."""
    member = register_member(FamilyMember(
        spec=SOFT, order=50, panel=soft_panel,
        knobs=(Knob("hot", "temperature (test)", 1.0, 20.0, 2.0, 1.0), Knob("labels_weight", "label weight", 0.0, 1.0, 0.5, 0.1)),
        configure=lambda base, v: replace(base, method=KD.loss, T=float(v["hot"]), alpha=1.0 - float(v["labels_weight"]))))
    yield member
    FAMILY._items.pop(member.name, None)  # the registry has no unregister: leave it as other tests expect it


def test_the_page_is_in_the_navigation_from_the_spec():
    from kdviz.app.navigation import lab_pages

    pages = {p.title: p for p in lab_pages()}
    assert Path(pages["Which distillation?"].path) == PAGE


def test_chosen_members_start_with_their_knobs_and_the_charts_follow_the_runs(lab_env):
    at = ok(AppTest.from_string(HARNESS, default_timeout=60).run())
    assert at.title[0].value == "Which distillation?" and "Press **Start**" in texts(at)
    assert set(at.multiselect(key="fam_members").options) >= {KD.label, SOFT.label}
    wait_until(at, lambda a: "ready" in texts(a), timeout=120, pause=0.3)
    at.multiselect(key="fam_members").set_value(["soft_test"]).run()
    assert not [s for s in at.slider if s.key.startswith(f"fam_{KD.name}_")]  # an unchosen member's knobs are hidden
    at.multiselect(key="fam_members").set_value([KD.name, "soft_test"]).run()
    at.slider(key=f"fam_{KD.name}_T").set_value(6.0).run()
    at.slider(key="fam_soft_test_hot").set_value(7.0).run()
    at.slider(key="fam_soft_test_labels_weight").set_value(0.3).run()
    at.slider(key="fam_epochs").set_value(3).run()
    at.toggle(key="fam_pace").set_value(False).run()
    next(b for b in ok(at).button if b.label.startswith("Start")).click().run()
    soft, scratch = run_folder(lab_env, "soft-test-student"), run_folder(lab_env, "scratch-student")
    config = json.loads((soft / "config.json").read_text())
    assert (config["T"], config["alpha"], config["method"], config["epochs"]) == (7.0, pytest.approx(0.7), KD.loss, 3)
    kd_config = json.loads((run_folder(lab_env, "kd-student") / "config.json").read_text())
    assert (kd_config["T"], kd_config["alpha"], kd_config["method"]) == (6.0, 0.9, KD.loss)  # its other knob: default
    other = json.loads((scratch / "config.json").read_text())
    assert other["teacher"] is None and config["teacher"]
    assert {k: config[k] for k in ("model_options", "seed", "train_subset", "batch_size")} == \
        {k: other[k] for k in ("model_options", "seed", "train_subset", "batch_size")}
    exp = at.session_state["kdviz_experiments"][-1]
    assert list(exp.jobs) == ["scratch student", KD.label, SOFT.label]
    wait_until(at, lambda a: exp.done, timeout=120, pause=0.3)
    final = charts(ok(at.run()))
    acc = {t["name"]: values(t["y"]) for t in final["family-accuracy"]["data"]}
    np.testing.assert_allclose(acc[SOFT.label], [100 * r["test_acc"] for r in metric_lines(soft, "eval")], rtol=1e-6)
    np.testing.assert_allclose(acc["scratch student"], [100 * r["test_acc"] for r in metric_lines(scratch, "eval")],
                               rtol=1e-6)
    table = at.dataframe[0].value
    gain = 100 * (metric_lines(soft, "eval")[-1]["test_acc"] - metric_lines(scratch, "eval")[-1]["test_acc"])
    assert table.set_index("method").loc[SOFT.label, "gain over scratch"] == f"{gain:+.1f} points"
    last_step = metric_lines(soft, "step")[-1]["step"]
    assert "family-soft-test-student-0" in final and f"soft-test loss up to step {last_step}" in texts(at)


def test_no_method_chosen_disables_start(lab_env):
    at = ok(AppTest.from_string(HARNESS, default_timeout=60).run())
    wait_until(at, lambda a: "ready" in texts(a), timeout=120, pause=0.3)
    at.multiselect(key="fam_members").set_value([]).run()
    assert next(b for b in ok(at).button if b.label.startswith("Start")).disabled


def test_settings_at_their_default_follow_the_dataset(lab_env):
    from kdviz.present.distill_configs import distill_defaults

    at = ok(AppTest.from_string(HARNESS, default_timeout=60).run())
    assert at.slider(key="fam_epochs").value == distill_defaults("digits").epochs
    at.selectbox(key="kdviz_dataset").set_value("mnist").run()  # no IDX folder: a message, the settings still follow
    assert at.slider(key="fam_epochs").value == distill_defaults("mnist").epochs != distill_defaults("digits").epochs
    assert at.selectbox(key="fam_transfer").value == distill_defaults("mnist").transfer_size
    at.slider(key="fam_epochs").set_value(7).run()
    at.selectbox(key="kdviz_dataset").set_value("digits").run()
    assert at.slider(key="fam_epochs").value == 7  # changed by the user: kept
    assert at.selectbox(key="fam_transfer").value == distill_defaults("digits").transfer_size


def test_stopped_runs_continue_from_their_checkpoints(lab_env):
    at = ok(AppTest.from_string(HARNESS, default_timeout=60).run())
    wait_until(at, lambda a: "ready" in texts(a), timeout=120, pause=0.3)
    at.multiselect(key="fam_members").set_value([KD.name]).run()
    at.slider(key="fam_epochs").set_value(200).run()  # paced (the default): 30 s, stopped long before the end
    next(b for b in ok(at).button if b.label.startswith("Start")).click().run()
    exp = at.session_state["kdviz_experiments"][-1]
    wait_until(at, lambda a: all(j.status().step >= 5 for j in exp.jobs.values()), timeout=60, pause=0.3)
    at.button(key="fam-stop").click().run()
    wait_until(at, lambda a: exp.done, timeout=60, pause=0.3)
    stopped = {name: job.status().step for name, job in exp.jobs.items()}
    ok(at.run()).button(key="fam-continue").click().run()
    again = ok(at).session_state["kdviz_experiments"][-1]
    assert again is not exp and list(again.jobs) == list(exp.jobs)
    assert [str(j.path) for j in again.jobs.values()] == [str(j.path) for j in exp.jobs.values()]  # their own folders
    wait_until(at, lambda a: all(again.job(n).status().step > s for n, s in stopped.items()), timeout=60, pause=0.3)
    again.stop()
    wait_until(at, lambda a: again.done, timeout=60, pause=0.3)
