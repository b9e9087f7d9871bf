"""Attention-transfer charts: data in, figure out (Zagoruyko & Komodakis 2017, section 3.1)."""
from __future__ import annotations

import numpy as np
import pytest

from kdviz.figures.attention import attention_distance_curve, attention_maps, distance_series


def unit(m: np.ndarray) -> np.ndarray:
    return m / np.linalg.norm(m)


def test_maps_draw_the_given_arrays_on_one_scale_and_title_the_distance():
    rng = np.random.default_rng(0)
    image, t, s = rng.random((8, 8)), unit(rng.random((4, 4))), unit(rng.random((4, 4)))
    fig = attention_maps(image[None], t, s, "stage2_out", teacher_label="T", student_label="AT β=2",
                         teacher_colour="#0072B2", student_colour="#000000")
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), image)
    np.testing.assert_array_equal(np.asarray(fig.data[1].z), t)
    np.testing.assert_array_equal(np.asarray(fig.data[2].z), s)
    assert fig.data[1].coloraxis == fig.data[2].coloraxis == "coloraxis"
    assert fig.layout.coloraxis.cmin == 0 and fig.layout.coloraxis.cmax == pytest.approx(max(t.max(), s.max()))
    title = fig.layout.title.text
    assert "stage2_out" in title and f"= {np.linalg.norm(t - s):.2f}" in title and "AT β=2 vs T" in title
    titles = [a.text for a in fig.layout.annotations]
    assert any("#000000" in a and "AT β=2 attention" in a for a in titles) and any("#0072B2" in a for a in titles)
    assert f"= {0.0:.2f}" in attention_maps(image, t, t, "x").layout.title.text


def test_maps_refuse_bad_input():
    with pytest.raises(ValueError, match="same size"):
        attention_maps(np.zeros((8, 8)), np.ones((4, 4)), np.ones((2, 2)), "x")
    with pytest.raises(ValueError, match="2-D attention map"):
        attention_maps(np.zeros((8, 8)), np.ones(4), np.ones(4), "x")
    with pytest.raises(ValueError, match="not finite"):
        attention_maps(np.zeros((8, 8)), np.full((2, 2), np.nan), np.ones((2, 2)), "x")


def test_distance_series_and_curve():
    records = [{"kind": "step", "step": 1, "loss": 2.0},
               {"kind": "eval", "step": 0, "at/probe_loss": 3.0, "at/probe_loss/a": 0.9, "at/probe_loss/b": 0.6},
               {"kind": "eval", "step": 10, "at/probe_loss": 1.0, "at/probe_loss/a": 0.3, "at/probe_loss/b": 0.2}]
    steps, distances = distance_series(records, "at/probe_loss")
    assert steps == [0.0, 10.0] and distances == {"a": [0.9, 0.3], "b": [0.6, 0.2]}
    fig = attention_distance_curve(steps, distances, colours=["#111111", "#222222"])
    assert [t.name for t in fig.data] == ["a", "b"] and list(fig.data[1].y) == [0.6, 0.2]
    assert [t.line.color for t in fig.data] == ["#111111", "#222222"]
    assert "fell 3x" in fig.layout.title.text
    assert distance_series([], "at/probe_loss") == ([], {})
    with pytest.raises(ValueError, match="pair 'a': 1 distances for 2 steps"):
        attention_distance_curve([0, 1], {"a": [0.5]})
    with pytest.raises(ValueError, match="at least one pair"):
        attention_distance_curve([0], {})
