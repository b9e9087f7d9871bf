"""Log axes are labelled 1-2-5 per decade with whole numbers (plotly's own minor labels are bare
digits: "2" for both 0.2 and 20)."""
from __future__ import annotations

import numpy as np
import pytest

from kdviz.figures.quantization import compression_vs_accuracy, singular_spectrum
from kdviz.figures.theme import log_ticks


@pytest.mark.parametrize("values, expected", [
    ([0.23, 4.1], [0.2, 0.5, 1, 2, 5]),
    ([1.5, 32, 130], [1, 2, 5, 10, 20, 50, 100]),
    ([0.0, -1.0, np.nan, 3.0], [2]),
])
def test_ticks_cover_the_values_one_two_five_per_decade(values, expected):
    ticks = log_ticks(values)
    assert ticks["tickvals"] == pytest.approx(expected) and ticks["ticktext"] == [f"{t:g}" for t in expected]


def test_no_positive_value_no_ticks():
    assert log_ticks([0.0, -2.0]) == {}


def test_the_spectrum_and_the_compression_scatter_use_them():
    s = np.geomspace(4.0, 0.25, 30)
    assert list(singular_spectrum(s, 5).layout.yaxis.ticktext) == ["0.2", "0.5", "1", "2", "5"]
    points = [{"method": "k-means", "ratio": r, "accuracy": 0.9} for r in (3.0, 12.0, 40.0)]
    assert list(compression_vs_accuracy(points).layout.xaxis.ticktext) == ["2", "5", "10", "20", "50"]
