"""The Transformers page's compression tab (``render_vit_compression``) through AppTest, with real tiny runs:
the ViT teacher preset (3 epochs on digits) trained by the tab, the no-fine-tuning pruning curves, the
measured table of compressed forms, then a head-pruning fine-tune started from the tab at non-default
settings, whose live heatmap is checked against the run folder's snapshots."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from kdviz.engine import TrainConfig, load_trained_model, start
from kdviz.data import load_dataset
from kdviz.prune.heads import gated_accuracy

from _support.apptest import charts, harness, ok, texts, values, wait_until
from _support.run_files import metric_lines, run_folder, snapshot_array

TEACHER_EPOCHS = 1
TINY = {"patch": 2, "dim": 16, "depth": 2, "heads": 4, "mlp_ratio": 1.0}
PAGE_SOURCE = ("import kdviz.methods.head_prune  # noqa: F401  (registered by kdviz.methods once the lead adds it)\n"
               "from kdviz.app.vit_compression_view import render_vit_compression\nrender_vit_compression()\n")


def _page(tmp_path: Path) -> str:
    page = tmp_path / "vit_compression_tab.py"
    page.write_text(PAGE_SOURCE)
    return harness((page, "ViT compression"))


@pytest.fixture(scope="module")
def tiny_vit(lab_env):
    """A finished tiny ViT run (2 layers x 4 heads) in the tab's runs folder, and an MLP run it must not list."""
    common = dict(dataset="digits", optimizer="adam", lr=0.003, max_steps=40, eval_train_samples=200, runs_root=str(lab_env))
    jobs = [start(TrainConfig(model="vit", model_options=TINY, name="tiny-vit", **common)),
            start(TrainConfig(model="mlp", model_options={"hidden": [8]}, name="tiny-mlp", **common))]
    assert [j.wait(120).state for j in jobs] == ["finished", "finished"]
    return Path(jobs[0].path)


def test_tab_prunes_a_finished_vits_heads_live_and_measures_the_compressed_forms(lab_env, tiny_vit, tmp_path):
    os.environ.update(KDVIZ_VIT_PACE_S="3", KDVIZ_VIT_TABLE_RUNS="3")
    try:
        at = ok(AppTest.from_string(_page(tmp_path), default_timeout=90).run())
        at.segmented_control(key="vitc_source").set_value("A finished ViT run").run()
        options = ok(at).selectbox(key="vitc_run").options
        assert len(options) == 1 and options[0].startswith(tiny_vit.name) and "2 layers x 4 heads" in options[0]
        wait_until(at, lambda a: "Press **Start head pruning**" in texts(a), timeout=60)
        idle = charts(at)
        curves = {t["name"]: t for t in idle["vitc-accuracy"]["data"]}
        assert list(curves) == ["by importance (no fine-tuning)", "random order (no fine-tuning)"]
        model = load_trained_model(tiny_vit).eval()
        digits = load_dataset("digits")
        test = torch.as_tensor(digits.test_images), torch.as_tensor(digits.test_labels)
        dense = gated_accuracy(model, *test, torch.zeros(2, 4, dtype=torch.bool))
        first = curves["by importance (no fine-tuning)"]
        assert values(first["x"])[0] == 0 and values(first["y"])[0] == pytest.approx(100 * dense)
        assert values(first["x"])[-1] == 6  # every layer down to one head
        assert sum(t == "✕" for row in idle["vitc-heatmap-idle"]["data"][0]["text"] for t in row) == 3  # half of 6
        at.button(key="vitc-measure").click().run()
        table = charts(ok(at))["vitc-table"]["data"][0]["cells"]["values"]
        assert table[0] == ["dense", "3 heads removed", "2:4 sparse", "50% unstructured", "int8 dynamic", "k-means 4-bit"]
        assert table[1][0] == f"{100 * dense:.1f}%"
        assert all("ms" in cell for cell in table[3] + table[4])  # measured at batch 1 and 256

        at.slider(key="vitc_heads").set_value(5).run()
        at.slider(key="vitc_rounds").set_value(2).run()
        at.slider(key="vitc_epochs").set_value(1).run()
        next(b for b in ok(at).button if b.label.startswith("Start")).click().run()
        run = run_folder(lab_env, "vit-heads-5")
        config = json.loads((run / "config.json").read_text())
        hook = config["hooks"][0]
        assert (hook["name"], hook["heads_removed"], hook["rounds"]) == ("head_prune", 5, 2)
        assert config["init_from"] == str(tiny_vit) and config["epochs"] == 1
        crossed: dict[int, int] = {}

        def sample(a) -> bool:
            c = charts(a)
            if "vitc-heatmap" in c:
                heat = c["vitc-heatmap"]["data"][0]
                step = int(c["vitc-heatmap"]["layout"]["title"]["text"].split("at step ")[1].split(":")[0])
                np.testing.assert_allclose(values(heat["z"]).reshape(2, 4), snapshot_array(run, step, "head_prune/importance"),
                                           rtol=1e-5)
                crossed[step] = sum(t == "✕" for row in heat["text"] for t in row)
            return "finished" in texts(a)

        wait_until(at, sample, timeout=120, pause=0.2)
        final = charts(ok(at.run()))
        assert len(set(crossed.values())) >= 2 and max(crossed.values()) == 5, crossed  # heads went while we watched
        evals = metric_lines(run, "eval")
        pruned = next(t for t in final["vitc-accuracy"]["data"] if t["name"] == "heads pruned")
        assert values(pruned["x"])[-1] == 5 and values(pruned["y"])[-1] == pytest.approx(100 * evals[-1]["test_acc"])
        assert any(b.key == "vitc-measure" for b in at.button)  # the finished run's forms can be measured too
    finally:
        for key in ("KDVIZ_VIT_PACE_S", "KDVIZ_VIT_TABLE_RUNS"):
            os.environ.pop(key, None)

