"""The QAT / LSQ charts: data in, the same numbers out, bad data named."""
from __future__ import annotations

import numpy as np
import pytest

from kdviz.figures.qat import accuracy_against_bits, step_size_curve, weight_grid_histogram


def test_step_size_curve_draws_each_layer_and_names_the_mover():
    fig = step_size_curve({"fc1": ([0, 10, 20], [0.1, 0.08, 0.05]), "fc2": ([0, 10, 20], [0.2, 0.2, 0.21])})
    assert [t.name for t in fig.data] == ["fc1", "fc2"]
    assert list(fig.data[0].y) == [0.1, 0.08, 0.05] and fig.layout.yaxis.type == "log"
    assert "fc1's changed most (0.50x" in fig.layout.title.text
    with pytest.raises(ValueError, match="positive and finite"):
        step_size_curve({"fc1": ([0], [0.0])})
    with pytest.raises(ValueError, match="2 step sizes for 1 training steps"):
        step_size_curve({"fc1": ([0], [0.1, 0.2])})


def test_grid_histogram_draws_every_level_and_counts_the_clipped_weights():
    counts, edges = np.array([10, 80, 10]), np.array([-1.5, -0.5, 0.5, 1.5])
    grid = np.array([-0.5, 0.0, 0.5])  # centres at -1 and +1 lie beyond the grid: 20% clipped
    fig = weight_grid_histogram(counts, edges, grid, "fc1", bits=2, step=7)
    xs = [x for x in fig.data[1].x if x is not None]
    assert xs == [-0.5, -0.5, 0.0, 0.0, 0.5, 0.5]
    assert "20.0% of weights beyond the grid are clipped" in fig.layout.title.text and "at step 7" in fig.layout.title.text
    with pytest.raises(ValueError, match="at least two finite levels"):
        weight_grid_histogram(counts, edges, [0.1])


def test_accuracy_against_bits_in_percent_with_fewer_bits_to_the_right():
    fig = accuracy_against_bits({"PTQ": {8: 0.98, 2: 0.5}, "LSQ": {2: 0.9}}, {"LSQ": "#CC79A7"}, float_accuracy=0.985)
    assert [t.name for t in fig.data] == ["PTQ", "LSQ"]
    assert list(fig.data[0].x) == [2, 8] and list(fig.data[0].y) == [50.0, 98.0]
    assert fig.data[1].line.color == "#CC79A7" and fig.layout.xaxis.autorange == "reversed"
    with pytest.raises(ValueError, match="no results"):
        accuracy_against_bits({})


def test_a_fine_grid_is_drawn_by_its_ends_and_the_title_says_who_leads_at_the_fewest_bits():
    from kdviz.figures.qat import MAX_DRAWN_LEVELS, accuracy_against_bits, weight_grid_histogram

    edges = np.linspace(-1, 1, 41)
    fine = weight_grid_histogram(np.ones(40), edges, np.linspace(-1, 1, 256), bits=8)
    grid = fine.data[-1]
    assert len([v for v in grid.x if v is not None]) == 2 * 2 and "256 levels, too fine to draw" in grid.name
    coarse = weight_grid_histogram(np.ones(40), edges, np.linspace(-1, 1, 4), bits=2)
    assert len([v for v in coarse.data[-1].x if v is not None]) == 2 * 4 and MAX_DRAWN_LEVELS >= 4
    lead = accuracy_against_bits({"PTQ": {8: 0.96, 2: 0.955}, "LSQ": {2: 0.964}})
    assert "at 2 bits LSQ 96.4 % against PTQ 95.5 %" in lead.layout.title.text
    behind = accuracy_against_bits({"PTQ": {8: 0.96, 3: 0.962}, "LSQ": {3: 0.958}})
    assert "at 3 bits PTQ 96.2 % against LSQ 95.8 %" in behind.layout.title.text
