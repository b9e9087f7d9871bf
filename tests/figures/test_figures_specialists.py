"""The specialists' figures: the covariance ordered and outlined by cluster, the covered classes' bars."""
from __future__ import annotations

import numpy as np
import pytest

from kdviz.figures.specialists import SPECIALIST_LINE, confusable_matrix, covered_accuracy, stage_accuracy


def test_matrix_is_ordered_by_cluster_and_outlines_the_specialists():
    cov = np.arange(16, dtype=float).reshape(4, 4)
    cov = (cov + cov.T) / 2
    fig = confusable_matrix(cov, ["a", "b", "c", "d"], [(2, 0), (1,), (3,)], specialists=[(0, 2)])
    heat = fig.data[0]
    assert list(heat.x) == ["c", "a", "b", "d"]
    np.testing.assert_allclose(np.asarray(heat.z), cov[np.ix_([2, 0, 1, 3], [2, 0, 1, 3])])
    boxes = [(s.x0, s.x1, s.line.color, s.line.width) for s in fig.layout.shapes]
    assert boxes[0] == (-0.5, 1.5, SPECIALIST_LINE, 4) and boxes[1][:2] == (1.5, 2.5) and boxes[1][3] == 1.5
    with pytest.raises(ValueError, match="every class once"):
        confusable_matrix(cov, ["a", "b", "c", "d"], [(0, 1), (1, 2, 3)])


def test_covered_bars_write_each_gain():
    fig = covered_accuracy(["3", "5"], [0.9, 0.8], [0.95, 0.78], [40, 41])
    assert list(fig.data[0].y) == pytest.approx([90, 80]) and list(fig.data[1].y) == pytest.approx([95, 78])
    assert [a.text for a in fig.layout.annotations] == ["+5.0", "-2.0"]
    # each gain above its own pair: on the category axis a number is an index ("5" put it off the chart)
    assert fig.layout.xaxis.type == "category" and [a.x for a in fig.layout.annotations] == [0, 1]
    assert "+1.5 points" in fig.layout.title.text
    with pytest.raises(ValueError, match="between 0 and 1"):
        covered_accuracy(["3"], [90.0], [0.9])


def test_stage_curves_keep_their_colours_and_dashes():
    fig = stage_accuracy({"generalist": ([0, 1], [0.5, 0.9]), "specialist 1": ([1], [0.95])},
                         {"generalist": "#009E73", "specialist 1": "#CC79A7"}, {"specialist 1": "dot"})
    assert [t.line.dash for t in fig.data] == ["solid", "dot"] and list(fig.data[0].y) == [50, 90]
