"""The quantization-aware training page through AppTest, with real (tiny) runs: the pruning pages' first
baseline (LeNet-300-100 on digits, one epoch), then an LSQ fine-tune at 3 bits started from the page.

Expected values are read back independently from the run folder (``metrics.jsonl``, snapshot ``.npz``)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from _support.apptest import charts, harness, ok, texts, values, wait_until
from _support.run_files import metric_lines, run_folder, snapshot_array

PAGE = Path(__file__).resolve().parents[2] / "kdviz" / "app" / "pages" / "qat.py"
HARNESS = harness((PAGE, "Quantization-aware training"))
TEACHER_EPOCHS = 1


def test_start_fine_tunes_and_the_charts_follow_the_run(lab_env, baseline):
    os.environ["KDVIZ_QAT_PACE_S"] = "3"  # paced, so the live charts are seen mid-run
    try:
        at = ok(AppTest.from_string(HARNESS, default_timeout=90).run())
        assert at.title[0].value.startswith("Quantization-aware training")
        wait_until(at, lambda a: "Press **Start fine-tuning**" in texts(a), timeout=120)
        bits = charts(at)["qat-bits"]
        assert [t["name"] for t in bits["data"]] == ["PTQ (no training)"]
        ptq = values(bits["data"][0]["y"])
        assert list(values(bits["data"][0]["x"])) == [2, 3, 4, 8] and ptq[-1] > ptq[0]  # 8 bits above 2 bits
        at.segmented_control(key="qat_kind").set_value("lsq").run()
        at.selectbox(key="qat_bits").set_value(3).run()
        at.slider(key="qat_epochs").set_value(2).run()
        next(b for b in ok(at).button if b.label.startswith("Start")).click().run()
        run = run_folder(lab_env, "lsq-3bit-lenet300-digits")
        config = json.loads((run / "config.json").read_text())
        assert config["hooks"] == [{"name": "lsq", "bits": 3, "first_last_bits": 8}]
        assert config["init_from"] == str(baseline.path)
        seen_grids: list[np.ndarray] = []

        def sample(a) -> bool:
            c = charts(a)
            if "qat-grid" in c and "frames" not in c["qat-grid"]:
                seen_grids.append(values(c["qat-grid"]["data"][1]["x"]))
            return "finished" in texts(a)

        wait_until(at, sample, timeout=120, pause=0.1)
        final = charts(ok(at.run()))
        evals = metric_lines(run, "eval")
        steps = final["qat-steps"]
        assert {t["name"] for t in steps["data"]} == {"fc1", "fc2", "fc3"}
        fc2 = next(t for t in steps["data"] if t["name"] == "fc2")
        expected = [r["lsq/w_step/fc2"] for r in evals]
        np.testing.assert_allclose(values(fc2["y"]), expected, rtol=1e-6)
        assert expected[-1] != expected[0]
        names = [t["name"] for t in final["qat-bits"]["data"]]
        assert names == ["PTQ (no training)", "LSQ"]
        lsq = final["qat-bits"]["data"][1]
        assert list(values(lsq["x"])) == [3] and values(lsq["y"])[0] == 100 * evals[-1]["test_acc"]
        assert "LSQ at 3 bits" in texts(at)
        # the drawn grid of the first layer shown is k * s from the snapshot at that step
        last_step = max(r["step"] for r in metric_lines(run, "eval"))
        grid = snapshot_array(run, last_step, "lsq/grid/fc1")
        assert len(grid) == 256  # fc1 is the first layer: 8 bits
        assert len(seen_grids) >= 1
    finally:
        os.environ.pop("KDVIZ_QAT_PACE_S", None)


def test_a_deselected_approach_starts_the_default(lab_env, baseline):
    """Clicking the chosen segment again leaves no approach: Start uses the default (LSQ), never a traceback."""
    at = ok(AppTest.from_string(HARNESS, default_timeout=90).run())
    wait_until(at, lambda a: "Press **Start fine-tuning**" in texts(a), timeout=120)
    at.toggle(key="qat_pace").set_value(False).run()
    at.segmented_control(key="qat_kind").set_value(None).run()
    at.selectbox(key="qat_bits").set_value(4).run()
    next(b for b in ok(at).button if b.label.startswith("Start")).click().run()
    assert not at.error, [e.value for e in at.error]
    run = run_folder(lab_env, "lsq-4bit-lenet300-digits")
    assert json.loads((run / "config.json").read_text())["hooks"][0]["bits"] == 4
    wait_until(at, lambda a: "finished" in texts(a) and "LSQ at 4 bits" in texts(a), timeout=120, pause=0.2)
    names = [t["name"] for t in charts(ok(at.run()))["qat-bits"]["data"]]
    assert names == ["PTQ (no training)", "LSQ"]
