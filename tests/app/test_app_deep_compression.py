"""The Deep Compression page through AppTest, with a real (tiny) baseline and real stage runs.

The page's controls are set to non-default values (70% / 50% sparsity, 3 bits, short stages) and
checked in the stage runs' configs; the numbers the page shows are checked against the run folders
(the pruned checkpoint's zeros, the encoded streams' byte lengths).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from kdviz.app.session import EXPERIMENTS_KEY
from kdviz.engine import load_checkpoint
from kdviz.methods.deep_compression import PRUNE_STAGE, QUANTIZE_STAGE

from _support.apptest import charts, harness, values
from _support.apptest import ok_without_errors as ok

ROOT = Path(__file__).resolve().parents[2]
DEEP = str(ROOT / "kdviz/app/pages/deep_compression.py")
HARNESS = harness((DEEP, "Deep Compression"))


def app() -> AppTest:
    return AppTest.from_string(HARNESS, default_timeout=120)


def set_controls(at: AppTest) -> None:
    at.slider(key="dc_hidden").set_value(0.7)
    at.slider(key="dc_output").set_value(0.5)
    at.slider(key="dc_bits").set_value(3)
    for key, value in (("dc_rounds", 2), ("dc_round_epochs", 1.0), ("dc_retrain", 1.0), ("dc_finetune", 2.0)):
        at.number_input(key=key).set_value(value)
    ok(at.run())


def test_page_runs_the_stages_and_shows_a_decreasing_waterfall(baseline):
    at = ok(app().run())
    assert at.title[0].value == "Deep Compression"
    set_controls(at)
    next(b for b in at.button if b.label == "Compress").click().run()
    exp = ok(at).session_state[EXPERIMENTS_KEY][-1]
    prune = exp.job(PRUNE_STAGE)
    assert prune.config.hooks[0]["sparsity"] == {"fc1": 0.7, "fc2": 0.7, "fc3": 0.5}
    assert Path(prune.config.init_from) == Path(baseline.path) and prune.config.pace_s == 15.0  # paced to watch
    end = time.monotonic() + 120
    while not exp.done:
        assert time.monotonic() < end, {n: j.status() for n, j in exp.jobs.items()}
        time.sleep(0.5)
        ok(at.run())
    shown = charts(ok(at.run()))
    quantize = exp.job(QUANTIZE_STAGE)
    assert quantize.status().state == "finished" and quantize.config.hooks[0]["bits"] == 3
    assert quantize.config.pace_s == 15.0
    table = at.dataframe[0].value
    assert list(table["stage"]) == ["dense", "pruned", "3-bit k-means", "Huffman"]
    sizes = np.asarray(table["size (KB)"]) * 1e3
    assert sizes[0] == 4 * (64 * 300 + 300 * 100 + 100 * 10) and (np.diff(sizes) < 0).all()
    y = values(shown["size-waterfall"]["data"][0]["y"])
    assert np.allclose(y[:4], [sizes[0] / 1e3, *np.diff(sizes) / 1e3])
    state = load_checkpoint(prune.path)["model"]
    kept = {n: int((state[f"{n}.weight"] != 0).sum()) for n in ("fc1", "fc2", "fc3")}
    layers = at.dataframe[1].value
    assert dict(zip(layers["layer"], layers["weights"] * layers["kept %"] / 100)) == pytest.approx(kept)
    assert "pruned-codebook" in shown and "dc-accuracy" in shown
    assert len(shown["dc-accuracy"]["data"]) == 2  # one accuracy curve per stage run
    pruned_x, shared_x = (values(t["x"]) for t in shown["dc-accuracy"]["data"])
    prune_epochs = prune.config.epochs
    assert pruned_x.max() <= prune_epochs <= shared_x.min()  # k-means follows pruning on one epoch axis
    evals = [r for r in quantize.store.metrics() if r.get("kind") == "eval"]
    assert np.allclose(shared_x, [prune_epochs + r["epoch"] for r in evals])
    assert [s["x0"] for s in shown["dc-accuracy"]["layout"]["shapes"] if s.get("line", {}).get("dash") == "dot"] \
        == [prune_epochs]  # a dotted line where the second stage starts
    assert len(shown["dc-live-progress"].get("frames", [])) >= 2  # the finished stage replays (kdviz.app.dc_live)
    code = "\n".join(c.value for c in at.code)  # the Export popover: the code of both stage runs
    assert "'bits': 3" in code and "'fc3': 0.5" in code and str(baseline.path) in code


def test_stop_stops_the_running_stage_and_cancels_the_next(baseline):
    at = ok(app().run())
    at.number_input(key="dc_round_epochs").set_value(50.0)
    at.toggle(key="dc_pace").set_value(False)
    next(b for b in ok(at.run()).button if b.label == "Compress").click().run()
    exp = ok(at).session_state[EXPERIMENTS_KEY][-1]
    assert exp.job(PRUNE_STAGE).config.pace_s is None  # as fast as it can
    end = time.monotonic() + 60
    while exp.job(PRUNE_STAGE).status().step < 2:
        assert time.monotonic() < end, exp.job(PRUNE_STAGE).status()
        time.sleep(0.1)
    at.button(key="dc-stop").click().run()
    exp.wait(30)
    ok(at.run())
    assert exp.job(PRUNE_STAGE).status().state == "stopped" and exp.job(QUANTIZE_STAGE) is None
    assert any("cancelled" in c.value for c in at.caption), [c.value for c in at.caption]
    assert next(b for b in at.button if b.label == "Compress").disabled is False  # a new run may start
