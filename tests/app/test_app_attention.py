"""The attention-transfer page through AppTest, with real (tiny) runs: a ResNet-20 teacher trained for
one epoch, then an AT student beside a scratch student.

The page runs through a small harness (``st.navigation`` with this one page, the shared sidebar), as
``app.py`` runs it. Expected values are read back independently from the run folders (the snapshot
``.npz`` files and ``metrics.jsonl``), and the teacher's maps are recomputed from its checkpoint.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from streamlit.testing.v1 import AppTest

from kdviz.data import load_dataset
from kdviz.engine import load_trained_model

from _support.apptest import charts, harness, ok, texts, values, wait_until
from _support.run_files import metric_lines, run_folder, snapshot_array

PAGE = Path(__file__).resolve().parents[2] / "kdviz" / "app" / "pages" / "attention.py"
HARNESS = harness((PAGE, "Attention transfer"))
TEACHER_EPOCHS = 1  # the lab_env fixture's teacher: a ResNet-20 trained for one epoch
TEACHER_WAIT = dict(timeout=120, pause=0.3)  # the teacher trains in the background (1 epoch)


def test_the_page_is_in_the_navigation_from_the_spec():
    from kdviz.app.navigation import lab_pages

    pages = {p.title: p for p in lab_pages()}
    assert Path(pages["Attention transfer"].path) == PAGE and pages["Attention transfer"].icon == ":material/visibility:"


def test_start_trains_both_students_and_the_live_maps_change(lab_env):
    at = ok(AppTest.from_string(HARNESS, default_timeout=60).run())
    assert at.title[0].value.startswith("Attention transfer") and "Press **Start**" in texts(at)
    wait_until(at, lambda a: "ready" in texts(a), **TEACHER_WAIT)
    at.slider(key="at_epochs").set_value(8).run()
    at.number_input(key="at_beta").set_value(4.0).run()
    next(b for b in ok(at).button if b.label.startswith("Start")).click().run()
    student, scratch = run_folder(lab_env, "at-student"), run_folder(lab_env, "at-scratch-student")
    config = json.loads((student / "config.json").read_text())
    assert config["hooks"] == [{"name": "attention", "pairs": "auto", "beta": 4.0}]
    assert config["model_options"]["channels"] == [4, 8, 16] and json.loads((scratch / "config.json").read_text())["hooks"] == []
    drawn: dict[int, np.ndarray] = {}

    def sample(a) -> bool:  # no clicks from here on: the page is only rerun, as its timer does
        c = charts(a)
        if "at-maps" in c:
            step = int(next(cap.value for cap in a.caption if cap.value.startswith("Step ")).split()[1].rstrip("."))
            drawn.setdefault(step, values(c["at-maps"]["data"][2]["z"]))
        return "finished" in texts(a) and texts(a).count("finished") >= 2

    wait_until(at, sample, timeout=240, pause=0.05)
    assert len(drawn) >= 2 and not np.allclose(drawn[min(drawn)], drawn[max(drawn)]), "the student's map never changed"
    for step, z in drawn.items():  # each drawn map is the student's map of image #0, first pair, at that step
        np.testing.assert_allclose(z, snapshot_array(student, step, "attention/student_0")[0], rtol=1e-6)
    final = charts(ok(at.run()))
    assert len(final["at-maps"].get("frames", [])) >= 2  # finished: the maps replay in the browser (▶, scrubber)
    assert "'beta': 4.0" in "\n".join(c.value for c in at.code)  # the Export popover's code for these settings
    evals = metric_lines(student, "eval")
    curve = {t["name"]: values(t["y"]) for t in final["at-distance"]["data"]}
    np.testing.assert_allclose(curve["stage3_out"], [r["attention/probe_loss/stage3_out"] for r in evals], rtol=1e-6)
    assert curve["stage3_out"][-1] < curve["stage3_out"][0]
    accuracy = {t["name"]: values(t["y"]) for t in final["at-accuracy"]["data"]}
    assert set(accuracy) == {"AT student", "scratch student"}
    np.testing.assert_allclose(accuracy["AT student"], [100 * r["test_acc"] for r in evals], rtol=1e-6)
    # another pair and image: the teacher's panel is its own map, recomputed from its checkpoint
    at.segmented_control(key="at_pair").set_value("stage2_out").run()
    at.segmented_control(key="at_image").set_value(1).run()
    teacher = load_trained_model(config["teacher"]).eval()
    with torch.no_grad():
        f = teacher.forward_with_features(load_dataset("digits").test_images[:2])[1]["stage2_out"][1].numpy()
    q = (f ** 2).sum(axis=0)
    z = values(charts(ok(at))["at-maps"]["data"][1]["z"])
    np.testing.assert_allclose(z, q / np.sqrt((q ** 2).sum()), rtol=1e-4, atol=1e-7)
    assert "stage2_out" in charts(at)["at-maps"]["layout"]["title"]["text"]


def test_start_waits_for_the_teacher(monkeypatch, tmp_path):
    monkeypatch.setenv("KDVIZ_RUNS", str(tmp_path))  # a fresh runs folder: the teacher must train first
    at = ok(AppTest.from_string(HARNESS, default_timeout=60).run())
    start = next(b for b in at.button if b.label.startswith("Start"))
    assert start.disabled and "ready" not in texts(at)
    wait_until(at, lambda a: "ready" in texts(a), **TEACHER_WAIT)
    assert not next(b for b in at.button if b.label.startswith("Start")).disabled
