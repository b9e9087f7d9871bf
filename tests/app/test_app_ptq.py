"""The Post-training quantization page through AppTest, on a real (tiny) baseline run.

The page is run by its file path (it joins the navigation through ``SHARED_PAGES``). Its charts are
checked against a ``PTQEvaluator`` built here on the same run, and the worst layer it names against
the largest drop on its own bars.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from kdviz.data import load_dataset
from kdviz.engine import load_trained_model
from kdviz.quant.layer_noise import PTQEvaluator
from kdviz.quant.ranges import RangeSpec

from _support.apptest import charts, harness, ok, texts, values, wait_until

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "kdviz/app/pages/ptq.py")
HARNESS = harness((PAGE, "Post-training quantization"))


def ready(at: AppTest) -> AppTest:
    return wait_until(at, lambda at: "layer-noise" in charts(at), timeout=120)


def test_page_names_the_worst_layer_and_moves_with_the_controls(baseline):
    at = ok(AppTest.from_string(HARNESS, default_timeout=120).run())
    assert at.title[0].value == "Post-training quantization"
    ready(at)
    assert {"layer-noise", "chosen-bits", "accuracy-vs-size", "ranges"} <= set(charts(at))
    at.slider(key="ptq_bits").set_value(2)
    at.segmented_control(key="ptq_method").set_value("minmax")
    at.selectbox(key="ptq_act_bits").set_value("float")
    ok(at.run())
    ready(at)
    noise = charts(at)["layer-noise"]
    layers = list(noise["data"][0]["x"])
    sqnr, drops = values(noise["data"][0]["y"]), values(noise["data"][1]["y"])
    data = load_dataset("digits")
    ev = PTQEvaluator(load_trained_model(baseline.path), data.test_images, data.test_labels, data.train_images[:256])
    spec = RangeSpec("minmax", act_bits=None)
    expected = [ev.layer_noise(name, 2, spec) for name in layers]
    assert layers == ["fc1", "fc2", "fc3"]
    assert np.allclose(sqnr, [n.sqnr_db for n in expected], atol=1e-6)
    assert np.allclose(drops, [100 * n.drop for n in expected], atol=1e-9)
    worst = layers[int(np.argmax(drops))]
    assert f"{worst} breaks accuracy first at 2 bits" in noise["layout"]["title"]["text"]
    if max(drops) > 0:
        assert f"**{worst}** breaks accuracy first" in texts(at)


def test_uniform_bits_control_sets_the_equal_size_comparison(baseline):
    at = ok(AppTest.from_string(HARNESS, default_timeout=120).run())
    ready(at)
    at.slider(key="ptq_uniform_bits").set_value(4)
    ok(at.run())
    ready(at)
    chosen = charts(at)["chosen-bits"]
    assert any("uniform 4 bits" in a.get("text", "") for a in chosen["layout"]["annotations"])
    assert "At the size of uniform 4 bits" in texts(at)


def test_a_slow_study_is_computed_in_the_background(baseline, monkeypatch):
    """With no time to wait, the page says it is computing, then draws once the worker is done."""
    monkeypatch.setenv("KDVIZ_PTQ_WAIT_S", "0")
    at = ok(AppTest.from_string(HARNESS, default_timeout=120).run())
    at.toggle(key="ptq_per_channel").set_value(True)
    at.segmented_control(key="ptq_method").set_value("percentile")
    ok(at.run())
    assert "in the background" in texts(at) and "layer-noise" not in charts(at)
    ready(at)
    assert "in the background" not in texts(at)


def test_a_finished_run_from_the_runs_folder_can_be_picked(baseline):
    at = ok(AppTest.from_string(HARNESS, default_timeout=120).run())
    at.radio(key="ptq_source").set_value("a finished run")
    ok(at.run())
    options = at.selectbox(key="ptq_run").options
    assert any(Path(baseline.path).name in o for o in options)
    ready(at)
    assert "Float32 test accuracy of this run" in texts(at)
