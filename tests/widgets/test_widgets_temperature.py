"""The Jupyter TemperatureExplorer: its browser-side player's frames, the exact-T box, the sample
pickers and bad input. Expected numbers are recomputed here from the model (numpy softmax), never
read back from the code under test. The browser side is timed by bench/soft_targets_latency.py."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kdviz import build_model, load_dataset
from kdviz.present.temperature import TEMPERATURES
from kdviz.widgets import TemperatureExplorer
from kdviz.widgets.temperature import TemperaturePlayer, player_esm


def softmax(z: np.ndarray, T: float) -> np.ndarray:
    e = np.exp((z - z.max()) / T)
    return e / e.sum()


@pytest.fixture(scope="module")
def explorer():
    torch.manual_seed(0)
    model = build_model("mlp", input_shape=(1, 8, 8), num_classes=10, hidden=(32,))
    return TemperatureExplorer(model, "digits", T=1.0, index=3)


def logits_of(explorer, index: int) -> np.ndarray:
    images = load_dataset("digits").test_images
    with torch.no_grad():
        return explorer.model.eval()(images[index : index + 1]).double().numpy()[0]


def frame_at_slider(explorer) -> dict:
    return explorer.player.spec["frames"][explorer.player.index]


def test_the_player_holds_a_frame_per_stop_and_moving_it_sets_T(explorer):
    z = logits_of(explorer, 3)
    spec = explorer.player.spec
    assert spec["temperatures"] == list(TEMPERATURES) and explorer.T == 1.0
    for i in (0, 7, len(TEMPERATURES) - 1):  # what the browser draws at each stop
        T = spec["temperatures"][i]
        np.testing.assert_allclose(spec["frames"][i]["bars"]["y"], softmax(z, T), rtol=1e-5)
        p = softmax(z, T)
        assert spec["frames"][i]["marker"]["y"][0] == pytest.approx(-(p * np.log(p + 1e-300)).sum(), abs=1e-5)
    explorer.player.index = TEMPERATURES.index(20.0)  # what a move in the browser sends back
    assert explorer.T == 20.0 and explorer.exact_box.value == 20.0
    assert "T = 20" in frame_at_slider(explorer)["bars"]["title"]


def test_an_exact_T_becomes_a_stop_and_a_bad_one_is_named(explorer):
    explorer.T = 7.3
    assert explorer.T == 7.3 and 7.3 in explorer.player.spec["temperatures"]
    np.testing.assert_allclose(frame_at_slider(explorer)["bars"]["y"], softmax(logits_of(explorer, 3), 7.3), rtol=1e-5)
    explorer.exact_box.value = -2.0
    assert "positive" in explorer.message.value and "-2" in explorer.message.value
    assert explorer.T == 7.3  # kept
    explorer.player.index = explorer.player.spec["temperatures"].index(2.0)
    assert explorer.message.value == "" and explorer.exact_box.value == 2.0


def test_sample_pickers_keep_T_and_redraw_the_frames(explorer):
    explorer.T = 5.0
    explorer.select(7)
    assert explorer.T == 5.0 and "#7" in explorer.image_chart.widget.layout.title.text
    np.testing.assert_allclose(frame_at_slider(explorer)["bars"]["y"], softmax(logits_of(explorer, 7), 5.0), rtol=1e-5)
    first = explorer.next_confused()
    images = load_dataset("digits").test_images
    with torch.no_grad():
        all_z = explorer.model.eval()(images).double().numpy()
    p = np.exp(all_z - all_z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    top2 = np.sort(p, 1)[:, -2:]
    order = np.argsort(top2[:, 1] - top2[:, 0], kind="stable")
    assert first == order[0] and explorer.next_confused() == order[1] != first
    assert f"gap to the runner-up: {top2[order[1], 1] - top2[order[1], 0]:.1%}" in explorer.info.value
    np.testing.assert_allclose(frame_at_slider(explorer)["bars"]["y"], softmax(all_z[order[1]], 5.0), rtol=1e-5)
    with pytest.raises(ValueError, match="index"):
        explorer.select(10_000)


def test_the_front_end_carries_plotly_and_the_player():
    esm = player_esm()
    assert "export default" in esm and "kdvizTemperaturePlayer(box, Plotly" in esm
    assert "window.Plotly = Plotly" in esm  # plotly.min.js, embedded once
    player = TemperaturePlayer({"temperatures": [1.0, 2.0], "frames": []}, index=1)
    assert player.T == 2.0


def test_explorer_rejects_bad_input():
    model = build_model("mlp", input_shape=(1, 8, 8), num_classes=5, hidden=(8,))
    with pytest.raises(ValueError, match="logits of shape"):
        TemperatureExplorer(model, "digits")
    good = build_model("mlp", input_shape=(1, 8, 8), num_classes=10, hidden=(8,))
    with pytest.raises(ValueError, match="T must be in"):
        TemperatureExplorer(good, "digits", T=500)
    with pytest.raises(TypeError, match="teacher"):
        TemperatureExplorer(42, "digits")


# A page laid out as JupyterLab does it: its theme in --jp-* variables, light or dark in body's
# data-jp-theme-light. The widget's module is rendered with a minimal model holding the real spec.
JUPYTER_PAGE = """<!doctype html><html><head><style>
  body[data-jp-theme-light="false"] { --jp-layout-color0: #111111; --jp-ui-font-color1: rgba(255, 255, 255, 0.87); }
  body[data-jp-theme-light="true"] { --jp-layout-color0: white; --jp-ui-font-color1: rgba(0, 0, 0, 0.87); }
</style></head><body data-jp-theme-light="false"><div id="cell"></div></body></html>"""
JS_RENDER = """async ([esm, spec]) => {
  const url = URL.createObjectURL(new Blob([esm], { type: "text/javascript" }));
  const widget = (await import(url)).default, values = { spec, index: 4 }, handlers = {};
  const model = { get: (k) => values[k], set: (k, v) => { values[k] = v; }, save_changes() {},
                  on: (e, f) => { handlers[e] = f; }, off: () => {} };
  widget.render({ model, el: document.getElementById("cell") });
}"""
JS_LOOK = """() => {
  const root = document.querySelector('.kdviz-tp'), paper = document.querySelector('.kdviz-tp-bars .main-svg');
  if (!root || !paper || !document.querySelector('.kdviz-tp-bars .gtitle')) return null;
  return { theme: root.dataset.theme, text: getComputedStyle(root).color, paper: getComputedStyle(paper).backgroundColor,
           title: getComputedStyle(document.querySelector('.kdviz-tp-bars .gtitle')).fill,
           bar: getComputedStyle(document.querySelector('.kdviz-tp-bars .barlayer .point path')).fill };
}"""


def brightness(css: str) -> float:
    import re

    r, g, b = (float(v) for v in re.findall(r"[\d.]+", css)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def test_the_player_follows_jupyterlabs_dark_theme_and_a_switch_to_light(explorer):
    from _support.browser import launch_chromium, playwright_or_skip
    from _support.polling import wait_for

    sync_api = playwright_or_skip()
    with sync_api.sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page()
            page.set_content(JUPYTER_PAGE)
            page.evaluate(JS_RENDER, [player_esm(), explorer.player.spec])
            dark = wait_for(lambda: page.evaluate(JS_LOOK), 60, "the player drawn")
            assert dark["theme"] == "dark" and brightness(dark["paper"]) < 0.1, dark  # #111111
            assert brightness(dark["text"]) > 0.8 and brightness(dark["title"]) > 0.8, dark
            page.evaluate("() => { document.body.dataset.jpThemeLight = 'true'; }")  # the user picks JupyterLab Light
            light = wait_for(lambda: (lambda s: s if s and s["theme"] == "light" else None)(page.evaluate(JS_LOOK)), 10,
                             "the player to follow the switch to light")
            assert brightness(light["paper"]) > 0.95 and brightness(light["title"]) < 0.2, light
            assert dark["bar"] == light["bar"] == "rgb(0, 114, 178)"  # the bars keep their data colour
        finally:
            browser.close()
