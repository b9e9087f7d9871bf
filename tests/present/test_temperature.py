"""The one temperature grid of both UIs: bounds, nice values, nearest value on a log scale."""
import math

import numpy as np
import pytest

from kdviz.present import temperature as tg


def test_the_default_grid_spans_the_range_with_nice_values():
    grid = tg.TEMPERATURES
    assert grid[0] == tg.T_MIN == 0.1 and grid[-1] == tg.T_MAX == 100.0
    assert list(grid) == sorted(set(grid))
    for nice in (0.5, 1.0, 2.0, 4.0, 5.0, 10.0, 20.0, 80.0):
        assert nice in grid
    steps = np.diff(np.log(grid))
    assert steps.max() < math.log(1.34) and steps.min() > math.log(1.19)  # about a quarter of an octave each


def test_a_grid_with_other_bounds_includes_both_ends_and_nothing_beyond():
    grid = tg.temperature_grid(0.35, 7.0)
    assert grid[0] == 0.35 and grid[-1] == 7.0
    assert grid[1:-1] == (0.4, 0.5, 0.6, 0.8, 1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0)
    assert tg.temperature_grid(2.0, 3.0) == (2.0, 2.5, 3.0)
    for low, high in ((5.0, 5.0), (0.0, 1.0), (3.0, 1.0), (1.0, float("inf"))):
        with pytest.raises(ValueError, match="t_m"):
            tg.temperature_grid(low, high)


def test_nearest_temperature_is_nearest_on_a_log_scale():
    assert tg.nearest_temperature(3.7) == 4.0  # |log 3.7 - log 4| < |log 3.7 - log 3|
    assert tg.nearest_temperature(2.2) == 2.0 and tg.nearest_temperature(2.3) == 2.5  # geometric midpoint 2.236
    assert tg.nearest_temperature(1000.0) == 100.0 and tg.nearest_temperature(0.001) == 0.1
    assert tg.nearest_temperature(6.9, options=(1.0, 7.0, 50.0)) == 7.0
    for bad in (0.0, -2.0, float("nan")):
        with pytest.raises(ValueError, match="positive"):
            tg.nearest_temperature(bad)


def test_slider_temperature_check_names_the_range():
    assert tg.check_slider_temperature(42.0) == 42.0
    assert tg.check_slider_temperature(0.5, t_min=0.5, t_max=2.0) == 0.5
    with pytest.raises(ValueError, match=r"\[0.5, 2\] for the slider, got 3"):
        tg.check_slider_temperature(3.0, t_min=0.5, t_max=2.0)
    with pytest.raises(ValueError, match="finite"):
        tg.check_slider_temperature(float("inf"))
    assert tg.format_temperature(4.0) == "4" and tg.format_temperature(0.12) == "0.12"
