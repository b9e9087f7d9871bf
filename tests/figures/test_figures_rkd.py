"""Relational-KD charts: data in, figure out (Park et al. 2019, eqs. 3-6)."""
from __future__ import annotations

import numpy as np
import pytest

from kdviz.figures.rkd import distance_heatmaps, rkd_loss_curve, rkd_series


def psi_d(e: np.ndarray) -> np.ndarray:
    d = np.sqrt(((e[:, None] - e[None]) ** 2).sum(-1))
    return d / d[~np.eye(len(e), dtype=bool)].mean()


def test_heatmaps_draw_both_matrices_on_one_scale_with_class_blocks_and_r():
    rng = np.random.default_rng(0)
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    t = psi_d(rng.normal(size=(8, 5)) + 4 * labels[:, None])
    s = psi_d(rng.normal(size=(8, 3)))
    fig = distance_heatmaps(t, s, labels, teacher_label="T", student_label="RKD D=25 A=50", teacher_colour="#0072B2",
                            student_colour="#56B4E9", step=40)
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), t)
    np.testing.assert_array_equal(np.asarray(fig.data[1].z), s)
    assert fig.data[0].coloraxis == fig.data[1].coloraxis and fig.layout.coloraxis.cmax == pytest.approx(max(t.max(), s.max()))
    upper = np.triu_indices(8, 1)
    r = np.corrcoef(t[upper], s[upper])[0, 1]
    title = fig.layout.title.text
    assert f"r = {r:.2f}" in title and "at step 40" in title and "RKD D=25 A=50 vs T" in title
    edges = sorted({sh.x0 for sh in fig.layout.shapes if sh.x0 == sh.x1})
    assert edges == [2.5, 4.5] and len(fig.layout.shapes) == 8  # 2 boundaries x 2 directions x 2 panels
    assert list(fig.layout.xaxis.ticktext) == ["0", "1", "2"] and list(fig.layout.xaxis.tickvals) == [1.0, 3.5, 6.0]
    assert any("#56B4E9" in a.text for a in fig.layout.annotations)
    assert "the same geometry" in distance_heatmaps(t, 3 * t, labels).layout.title.text


def test_heatmaps_refuse_bad_input():
    with pytest.raises(ValueError, match="same probe images"):
        distance_heatmaps(np.ones((3, 3)), np.ones((4, 4)), [0, 1, 2])
    with pytest.raises(ValueError, match="same probe images"):
        distance_heatmaps(np.ones((3, 3)), np.ones((3, 3)), [0, 1])
    with pytest.raises(ValueError, match="square pairwise-distance matrix"):
        distance_heatmaps(np.ones((3, 2)), np.ones((3, 2)), [0, 1, 2])
    with pytest.raises(ValueError, match="not finite"):
        distance_heatmaps(np.full((3, 3), np.nan), np.ones((3, 3)), [0, 1, 2])


def test_series_and_loss_curve():
    records = [{"kind": "step", "step": 1, "rkd/probe_distance": 9.0},
               {"kind": "eval", "step": 0, "rkd/probe_distance": 0.04, "rkd/probe_angle": 0.02, "rkd/distance_corr": 0.5},
               {"kind": "eval", "step": 5, "test_acc": 0.3},
               {"kind": "eval", "step": 10, "rkd/probe_distance": 0.01, "rkd/probe_angle": 0.004, "rkd/distance_corr": 0.9}]
    keys = {"distance loss": "rkd/probe_distance", "angle loss": "rkd/probe_angle", "r": "rkd/distance_corr"}
    steps, series = rkd_series(records, keys)
    assert steps == [0.0, 10.0] and series == {"distance loss": [0.04, 0.01], "angle loss": [0.02, 0.004], "r": [0.5, 0.9]}
    r = series.pop("r")
    fig = rkd_loss_curve(steps, series, correlation=r, colours=["#111111", "#222222"])
    assert [t.name for t in fig.data] == ["distance loss", "angle loss", "r(ψ_D teacher, student)"]
    assert [t.line.color for t in fig.data[:2]] == ["#111111", "#222222"] and list(fig.data[2].y) == [0.5, 0.9]
    assert fig.layout.yaxis.type == "log" and fig.data[2].yaxis == "y2"
    assert "fell 4x or more" in fig.layout.title.text
    rising = rkd_loss_curve([0, 1], {"distance loss": [0.01, 0.02]})
    assert "fell" not in rising.layout.title.text and len(rising.data) == 1
    assert rkd_series([], keys) == ([], {name: [] for name in keys})
    with pytest.raises(ValueError, match="series 'a': 1 values for 2 steps"):
        rkd_loss_curve([0, 1], {"a": [0.5]})
    with pytest.raises(ValueError, match="at least one series"):
        rkd_loss_curve([0], {})
