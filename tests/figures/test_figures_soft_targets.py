"""Soft-target figures carry the numbers they claim to show."""
import numpy as np
import pytest

from kdviz.distill import entropy, soften
from kdviz.figures import soft_targets as figs


def test_probability_bars_show_softened_values():
    fig = figs.probability_bars([2, 7, 10], 5, ["a", "b", "c"])
    assert list(fig.data[0].y) == pytest.approx(soften([2, 7, 10], 5))
    assert list(fig.data[1].y) == pytest.approx(soften([2, 7, 10], 1))  # T = 1 outline
    assert "T = 5" in fig.layout.title.text
    changed = figs.probability_bars([2, 7, 10], 20, ["a", "b", "c"])
    assert changed.data[0].y[0] > fig.data[0].y[0]
    assert fig.data[0].marker.color == figs.TEACHER_COLOUR
    assert figs.probability_bars([2, 7, 10], 5, ["a", "b", "c"], colour="#0a0b0c").data[0].marker.color == "#0a0b0c"


def test_entropy_curve_marker_sits_on_curve():
    fig = figs.entropy_curve([2, 7, 10], 3.0, colour="#010101", marker_colour="#020202")
    curve, marker = fig.data[0], fig.data[1]
    assert curve.line.color == "#010101" and marker.marker.color == "#020202"
    assert fig.layout.xaxis.type == "log"
    assert marker.y[0] == pytest.approx(entropy(soften([2, 7, 10], 3.0)))
    i = int(np.argmin(np.abs(np.asarray(curve.x) - 10.0)))
    assert curve.y[i] == pytest.approx(entropy(soften([2, 7, 10], curve.x[i])))


def test_softmax_curves_one_line_per_temperature():
    fig = figs.softmax_curves((1, 5, 20), num_logits=8, seed=2)
    assert len(fig.data) == 3
    for trace, T in zip(fig.data, (1, 5, 20)):
        assert sum(trace.y) == pytest.approx(1.0)
        assert list(trace.y) == pytest.approx(soften(np.asarray(trace.x), T))
        assert all(-10 < x < 10 for x in trace.x)


def test_sample_image_flips_rows_for_display():
    img = np.arange(64, dtype=float).reshape(1, 8, 8) / 64
    fig = figs.sample_image(img)
    np.testing.assert_allclose(np.asarray(fig.data[0].z), img[0][::-1])


def _apply(bars: dict, curve: dict, frame: dict) -> tuple[dict, dict]:
    """What the browser player does with a frame (``Plotly.animate``/``restyle``/``relayout``), in Python."""
    bars["data"][0].update(y=frame["bars"]["y"], name=frame["bars"]["name"])
    bars["data"][1]["visible"] = frame["bars"]["reference_visible"]
    bars["layout"]["title"]["text"] = frame["bars"]["title"]
    curve["data"][-1].update(x=frame["marker"]["x"], y=frame["marker"]["y"], name=frame["marker"]["name"])
    return bars, curve


def test_a_frame_applied_to_figures_drawn_at_another_T_gives_what_the_figure_functions_draw():
    import json

    import plotly.io as pio

    z = np.random.default_rng(4).uniform(-9, 9, size=10)
    names = [f"c{i}" for i in range(10)]
    temps = (0.1, 0.35, 1.0, 2.5, 7.3, 100.0, 1000.0)
    frames = figs.soft_target_frames(z, temps, names)
    assert [f["T"] for f in frames] == list(temps)
    as_json = lambda fig: json.loads(pio.to_json(fig, validate=False))  # noqa: E731
    for T, frame in zip(temps, frames):
        bars, curve = _apply(as_json(figs.probability_bars(z, 3.0, names)), as_json(figs.entropy_curve(z, 3.0)), frame)
        want_bars, want_curve = as_json(figs.probability_bars(z, T, names)), as_json(figs.entropy_curve(z, T))
        assert bars["layout"]["title"]["text"] == want_bars["layout"]["title"]["text"], T
        assert bars["data"][0]["name"] == f"T = {T:g}" == want_bars["data"][0]["name"]
        p = np.exp((z - z.max()) / T) / np.exp((z - z.max()) / T).sum()  # eq. 1, recomputed here
        np.testing.assert_allclose(frame["bars"]["y"], p, rtol=1e-10)
        assert bars["data"][1]["visible"] is (T != 1.0) and (len(want_bars["data"]) == 2) is (T != 1.0)
        assert curve["data"][-1]["x"] == [T] and curve["data"][-1]["name"] == want_curve["data"][-1]["name"]
        assert curve["data"][-1]["y"][0] == pytest.approx(-(p * np.log(p)).sum(), rel=1e-9)
        runner_up = names[int(np.argsort(p)[-2])]
        assert f"runner-up class {runner_up} gets" in frame["bars"]["title"]


def test_the_uniform_label_sits_above_its_line_where_the_curve_cannot_reach():
    """Entropy never exceeds ln K, so a label above the ln K line (with headroom) cannot cross the curve."""
    fig = figs.entropy_curve(np.linspace(-5, 5, 10), 2.0)
    (label,) = [a for a in fig.layout.annotations if "ln 10" in a.text]
    assert label.yanchor == "bottom" and label.xanchor == "left"
    assert label.y == pytest.approx(np.log(10))
    assert fig.layout.yaxis.range[1] >= 1.1 * np.log(10) and max(fig.data[0].y) <= np.log(10) + 1e-12
