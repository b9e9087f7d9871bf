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

from _support.apptest import charts, harness, ok, player_metric, player_stop, stops_player, values
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


def bits_player(at: AppTest) -> dict:
    return stops_player(at, "qz_bits_player")


def rank_player(at: AppTest) -> dict:
    return stops_player(at, "qz_rank_player")


def stop_of(spec: dict, label: str) -> tuple[dict, dict]:
    """(the frame, the charts by slot key) of the stop labelled ``label``."""
    frame = spec["frames"][spec["labels"].index(label)]
    return frame, {slot["key"]: chart for slot, chart in zip(spec["slots"], frame["charts"])}


def fc1_svd(model):
    return np.linalg.svd(model.fc1.weight.detach().double().numpy(), full_matrices=False)


def test_every_bit_width_is_evaluated_for_the_browser(baseline, digits):
    """The bits player gets each width's accuracy, compression and fc1 centroids, as numpy recomputes
    them, and stands at the default 3 bits."""
    at = page()
    assert at.title[0].value == "Quantization"
    assert {"accuracy-vs-bits", "compression-vs-accuracy"} <= set(charts(at))
    label, frame3, drawn3 = player_stop(at, "qz_bits_player")
    spec = bits_player(at)["spec"]
    assert label == "3" and spec["label"] == "Bits per weight" and spec["labels"] == [str(b) for b in range(1, 9)]
    assert [s["key"] for s in spec["slots"]] == ["codebook-histogram", "index-map", "codebook-table"]
    frame2, drawn2 = stop_of(spec, "2")
    model = load_trained_model(baseline.path)
    expected, weights = {}, {}
    for name in ("fc1", "fc2", "fc3"):
        expected[name], weights[name] = lloyd_linear(getattr(model, name).weight.detach().numpy(), 4)
    lines2, lines3 = centroid_lines(drawn2["codebook-histogram"]), centroid_lines(drawn3["codebook-histogram"])
    assert lines2.size == expected["fc1"].size <= 4 < lines3.size <= 8
    assert np.allclose(lines2, expected["fc1"], atol=1e-5)
    acc2 = percent(player_metric(frame2, "Test accuracy"))
    assert acc2 != percent(player_metric(frame3, "Test accuracy"))
    assert abs(acc2 - accuracy_with_weights(model, digits, weights)) < 1 / len(digits.test_labels) + 1e-4
    assert float(player_metric(frame2, "Compression (weights)").rstrip("x")) > 14  # 2-bit indices + a float per centroid
    assert player_metric(frame2, "Weights in 3 layers") == f"{sum(w.size for w in weights.values()):,}"
    table = drawn2["codebook-table"]["data"][0]["cells"]["values"]
    assert len(table[0]) == lines2.size  # one row per shared value of fc1
    assert not errors(at)


def test_rank_stops_hold_the_spectrum_accuracy_and_energy(baseline, digits):
    at = page()
    label, frame, drawn = player_stop(at, "qz_rank_player")
    spec = rank_player(at)["spec"]
    assert label == "16" and spec["label"] == "Rank r of fc1"  # fc1 of the digits MLP: 64 x 300, max rank 64
    ranks = [int(r) for r in spec["labels"]]
    assert ranks[0] == 1 and ranks[-1] == 64 and 16 in ranks and 18 <= len(ranks) <= 24
    assert drawn["singular-spectrum"]["layout"]["shapes"][0]["x0"] == 16
    frame3, drawn3 = stop_of(spec, "3")
    assert drawn3["singular-spectrum"]["layout"]["shapes"][0]["x0"] == 3
    model = load_trained_model(baseline.path)
    U, S, Vt = fc1_svd(model)
    assert np.allclose(np.sort(values(drawn3["singular-spectrum"]["data"][0]["y"]))[::-1], S[:3], rtol=1e-5)
    acc = percent(player_metric(frame3, "Test accuracy"))
    assert acc != percent(player_metric(frame, "Test accuracy"))
    assert abs(acc - accuracy_with_weights(model, digits, {"fc1": (U[:, :3] * S[:3]) @ Vt[:3]})) < 1 / len(digits.test_labels) + 1e-4
    energy = percent(player_metric(frame3, "Energy kept"))
    assert abs(energy - (S[:3] ** 2).sum() / (S**2).sum()) < 5e-4
    assert player_metric(frame3, "fc1 parameters") == f"{3 * (64 + 300):,}"


def test_typed_bits_and_rank_become_stops_and_move_the_sliders(baseline, digits):
    at = page()
    bits_rev, rank_rev = bits_player(at)["rev"], rank_player(at)["rev"]
    at.number_input(key="qz_bits_exact").set_value(9).run()
    label, frame, drawn = player_stop(ok(at), "qz_bits_player")
    assert label == "9" and bits_player(at)["spec"]["labels"] == [str(b) for b in range(1, 10)]
    assert bits_player(at)["rev"] == bits_rev + 1  # the browser moves its slider to a value the server set
    lines = centroid_lines(drawn["codebook-histogram"])
    assert 256 < lines.size <= 512 and player_metric(frame, "Bits per weight, all included") != "8.00"
    at.number_input(key="qz_rank_exact").set_value(20).run()
    label, frame, drawn = player_stop(ok(at), "qz_rank_player")
    assert label == "20" and rank_player(at)["rev"] == rank_rev + 1 and not errors(at)
    assert drawn["singular-spectrum"]["layout"]["shapes"][0]["x0"] == 20
    _, S, _ = fc1_svd(load_trained_model(baseline.path))
    assert abs(percent(player_metric(frame, "Energy kept")) - (S[:20] ** 2).sum() / (S**2).sum()) < 5e-4
    assert player_stop(at, "qz_bits_player")[0] == "9"  # the other player is left where it was


