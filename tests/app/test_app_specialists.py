"""The Specialists page through AppTest, with a real (tiny) pipeline on digits: non-default settings
reach the run folders, the specialists start from the generalist's folder with its subsets, the charts
and the caption follow the measured result; a generalist folder outside the allowed roots is refused.

Expected values are read back from the run folders (config.json, metrics.jsonl), never from the page.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from _support.apptest import charts, harness, ok, texts, values, wait_until
from _support.run_files import metric_lines

PAGE = Path(__file__).resolve().parents[2] / "kdviz" / "app" / "pages" / "specialists.py"
HARNESS = harness((PAGE, "Specialists"))
TEACHER_EPOCHS = 1


def test_pipeline_with_chosen_settings_runs_and_its_charts_follow(lab_env):
    at = ok(AppTest.from_string(HARNESS, default_timeout=60).run())
    assert "press **Start**" in texts(at).replace("Press", "press")
    at.selectbox(key="spec_hidden").set_value(32).run()
    at.slider(key="spec_clusters").set_value(6).run()
    at.slider(key="spec_count").set_value(2).run()
    at.slider(key="spec_epochs").set_value(8).run()
    at.slider(key="spec_spec_epochs").set_value(2).run()
    at.slider(key="spec_enrich").set_value(0.7).run()
    at.number_input(key="spec_held_out").set_value(200).run()
    next(b for b in ok(at).button if b.label == "Start").click().run()
    exp = ok(at).session_state["kdviz_experiments"][-1]
    wait_until(at, lambda a: exp.done and exp.result() is not None, timeout=120, pause=0.3)
    final = charts(ok(at.run()))
    g_path = Path(exp.job("generalist").path)
    g_config = json.loads((g_path / "config.json").read_text())
    assert g_config["model_options"] == {"hidden": [32]} and g_config["epochs"] == 8
    assert g_config["train_subset"] == 1347 - 200
    subsets = exp.analysis().subsets
    assert subsets
    for i, subset in enumerate(subsets):
        saved = json.loads((Path(exp.job(f"specialist {i + 1}").path) / "config.json").read_text())
        assert Path(saved["init_from"]) == g_path and saved["epochs"] == 2
        assert saved["hooks"][0]["classes"] == list(subset) and saved["hooks"][0]["enriched_fraction"] == 0.7
    curves = {t["name"]: values(t["y"]) for t in final["spec-accuracy"]["data"]}
    np.testing.assert_allclose(curves["generalist"], [100 * r["test_acc"] for r in metric_lines(g_path, "eval")], rtol=1e-6)
    s1 = Path(exp.job("specialist 1").path)
    key = next(k for k in curves if k.startswith("specialist 1"))
    np.testing.assert_allclose(curves[key], [100 * r["specialist/subset_acc"] for r in metric_lines(s1, "eval")], rtol=1e-6)
    assert "spec-subsets" in final and "spec-gain" in final
    result = exp.result()
    assert f"{100 * result.combined_acc:.1f} %" in texts(at) and f"{100 * result.generalist_acc:.1f} %" in texts(at)


def test_a_generalist_folder_outside_the_allowed_roots_is_refused(lab_env):
    at = ok(AppTest.from_string(HARNESS, default_timeout=60).run())
    at.text_input(key="spec_reuse").set_value("/etc").run()
    before = len(at.session_state["kdviz_experiments"]) if "kdviz_experiments" in at.session_state else 0
    next(b for b in ok(at).button if b.label == "Start").click().run()
    assert "generalist run folder" in texts(at)
    after = len(at.session_state["kdviz_experiments"]) if "kdviz_experiments" in at.session_state else 0
    assert after == before
