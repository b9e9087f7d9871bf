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

from _support.apptest import charts, harness, metric, ok, player_metric, player_stop, stops_player, values

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


def stop_of(spec: dict, label: str) -> tuple[dict, dict]:
    """(frame, charts by slot key) of the player's stop labelled ``label``."""
    frame = spec["frames"][spec["labels"].index(label)]
    return frame, {slot["key"]: chart for slot, chart in zip(spec["slots"], frame["charts"])}


def test_every_slider_stop_is_evaluated_for_the_browser(baseline, digits):
    """The browser-side slider gets each stop's accuracy, bars, histogram and storage, as numpy
    recomputes them, and stands at the default 0.8."""
    at = ok(app().run())
    assert at.title[0].value == "Pruning"
    label, frame, drawn = player_stop(at)
    acc, fractions = pruned_accuracy(baseline, digits, 0.8)
    assert label == "0.8" and player_metric(frame, "Test accuracy") == f"{acc:.2%}"
    assert np.allclose(values(drawn["sparsity-per-layer"]["data"][0]["y"]), [100 * f for f in fractions.values()])
    spec = stops_player(at)["spec"]
    assert spec["label"] == "Sparsity: fraction of weights removed" and len(spec["labels"]) >= 20
    assert [s["key"] for s in spec["slots"]] == ["sparsity-per-layer", "accuracy-vs-sparsity", "weight-histogram", "mask"]
    frame97, charts97 = stop_of(spec, "0.97")
    acc97, fractions97 = pruned_accuracy(baseline, digits, 0.97)
    assert player_metric(frame97, "Test accuracy") == f"{acc97:.2%}" and acc97 != acc
    assert np.allclose(values(charts97["sparsity-per-layer"]["data"][0]["y"]), [100 * f for f in fractions97.values()])
    kept_fc1 = round((1 - fractions97["fc1"]) * 64 * 300)
    assert values(charts97["weight-histogram"]["data"][0]["y"]).sum() == kept_fc1  # exactly the surviving fc1 weights
    table = dict(zip(frame97["table"]["columns"], frame97["table"]["rows"][0]))
    assert table["layer"] == "fc1" and table["kept"] == kept_fc1 and table["dense bytes"] == 4 * 64 * 300
    assert "97.0% of weights pruned" in charts97["accuracy-vs-sparsity"]["layout"]["title"]["text"]


def test_the_layer_and_scope_choices_redraw_the_stops(baseline, digits):
    at = ok(app().run())
    first = stops_player(at)["spec"]
    assert "fc1" in first["frames"][0]["charts"][3]["layout"]["title"]["text"]  # the mask of the first layer
    at.segmented_control(key="pr_layer").set_value("fc2").run()
    spec = stops_player(ok(at))["spec"]
    assert spec["id"] != first["id"] and "fc2" in spec["frames"][0]["charts"][3]["layout"]["title"]["text"]
    at.radio(key="pr_scope").set_value("global").run()
    frame, drawn = stop_of(stops_player(ok(at))["spec"], "0.8")
    model = load_trained_model(baseline.path)
    weights = [getattr(model, n).weight.detach().double().numpy().ravel() for n in ("fc1", "fc2", "fc3")]
    everything = np.abs(np.concatenate(weights))
    cut = np.sort(everything, kind="stable")[int(math.floor(0.8 * everything.size + 0.5)) - 1]  # one threshold for all
    expected = [100 * np.mean(np.abs(w) <= cut) for w in weights]
    assert np.allclose(values(drawn["sparsity-per-layer"]["data"][0]["y"]), expected, atol=0.05)
    assert len(set(np.round(expected))) > 1  # the layers really lose different shares
    most = ("fc1", "fc2", "fc3")[int(np.argmax(expected))]
    assert frame["captions"][0].startswith(f"One magnitude cut over all weights: {most} loses {max(expected):.0f}%")


def test_typed_sparsity_moves_the_slider_and_one_is_refused_with_a_message(baseline, digits):
    at = ok(app().run())
    rev = stops_player(at)["rev"]
    at.number_input(key="pr_s_exact").set_value(0.5).run()
    acc, _ = pruned_accuracy(baseline, digits, 0.5)
    label, frame, _ = player_stop(ok(at))
    assert label == "0.5" and player_metric(frame, "Test accuracy") == f"{acc:.2%}"
    assert stops_player(at)["rev"] == rev + 1  # the browser moves its slider to a value the server set
    at.number_input(key="pr_s_exact").set_value(1.0).run()
    assert any("must be in [0, 1)" in e.value and "1.0" in e.value for e in ok(at).error)
    assert player_stop(at)[0] == "0.5"  # the last valid sparsity is kept


def test_live_prune_job_fills_its_charts_and_scrubs(baseline):
    at = ok(app().run())
    at.slider(key="pr_live_epochs").set_value(2).run()
    at.slider(key="pr_live_target").set_value(0.75).run()
    next(b for b in at.button if b.label.startswith("Start")).click().run()
    job = ok(at).session_state["pr_job"]
    assert job.config.init_from == str(baseline.path)
    assert job.config.hooks == [{"name": "prune", "sparsity": 0.75, "scope": "layer", "schedule": "agp"}]  # not 0.9
    assert job.config.pace_s == 20.0  # paced to watch by default
    started = time.monotonic()
    counts, end = [], time.monotonic() + 120
    while True:
        spec = charts(ok(at.run()))
        if "live-accuracy" in spec:
            counts.append(len(values(spec["live-accuracy"]["data"][0]["x"])))
        if job.done and counts:
            break
        assert time.monotonic() < end, job.status()
        time.sleep(0.5)
    assert job.status().state == "finished" and time.monotonic() - started >= 19.5  # ~3 s of compute, spread out
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
    assert not player_stop(at)[1]["note"]
    at.number_input(key="pr_s_exact").set_value(0.9996).run()  # fc3 has 1000 weights: floor(999.6 + 0.5) = 1000
    label, frame, _ = player_stop(ok(at))
    assert label == "0.9996"  # a typed value is a stop of its own
    assert "prunes every weight" in frame["note"] and "fc3 (1,000 weights)" in frame["note"] and "fc1" not in frame["note"]


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
    assert player_stop(at)[0] == "0.5" and at.slider(key="pr_live_target").value == 0.7
    warned = " ".join(w.value for w in at.warning)
    assert "pr_scope=sideways" in warned and "not one of layer, global" in warned
    assert at.radio(key="pr_scope").value == "layer"


def test_export_code_holds_the_live_settings(baseline):
    at = ok(app().run())
    at.slider(key="pr_live_target").set_value(0.77).run()
    code = "\n".join(c.value for c in ok(at).code)
    assert "'sparsity': 0.77" in code and "'scope': 'layer'" in code and str(baseline.path) in code
    assert "pace_s=20.0" in code
    at.toggle(key="pr_pace").set_value(False).run()
    assert "pace_s" not in "\n".join(c.value for c in ok(at).code)  # as fast as it can