def test_a_linked_bit_width_is_a_stop_of_its_own(baseline):
    """``?qz_method=uniform&qz_bits=10``: the player stands at its own stop 10 beside 1..8."""
    at = AppTest.from_string(HARNESS, default_timeout=120)
    at.query_params["qz_method"], at.query_params["qz_bits"] = "uniform", "10"
    label, frame, drawn = player_stop(ok(at.run()), "qz_bits_player")
    assert label == "10" and bits_player(at)["spec"]["labels"] == [str(b) for b in range(1, 9)] + ["10"]
    assert player_metric(frame, "Bits per weight, all included") == "10.00"  # one scale per tensor: 10 bits a weight
    assert at.number_input(key="qz_bits_exact").value == 10


def test_bad_bits_and_rank_give_a_clear_message(baseline):
    at = page()
    for bad in (0, 17):
        at.number_input(key="qz_bits_exact").set_value(bad).run()
        assert f"bits must be in 1..16, got {bad}" in errors(ok(at))
    assert player_stop(at, "qz_bits_player")[0] == "3"  # the last valid width is kept
    at.number_input(key="qz_rank_exact").set_value(500).run()
    assert "rank must be in 1..64 for a 300 x 64 weight matrix, got 500" in errors(ok(at))
    at.segmented_control(key="qz_method").set_value("uniform").run()
    spec = bits_player(ok(at))["spec"]
    one, drawn1 = stop_of(spec, "1")
    assert "symmetric uniform quantization needs at least 2 bits" in one["note"]
    assert not one["metrics"] and all(c is None for c in drawn1.values())
    four, drawn4 = stop_of(spec, "4")
    assert not four["note"] and percent(player_metric(four, "Test accuracy")) > 0.5
    assert centroid_lines(drawn4["codebook-histogram"]).size <= 15  # symmetric: 2^4 - 1 levels
    at.number_input(key="qz_bits_exact").set_value(1).run()  # typed: the player says why, nothing breaks
    label, frame, _ = player_stop(ok(at), "qz_bits_player")
    assert label == "1" and "needs at least 2 bits" in frame["note"]


def test_the_method_menu_is_the_quantizer_registry(baseline):
    """Each quantizer of ``quant.explore.KINDS`` is on the menu and shows its own options; a fixed-width
    one (binary) disables the bits box and gets a single stop; product quantization has no codebook table."""
    from kdviz.quant.explore import KINDS

    at = page()
    assert list(at.segmented_control(key="qz_method").options) == [k.title for k in KINDS.values()]
    radios = {"init": "qz_init", "per_channel": "qz_granularity", "symmetric": "qz_scheme", "binarizer": "qz_binarizer",
              "subvector": "qz_subvector"}
    for kind in KINDS.values():
        at.segmented_control(key="qz_method").set_value(kind.name).run()
        shown = {r.key for r in ok(at).radio if r.key in radios.values()}
        assert shown == {radios[o] for o in kind.options}, kind.name
        fixed = kind.fixed_bits is not None
        assert at.number_input(key="qz_bits_exact").disabled == fixed
        label, frame, drawn = player_stop(at, "qz_bits_player")
        labels = bits_player(at)["spec"]["labels"]
        assert labels == ([str(kind.fixed_bits)] if fixed else [str(b) for b in range(1, 9)]), kind.name
        assert label == (str(kind.fixed_bits) if fixed else "3") and frame["captions"][0] == kind.note
        assert (drawn["codebook-table"] is None) == (kind.name == "product") and not errors(at), kind.name


def test_live_fine_tuning_gains_points_and_moves_the_centroids(baseline):
    at = page()
    at.slider(key="qz_live_epochs").set_value(2).run()
    at.slider(key="qz_live_bits").set_value(3).run()  # not the page's default 2 (nor the hook's 5)
    next(b for b in at.button if b.label.startswith("Start fine-tuning")).click().run()
    job = ok(at).session_state["qz_job"]
    assert job.config.hooks == [{"name": "kmeans", "bits": 3, "init": "linear"}]
    assert job.config.init_from == str(baseline.path) and job.config.pace_s == 20.0  # paced to watch by default
    started, counts, end = time.monotonic(), [], time.monotonic() + 90
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
    assert not errors(at) and time.monotonic() - started >= 19.5  # about a second of compute, spread out
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
    assert "'name': 'kmeans', 'bits': 4" in code and str(baseline.path) in code and "pace_s=20.0" in code
    at.toggle(key="qz_pace").set_value(False).run()
    assert "pace_s" not in "\n".join(c.value for c in ok(at).code)  # as fast as it can
