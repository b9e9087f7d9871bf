"""The quantization and Deep Compression pages through AppTest, with a real (tiny) baseline and jobs.

The pages are run through a small harness that builds ``st.navigation`` the way ``app.py`` does.
Expected numbers are recomputed here independently: a plain numpy Lloyd's k-means with linear
initialisation, a numpy SVD, a torch forward pass, and byte counts of the encoded streams.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from kdviz.engine import load_trained_model
from kdviz.methods.quantize import KMEANS

from _support.apptest import charts, harness, metric, ok, values
from _support.reference import accuracy_with_weights, lloyd_linear

ROOT = Path(__file__).resolve().parents[2]
QUANT = str(ROOT / "kdviz/app/pages/quantization.py")
DEEP = str(ROOT / "kdviz/app/pages/deep_compression.py")
HARNESS = harness((QUANT, "Quantization"), (DEEP, "Deep Compression"))


def page() -> AppTest:
    """The quantization page (the first in the harness's navigation), run once."""
    return ok(AppTest.from_string(HARNESS, default_timeout=120).run())


def percent(text: str) -> float:
    return float(text.rstrip("%")) / 100


def errors(at: AppTest) -> str:
    return "\n".join(e.value for e in at.error)


def centroid_lines(spec: dict) -> np.ndarray:
    x = values(spec["data"][1]["x"])
    return np.unique(x[~np.isnan(x)])


def test_bits_slider_changes_accuracy_and_the_centroids_on_the_histogram(baseline, digits):
    at = page()
    assert at.title[0].value == "Quantization"
    shown = charts(at)
    assert {"codebook-histogram", "index-map", "codebook-table", "accuracy-vs-bits", "compression-vs-accuracy",
            "singular-spectrum"} <= set(shown)
    before_acc, before_lines = percent(metric(at, "Test accuracy")), centroid_lines(shown["codebook-histogram"])
    assert len(before_lines) <= 8  # 3 bits by default
    at.slider(key="qz_bits_slider").set_value(2).run()
    ok(at)
    after_acc, after_lines = percent(metric(at, "Test accuracy")), centroid_lines(charts(at)["codebook-histogram"])
    assert not errors(at)
    model = load_trained_model(baseline.path)
    expected, weights = {}, {}
    for name in ("fc1", "fc2", "fc3"):
        expected[name], weights[name] = lloyd_linear(getattr(model, name).weight.detach().numpy(), 4)
    assert after_lines.size == expected["fc1"].size <= 4 and before_lines.size > after_lines.size
    assert np.allclose(after_lines, expected["fc1"], atol=1e-5)
    assert after_acc != before_acc
    assert abs(after_acc - accuracy_with_weights(model, digits, weights)) < 1 / len(digits.test_labels) + 1e-4
    assert float(metric(at, "Compression (weights)").rstrip("x")) > 14  # 2-bit indices + a float per centroid


def test_rank_slider_moves_the_spectrum_marker_and_changes_accuracy(baseline, digits):
    at = page()
    default = charts(at)["singular-spectrum"]["layout"]["shapes"][0]["x0"]
    acc_default = percent([m.value for m in at.metric if m.label == "Test accuracy"][1])
    at.slider(key="qz_rank_slider").set_value(3).run()
    spec = charts(ok(at))["singular-spectrum"]
    assert spec["layout"]["shapes"][0]["x0"] == 3 != default
    model = load_trained_model(baseline.path)
    W = model.fc1.weight.detach().double().numpy()
    U, S, Vt = np.linalg.svd(W, full_matrices=False)
    assert np.allclose(np.sort(values(spec["data"][0]["y"]))[::-1], S[:3], rtol=1e-5)
    acc = percent([m.value for m in at.metric if m.label == "Test accuracy"][1])
    assert acc != acc_default
    assert abs(acc - accuracy_with_weights(model, digits, {"fc1": (U[:, :3] * S[:3]) @ Vt[:3]})) < 1 / len(digits.test_labels) + 1e-4
    energy = float(metric(at, "Energy kept").rstrip("%")) / 100
    assert abs(energy - (S[:3] ** 2).sum() / (S**2).sum()) < 5e-4


def test_bad_bits_and_rank_give_a_clear_message(baseline):
    at = page()
    for bad in (0, 17):
        at.number_input(key="qz_bits_exact").set_value(bad).run()
        assert f"bits must be in 1..16, got {bad}" in errors(ok(at))
    at.number_input(key="qz_rank_exact").set_value(500).run()
    assert "rank must be in 1..64 for a 300 x 64 weight matrix, got 500" in errors(ok(at))
    at.segmented_control(key="qz_method").set_value("uniform").run()
    at.slider(key="qz_bits_slider").set_value(1).run()
    assert "symmetric uniform quantization needs at least 2 bits" in errors(ok(at))
    at.slider(key="qz_bits_slider").set_value(4).run()
    assert "needs at least 2 bits" not in errors(ok(at)) and "codebook-histogram" in charts(at)


def test_the_method_menu_is_the_quantizer_registry(baseline):
    """Each quantizer of ``quant.explore.KINDS`` is on the menu and shows its own options; a fixed-width
    one (binary) disables the bits slider."""
    from kdviz.quant.explore import KINDS

    at = page()
    assert list(at.segmented_control(key="qz_method").options) == [k.title for k in KINDS.values()]
    radios = {"init": "qz_init", "per_channel": "qz_granularity", "symmetric": "qz_scheme", "binarizer": "qz_binarizer",
              "subvector": "qz_subvector"}
    for kind in KINDS.values():
        at.segmented_control(key="qz_method").set_value(kind.name).run()
        shown = {r.key for r in ok(at).radio if r.key in radios.values()}
        assert shown == {radios[o] for o in kind.options}, kind.name
        assert at.slider(key="qz_bits_slider").disabled == (kind.fixed_bits is not None)
        assert kind.note in [c.value for c in at.caption] and not errors(at)


def test_live_fine_tuning_gains_points_and_moves_the_centroids(baseline):
    at = page()
    at.slider(key="qz_live_epochs").set_value(2).run()
    at.slider(key="qz_live_bits").set_value(3).run()  # not the page's default 2 (nor the hook's 5)
    next(b for b in at.button if b.label.startswith("Start fine-tuning")).click().run()
    job = ok(at).session_state["qz_job"]
    assert job.config.hooks == [{"name": "kmeans", "bits": 3, "init": "linear"}]
    assert job.config.init_from == str(baseline.path)
    counts, end = [], time.monotonic() + 90
    while True:
        spec = charts(ok(at)).get("live-accuracy")
        if spec is not None:
            counts.append(len(values(spec["data"][0]["x"])))
        if job.done and spec is not None:
            break
        assert time.monotonic() < end, job.status()
        time.sleep(0.5)
        at.run()
    final = charts(ok(at.run()))
    assert not errors(at)
    evals = job.store.metrics("eval")
    assert len(values(final["live-accuracy"]["data"][0]["y"])) == len(evals) >= 3
    assert counts[-1] > counts[0] or len(counts) == 1
    snap = job.store.latest_snapshot().arrays
    assert list(KMEANS.read_snapshot(snap, job.config).bits) == [3, 3, 3]
    solid = values(final["live-codebook"]["data"][2]["x"])
    assert np.unique(solid[~np.isnan(solid)]).size <= 8
    assert np.allclose(np.unique(solid[~np.isnan(solid)]), np.sort(snap["kmeans/centroids/fc1"]), atol=1e-6)
    assert not np.allclose(snap["kmeans/centroids/fc1"], snap["kmeans/centroids_initial/fc1"])
    frames = final["live-codebook"].get("frames", [])  # finished: the codebook replays in the browser
    assert len(frames) >= 2 and final["live-codebook"]["layout"]["updatemenus"][0]["buttons"][0]["label"] == "▶ Play"
    first, last = (values(f["data"][2]["x"]) for f in (frames[0], frames[-1]))
    assert np.allclose(np.unique(last[~np.isnan(last)]), np.sort(snap["kmeans/centroids/fc1"]), atol=1e-6)
    assert not np.allclose(np.unique(first[~np.isnan(first)]), np.unique(last[~np.isnan(last)]))


def test_export_code_holds_the_live_settings(baseline):
    at = page()
    at.slider(key="qz_live_bits").set_value(4).run()
    code = "\n".join(c.value for c in ok(at).code)
    assert "'name': 'kmeans', 'bits': 4" in code and str(baseline.path) in code
