"""The Transformers page through AppTest, with real (tiny) runs: the ViT teacher preset trained for one
epoch in the background, then a distilled ViT student beside the same student alone; the live maps
are compared with the snapshot files and must change while the students train, with no click."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import kdviz.methods.vit_distill  # noqa: F401  (registers the method and its page until kdviz.methods imports it)

from _support.apptest import charts, harness, ok, texts, values, wait_until
from _support.run_files import metric_lines, run_folder, snapshot_array

PAGE = Path(__file__).resolve().parents[2] / "kdviz" / "app" / "pages" / "transformers.py"
HARNESS = harness((PAGE, "Transformers"))
TEACHER_EPOCHS = 1


@pytest.fixture(autouse=True)
def unpaced(monkeypatch):
    monkeypatch.setenv("KDVIZ_VIT_DISTILL_PACE_S", "0")


def test_the_page_comes_from_the_methods_spec():
    from kdviz.app.navigation import lab_pages

    pages = {p.title: p for p in lab_pages()}
    assert Path(pages["Transformers"].path) == PAGE


@pytest.mark.slow  # a 1-epoch ViT teacher, then two students of 15 steps each with a snapshot per step
def test_start_trains_both_students_and_the_live_attention_maps_change(lab_env):
    at = ok(AppTest.from_string(HARNESS, default_timeout=60).run())
    assert at.title[0].value.startswith("Transformers") and "Press **Start**" in texts(at)
    assert [t.label for t in at.tabs] == ["Distil", "Prune and quantize"]
    wait_until(at, lambda a: "ready" in texts(a), timeout=180, pause=0.3)
    at.slider(key="vit_epochs").set_value(3).run()
    at.number_input(key="vit_w_att").set_value(2.5).run()
    at.selectbox(key="vit_mapping").set_value("last").run()
    next(b for b in ok(at).button if b.label.startswith("Start distilled")).click().run()
    student, alone = run_folder(lab_env, "vit-student-digits-distilled"), run_folder(lab_env, "vit-student-digits-alone")
    config = json.loads((student / "config.json").read_text())
    hook = config["hooks"][0]
    assert hook["name"] == "vit_distill" and hook["attention_weight"] == 2.5 and hook["layer_mapping"] == "last"
    assert json.loads((alone / "config.json").read_text())["hooks"] == []
    drawn: dict[int, np.ndarray] = {}

    def sample(a) -> bool:  # no clicks from here on: the page is only rerun, as its timer does
        c = charts(a)
        if "vit-student-maps" in c:
            step = int(next(cap.value for cap in a.caption if cap.value.startswith("Step ")).split()[1].rstrip(":."))
            drawn.setdefault(step, values(c["vit-student-maps"]["data"][3]["z"]))  # layer 2, head 2
        return texts(a).count("finished") >= 2  # both students

    wait_until(at, sample, timeout=240, pause=0.05)
    assert len(drawn) >= 2 and not np.allclose(drawn[min(drawn)], drawn[max(drawn)]), "the student's maps never changed"
    for step, z in drawn.items():
        np.testing.assert_allclose(z, snapshot_array(student, step, "vit_distill/student_1")[1, 0, 1:].reshape(4, 4),
                                   rtol=1e-6)
    final = charts(ok(at.run()))
    assert len(final["vit-student-maps"].get("frames", [])) >= 2  # finished: the maps replay in the browser
    steps = metric_lines(student, "step")
    losses = {t["name"]: values(t["y"]) for t in final["vit-losses"]["data"]}
    np.testing.assert_allclose(losses["attention (eq. 7)"], [r["vit_distill/attention"] for r in steps], rtol=1e-6)
    assert "embedding (eq. 9)" not in losses  # weight 0 by default: off
    accuracy = {t["name"]: values(t["y"]) for t in final["vit-accuracy"]["data"]}
    np.testing.assert_allclose(accuracy["TinyBERT student"], [100 * r["test_acc"] for r in metric_lines(student, "eval")],
                               rtol=1e-6)
    assert "scratch student" in accuracy
    # one head's whole matrix: student layer 2 head 2 beside the mean of teacher layer 4's heads 3 and 4 ("last")
    at.selectbox(key="vit_head").set_value(1).run()
    matrix = charts(ok(at))["vit-matrix"]
    last_step = max(int(s) for s in [r["step"] for r in metric_lines(student, "eval")])
    teacher = snapshot_array(student, last_step, "vit_distill/teacher_3")[2:4].mean(axis=0)
    np.testing.assert_allclose(values(matrix["data"][0]["z"]), teacher, rtol=1e-5)
    np.testing.assert_allclose(values(matrix["data"][1]["z"]), snapshot_array(student, last_step, "vit_distill/student_1")[1],
                               rtol=1e-6)
    assert "teacher layer 4 heads 3, 4" in matrix["layout"]["title"]["text"]


def test_bad_link_settings_are_named(lab_env):
    at = AppTest.from_string(HARNESS, default_timeout=60)
    at.query_params["vit_mapping"] = "middle"
    ok(at.run())
    warned = " ".join(w.value for w in at.warning)
    assert "vit_mapping=middle" in warned and "'middle' is not one of uniform, top, bottom, last" in warned
    assert at.selectbox(key="vit_mapping").value == "uniform"  # the default is kept
