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
