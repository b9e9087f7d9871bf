"""The pruning page through AppTest: the slider, bad input, the live prune-and-fine-tune job,
sensitivity analysis and structured pruning, with a real (tiny) baseline.

Expected numbers are recomputed here with numpy (a stable sort of |w| per layer, the model run with
those weights zeroed, norms of rows), never read back from the code under test.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from streamlit.testing.v1 import AppTest

from kdviz.engine import load_checkpoint, load_trained_model
from kdviz.methods.prune import PRUNE

from _support.apptest import charts, harness, metric, ok, values

PAGE = Path(__file__).resolve().parents[2] / "kdviz" / "app" / "pages" / "pruning.py"
HARNESS = harness((PAGE, "Pruning"))


def app() -> AppTest:
    return AppTest.from_string(HARNESS, default_timeout=120)


def pruned_accuracy(job, data, sparsity: float, only: str | None = None) -> tuple[float, dict[str, float]]:
    """Accuracy with the smallest floor(s*n + 0.5) |w| of each layer (or of layer ``only``) zeroed
    (numpy stable sort)."""
    model = load_trained_model(job.path).eval()
    fractions = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".weight") and only in (None, name[: -len(".weight")]):
                w = p.numpy().copy().ravel()
                k = int(math.floor(sparsity * w.size + 0.5))
                w[np.argsort(np.abs(w.astype(np.float64)), kind="stable")[:k]] = 0.0
                p.copy_(torch.from_numpy(w.reshape(p.shape)))
                fractions[name[: -len(".weight")]] = k / w.size
        acc = float((model(data.test_images).argmax(1) == data.test_labels).double().mean())
    return acc, fractions


def test_slider_re_evaluates_accuracy_and_bars(baseline, digits):
    at = ok(app().run())
    assert at.title[0].value == "Pruning"
    acc, fractions = pruned_accuracy(baseline, digits, 0.8)
    assert metric(at, "Test accuracy") == f"{acc:.2%}"
    before = charts(at)
    assert np.allclose(values(before["sparsity-per-layer"]["data"][0]["y"]), [100 * f for f in fractions.values()])
    at.slider(key="pr_s_slider").set_value(0.97).run()
    acc97, fractions97 = pruned_accuracy(baseline, digits, 0.97)
    after = charts(ok(at))
    assert metric(at, "Test accuracy") == f"{acc97:.2%}" and acc97 != acc
    assert np.allclose(values(after["sparsity-per-layer"]["data"][0]["y"]), [100 * f for f in fractions97.values()])
    hist = after["weight-histogram"]["data"][0]
    kept_fc1 = round((1 - fractions97["fc1"]) * 64 * 300)
    assert values(hist["y"]).sum() == kept_fc1  # the histogram counts exactly the surviving fc1 weights
    table = at.dataframe[0].value
    assert table.iloc[0]["kept"] == kept_fc1 and table.iloc[0]["dense bytes"] == 4 * 64 * 300


def test_typed_sparsity_of_one_is_refused_with_a_message(baseline, digits):
    at = ok(app().run())
    at.number_input(key="pr_s_exact").set_value(0.5).run()
    acc, _ = pruned_accuracy(baseline, digits, 0.5)
    assert metric(ok(at), "Test accuracy") == f"{acc:.2%}" and at.slider(key="pr_s_slider").value == 0.5
    at.number_input(key="pr_s_exact").set_value(1.0).run()
    assert any("must be in [0, 1)" in e.value and "1.0" in e.value for e in ok(at).error)
    assert metric(at, "Test accuracy") == f"{acc:.2%}"  # the last valid sparsity is kept


def test_live_prune_job_fills_its_charts_and_scrubs(baseline):
    at = ok(app().run())
    at.slider(key="pr_live_epochs").set_value(2).run()
    at.slider(key="pr_live_target").set_value(0.75).run()
    next(b for b in at.button if b.label.startswith("Start")).click().run()
    job = ok(at).session_state["pr_job"]
    assert job.config.init_from == str(baseline.path)
    assert job.config.hooks == [{"name": "prune", "sparsity": 0.75, "scope": "layer", "schedule": "agp"}]  # not 0.9
    counts, end = [], time.monotonic() + 120
    while True:
        spec = charts(ok(at.run()))
        if "live-accuracy" in spec:
            counts.append(len(values(spec["live-accuracy"]["data"][0]["x"])))
        if job.done and counts:
            break
        assert time.monotonic() < end, job.status()
        time.sleep(0.5)
    assert job.status().state == "finished"
    spec = charts(ok(at.run()))
    for chart in ("live-mask", "live-histogram"):  # finished and following: replays played in the browser
        frames = spec[chart].get("frames", [])
        assert len(frames) >= 2 and spec[chart]["layout"]["updatemenus"][0]["buttons"][0]["label"] == "▶ Play"
    titles = [f["layout"]["title"]["text"] for f in spec["live-mask"]["frames"]]
    assert "100.0% of weights kept at step 0" in titles[0] and titles[0] != titles[-1]
    final = len(values(spec["live-accuracy"]["data"][0]["x"]))
    # the chart only grows while the job runs (on a loaded machine the job may end before the first draw)
    assert counts == sorted(counts) and final >= counts[-1]
    assert final == len([r for r in job.store.metrics() if r.get("kind") == "eval"])
    masks = load_checkpoint(job.path / "checkpoints" / "last.pt")["hooks"]["prune"]
    expected = [100 * (1 - float(masks[f"mask/{n}.weight"].double().mean())) for n in ("fc1", "fc2", "fc3")]
    assert np.allclose(values(spec["live-sparsity"]["data"][0]["y"]), expected)
    assert np.allclose(expected, [100 * math.floor(0.75 * n + 0.5) / n for n in (64 * 300, 300 * 100, 100 * 10)])
    final = PRUNE.read_snapshot(job.store.latest_snapshot().arrays, job.config)
    assert np.allclose(final.target, 0.75)  # the schedule's target reached the sparsity asked for
    assert np.allclose(values(spec["live-sparsity"]["data"][1]["y"]), 75.0)  # drawn as the target ticks
    assert at.slider(key="pr_scrub").disabled and at.slider(key="pr_scrub").value == job.status().total_steps
    at.toggle(key="pr_follow").set_value(False).run()
    assert not ok(at).slider(key="pr_scrub").disabled
    at.slider(key="pr_scrub").set_value(0).run()  # back to the start: nothing pruned yet
    spec = charts(ok(at))
    assert "100.0% of weights kept at step 0" in spec["live-mask"]["layout"]["title"]["text"]
    assert np.allclose(values(spec["live-sparsity"]["data"][0]["y"]), 0.0)


def test_sensitivity_and_unit_norms(baseline, digits):
    at = ok(app().run())
    w = load_trained_model(baseline.path).fc1.weight.detach().double().numpy()
    bars = charts(at)["unit-norms"]["data"][0]
    assert np.allclose(values(bars["y"]), np.sort(np.abs(w).sum(1))[::-1])  # L1 norm of each neuron, ranked
    assert metric(at, "Parameters") == f"{64 * 150 + 150 + 150 * 100 + 100 + 100 * 10 + 10:,}"  # half of fc1 gone
    at.button(key="pr-sens").click().run()
    lines = charts(ok(at))["sensitivity"]["data"]
    assert [t["name"] for t in lines] == ["fc1", "fc2", "fc3"]
    dense, _ = pruned_accuracy(baseline, digits, 0.0)
    assert all(np.isclose(values(t["y"])[0], 100 * dense) for t in lines)  # sparsity 0: the dense model
    fc3 = lines[2]
    i = int(np.flatnonzero(np.isclose(values(fc3["x"]), 80.0))[0])
    assert np.isclose(values(fc3["y"])[i], 100 * pruned_accuracy(baseline, digits, 0.8, only="fc3")[0])


def test_a_sparsity_that_empties_a_layer_is_warned_about(baseline):
    at = ok(app().run())
    assert not any("prunes every weight" in w.value for w in at.warning)
    at.number_input(key="pr_s_exact").set_value(0.9996).run()  # fc3 has 1000 weights: floor(999.6 + 0.5) = 1000
    warned = [w.value for w in ok(at).warning if "prunes every weight" in w.value]
    assert warned and "fc3 (1,000 weights)" in warned[0] and "fc1" not in warned[0]


def test_the_sensitivity_button_goes_once_the_results_show(baseline, tmp_path):
    from kdviz.app.pruning_view import _load_baseline

    _load_baseline.clear()  # a fresh baseline model: no sensitivity computed by an earlier test
    other = tmp_path / "other.py"
    other.write_text("import streamlit as st\nst.title('Another page')\n")
    at = ok(AppTest.from_string(harness((PAGE, "Pruning"), (other, "Other")), default_timeout=120).run())
    assert "sensitivity" not in charts(at)
    at.button(key="pr-sens").click().run()
    assert "sensitivity" in charts(ok(at))
    assert not [b for b in at.button if b.key == "pr-sens"]  # gone in the very run that drew the results
    at.switch_page(str(other)).run()
    assert ok(at).title[0].value == "Another page"
    at.switch_page(str(PAGE)).run()  # kept with the model: shown again after navigation, still no button
    assert "sensitivity" in charts(ok(at)) and not [b for b in at.button if b.key == "pr-sens"]


def test_settings_come_from_the_link_and_a_bad_value_is_named(baseline):
    at = app()
    at.query_params.update({"pr_sparsity": "0.5", "pr_live_target": "0.7", "pr_scope": "sideways"})
    ok(at.run())
    assert at.slider(key="pr_s_slider").value == 0.5 and at.slider(key="pr_live_target").value == 0.7
    warned = " ".join(w.value for w in at.warning)
    assert "pr_scope=sideways" in warned and "not one of layer, global" in warned
    assert at.radio(key="pr_scope").value == "layer"


def test_export_code_holds_the_live_settings(baseline):
    at = ok(app().run())
    at.slider(key="pr_live_target").set_value(0.77).run()
    code = "\n".join(c.value for c in ok(at).code)
    assert "'sparsity': 0.77" in code and "'scope': 'layer'" in code and str(baseline.path) in code
