"""The Pruning page's "Speed on this CPU" and movement-pruning sections, and the Deep Compression
page's speed section, through AppTest with a real (tiny) baseline. No timing is asserted: the chart's
numbers are checked against the table and the caption's sentences against the numbers."""
from __future__ import annotations

import math
import re
import time
from pathlib import Path

import numpy as np
import torch
from streamlit.testing.v1 import AppTest

from kdviz.app.pruning_view import MOVEMENT_TITLE
from kdviz.app.session import EXPERIMENTS_KEY
from kdviz.engine import load_checkpoint
from kdviz.methods.movement import MOVEMENT
from kdviz.methods.prune import PRUNE

from _support.apptest import charts, harness, ok, ok_without_errors, texts, values

FORMS = ["dense", "shrunk", "sparse", "int8", "int8 static"]
PAGES = Path(__file__).resolve().parents[2] / "kdviz" / "app" / "pages"


def app(page: str, title: str) -> AppTest:
    return AppTest.from_string(harness((PAGES / page, title)), default_timeout=120)


def wait_for_chart(at: AppTest, key: str, timeout: float = 90) -> dict:
    end = time.monotonic() + timeout
    while True:
        spec = charts(ok(at.run()))
        if key in spec:
            return spec
        assert time.monotonic() < end, texts(at)
        time.sleep(0.5)


def test_speed_section_measures_the_baseline_in_the_background(baseline):
    at = ok(app("pruning.py", "Pruning").run())
    assert "6. Speed on this CPU" in [h.value for h in at.header]
    assert "Press **Measure speed on this CPU**" in texts(at)
    at.button(key="pr-speed-measure").click().run()
    spec = wait_for_chart(at, "pr-speed-chart")
    ok_without_errors(at)
    bars = spec["pr-speed-chart"]["data"]
    assert [list(b["x"]) for b in bars][0] == FORMS and len(bars) == 4
    table = at.dataframe[-1].value
    assert list(table["form"]) == FORMS
    medians = values(bars[0]["y"])  # batch 1 medians, ms
    ratios = medians / medians[0]
    np.testing.assert_allclose(table["batch 1 / dense"].to_numpy(dtype=float), ratios, atol=2e-3)
    sizes = values(bars[2]["y"]) * 1024
    assert sizes[3] < sizes[0] and sizes[1] < sizes[0]  # int8 and shrunk store fewer bytes than dense
    caption = next(c.value for c in at.caption if "Measured now on this machine" in c.value)
    for i, form in enumerate(FORMS[1:], start=1):  # the caption's sentences follow from the chart's numbers
        slow_at_1 = f"{form} stores {sizes[i] / sizes[0]:.0%} of the dense bytes but is not faster at batch 1 " \
                    f"({ratios[i]:.2f}x the dense time)"
        assert (slow_at_1 in caption) == (ratios[i] > 0.95), (form, ratios[i], caption)
    assert re.search(r"sparse form: pruned here by magnitude to 90% per layer", caption)


def test_movement_beside_magnitude_live_on_the_pruning_page(baseline):
    at = ok(app("pruning.py", "Pruning").run())
    at.toggle(key="pr_pace").set_value(False).run()
    at.slider(key="pr_mv_epochs").set_value(1).run()
    at.slider(key="pr_mv_target").set_value(0.8).run()
    at.button(key="pr-movement-start").click().run()
    ok_without_errors(at)
    exp = next(e for e in at.session_state[EXPERIMENTS_KEY] if e.title == MOVEMENT_TITLE)
    jobs = exp.jobs
    assert set(jobs) == {MOVEMENT.label, PRUNE.label}
    end = time.monotonic() + 120
    while True:
        spec = charts(ok(at.run()))
        if all(j.done for j in jobs.values()) and "movement-scatter" in spec:
            break
        assert time.monotonic() < end, texts(at)
        time.sleep(0.5)
    spec = charts(ok(at.run()))
    moved, magnitude = jobs[MOVEMENT.label], jobs[PRUNE.label]
    assert moved.config.init_from == str(baseline.path) == magnitude.config.init_from
    progress = spec["movement-progress"]["data"]
    names = {t["name"] for t in progress}
    assert names == {MOVEMENT.label, PRUNE.label}
    final = [values(t["y"])[-1] for t in progress if t["xaxis"] == "x"]  # the sparsity panel
    assert np.allclose(final, 80.0, atol=0.2)
    ckpt = load_checkpoint(moved.path / "checkpoints" / "last.pt")
    mask = ckpt["hooks"]["movement"]["mask/fc1.weight"]
    assert float((~mask).double().mean()) == math.floor(0.8 * mask.numel() + 0.5) / mask.numel()
    assert torch.all(ckpt["model"]["fc1.weight"][~mask] == 0)
    caption = next(c.value for c in at.caption if "magnitude pruning at the same count would keep" in c.value)
    evals = [r for r in moved.store.metrics() if r.get("kind") == "eval"]
    assert f"{100 * evals[-1]['test_acc']:.1f}% at 80% sparsity" in caption
    scatter = spec["movement-scatter"]
    assert "chosen differently by movement and magnitude" in scatter["layout"]["title"]["text"]
    counts = [int(re.search(r"\((\d+)\)", t["name"]).group(1)) for t in scatter["data"]]
    assert sum(counts) == 400 and counts[1] > 0 and counts[2] > 0  # a sample of 400 of fc1's weights
    # the caption's agreement of fc1, recomputed from the checkpoint: magnitude's top-k of the dense weights
    latent = ckpt["hooks"]["movement"]["latent/fc1.weight"].abs().flatten().double().numpy()
    kept = mask.flatten().numpy()
    by_magnitude = np.zeros_like(kept)
    by_magnitude[np.argsort(-latent, kind="stable")[: kept.sum()]] = True
    assert f"fc1 {(by_magnitude & kept).sum() / kept.sum():.0%}" in caption


def test_deep_compression_page_has_the_speed_section(baseline):
    at = ok_without_errors(app("deep_compression.py", "Deep Compression").run())
    assert "Speed on this CPU" in [h.value for h in at.header]
    assert at.selectbox(key="dc-speed-run").value == "baseline"
    at.button(key="dc-speed-measure").click().run()
    spec = wait_for_chart(at, "dc-speed-chart")
    assert len(spec["dc-speed-chart"]["data"]) == 4
