"""The ProjectionNet page through AppTest, with real (tiny) runs on digits: three projection nets (T = 4, 2, 1
hash functions of 3 bits) and their trainers, trained in the background while the page only reads.

Expected values are read back independently from the run folders (the snapshot ``.npz`` files,
``metrics.jsonl``) and the bits recomputed from the seed with numpy; the sizes from the layer shapes.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from streamlit.testing.v1 import AppTest

from kdviz.data import load_dataset

from _support.apptest import charts, harness, metric, ok, start_button, texts, values, wait_until
from _support.run_files import metric_lines, run_folder, snapshot_array

PAGE = Path(__file__).resolve().parents[2] / "kdviz" / "app" / "pages" / "projection.py"
HARNESS = harness((PAGE, "ProjectionNet"))
TEACHER_EPOCHS = 1  # no teacher is used; keeps the module's lab environment small


def test_start_trains_every_bit_budget_and_the_live_charts_follow_the_runs(lab_env):
    at = ok(AppTest.from_string(HARNESS, default_timeout=60).run())
    assert at.title[0].value.startswith("ProjectionNet") and "Press **Start**" in texts(at)
    at.slider(key="pn_hashes").set_value(4).run()
    at.slider(key="pn_bits").set_value(3).run()
    at.slider(key="pn_epochs").set_value(15).run()  # long enough for several reruns to see it train
    at.selectbox(key="pn_hidden").set_value(32).run()
    at.number_input(key="pn_lambda2").set_value(2.0).run()
    start_button(ok(at)).click().run()
    main = run_folder(lab_env, "projection-4x3")
    config = json.loads((main / "config.json").read_text())
    assert config["model"] == "projection_net" and config["method"] == "none"
    assert config["model_options"] == {"num_hashes": 4, "bits_per_hash": 3, "hidden": [32], "projection_seed": 0}
    assert config["hooks"][0]["lambda2"] == 2.0
    drawn: dict[int, np.ndarray] = {}

    def sample(a) -> bool:  # no clicks from here on: the page is only rerun, as its timer does
        c = charts(a)
        if "pn-bits" in c:
            step = int(next(cap.value for cap in a.caption if cap.value.startswith("Step ")).split()[1].rstrip("."))
            drawn.setdefault(step, values(c["pn-bits"]["data"][1]["z"]))
        return texts(a).count("finished") >= 3

    wait_until(at, sample, timeout=240, pause=0.05)
    assert len(drawn) >= 2 and not np.allclose(drawn[min(drawn)], drawn[max(drawn)]), "p(class) never moved"
    for step, z in drawn.items():  # the right panel is the projection net's softmax of the probe digits then
        np.testing.assert_allclose(z, snapshot_array(main, step, "projection/probs"), rtol=1e-6)
    final = charts(ok(at.run()))
    x = load_dataset("digits").test_images[:8].reshape(8, 64).numpy()
    planes = torch.randn(12, 64, generator=torch.Generator().manual_seed(0)).numpy()
    bits = values(final["pn-bits"]["data"][0]["z"])
    np.testing.assert_array_equal(bits, (x @ planes.T > 0).astype(float))  # P(x) by hand, from the seed
    assert len(final["pn-bits"].get("frames", [])) >= 2  # finished: the probe chart replays in the browser
    accuracy = {t["name"]: t for t in final["pn-accuracy"]["data"]}
    assert list(values(accuracy["projection net"]["x"])) == [3, 6, 12]
    last = {n: metric_lines(run_folder(lab_env, f"projection-{n}x3"), "eval")[-1] for n in (1, 2, 4)}
    np.testing.assert_allclose(values(accuracy["projection net"]["y"]), [100 * last[n]["test_acc"] for n in (1, 2, 4)],
                               rtol=1e-6)
    np.testing.assert_allclose(values(accuracy["its trainer"]["y"]),
                               [100 * last[n]["projection/trainer_test_acc"] for n in (1, 2, 4)], rtol=1e-6)
    steps = metric_lines(main, "step")
    loss = {t["name"].split(":")[0]: values(t["y"]) for t in final["pn-loss"]["data"]}
    np.testing.assert_allclose(loss["λ2 L_p"], [r["projection/distill"] for r in steps], rtol=1e-6)
    assert metric(at, "Projection net (deployed)") == f"{4 * (12 * 32 + 32 + 32 * 10 + 10) + 8:,} bytes"
    assert metric(at, "Trainer (not deployed)") == f"{4 * (64 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10):,} bytes"
    assert metric(at, "P: hyperplanes") == "0 bytes"


def test_a_bad_setting_is_named_and_nothing_starts(lab_env):
    at = ok(AppTest.from_string(HARNESS, default_timeout=60).run())
    for key in ("pn_lambda2", "pn_lambda3"):
        at.number_input(key=key).set_value(0.0).run()
    start_button(ok(at)).click().run()
    assert any("lambda2 and lambda3 are both 0" in e.value for e in ok(at).error)
    assert "Press **Start**" in texts(at)
