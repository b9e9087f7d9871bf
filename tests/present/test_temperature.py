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


def test_frame_temperatures_add_a_typed_T_as_a_stop_of_its_own():
    assert tg.frame_temperatures() == tg.TEMPERATURES
    with_typed = tg.frame_temperatures(7.3)
    assert 7.3 in with_typed and len(with_typed) == len(tg.TEMPERATURES) + 1 and list(with_typed) == sorted(with_typed)
    assert tg.frame_temperatures(4.0) == tg.TEMPERATURES  # already a stop
    assert tg.frame_temperatures(1000.0)[-1] == 1000.0 and tg.frame_temperatures(0.01)[0] == 0.01
    for bad in (0.0, -2.0, float("nan")):
        with pytest.raises(ValueError):
            tg.frame_temperatures(bad)


def test_explorer_spec_holds_one_frame_per_stop_and_an_id_that_follows_the_content():
    z = np.random.default_rng(0).normal(0, 4, size=10)
    names = [str(i) for i in range(10)]
    spec = tg.explorer_spec(z, names, typed_T=7.3)
    assert spec["temperatures"] == list(tg.frame_temperatures(7.3)) and len(spec["frames"]) == len(spec["labels"])
    i = tg.stop_index(spec, 7.3)
    assert spec["labels"][i] == "7.3" and spec["frames"][i]["T"] == 7.3
    assert spec["frames"][i]["caption"].startswith("Filled bars: T = 7.3;")
    e = np.exp((z - z.max()) / 7.3)
    np.testing.assert_allclose(spec["frames"][i]["bars"]["y"], e / e.sum(), rtol=1e-10)
    assert "ln 10" in spec["curve_caption"] and spec["bars"]["data"][0]["type"] == "bar"
    assert tg.stop_index(spec, 7.0) == i and tg.stop_index(spec, 4.1) == spec["labels"].index("4")
    assert tg.explorer_spec(z, names, 7.3)["id"] == spec["id"]
    assert tg.explorer_spec(z, names)["id"] != spec["id"] and tg.explorer_spec(z + 1e-6, names, 7.3)["id"] != spec["id"]
    with pytest.raises(ValueError, match="one finite logit per class"):
        tg.explorer_spec(z[:5], names)
    with pytest.raises(ValueError, match="one finite logit per class"):
        tg.explorer_spec(np.full(10, np.nan), names)

