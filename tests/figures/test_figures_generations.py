"""``kdviz.figures.generations``: every generation of a chain in its own colour, named in the legend.

A born-again chart drew every generation in one colour, so generation 2 could not be told from
generation 3 without reading the axis. These tests check that distinct generations get distinct
colours (and, past the palette's length, distinct marker symbols), that each seed's dot wears its
generation's colour, and that the legend names every generation with the colour its marks have.
"""
from __future__ import annotations

import pytest

from kdviz.figures.generations import (
    ASSISTANT_COLOUR, DIRECT_COLOUR, GROUP_COLOURS, VIA_COLOUR, generation_accuracy, group_styles,
)
from kdviz.palette import ROLE_COLORS, SERIES
from kdviz.present.generations import (
    ASSISTANT, ASSISTANT_GROUP, BORN_AGAIN, DIRECT_GROUP, VIA_GROUP, ChainPlan, GroupResult, chain_figures,
)

GENERATIONS = ["generation 0", "generation 1", "generation 2", "generation 3"]
PER_SEED = [[0.81, 0.85], [0.84, 0.80], [0.86, 0.83], [0.79, 0.88]]


def legend_entries(fig) -> dict[str, tuple[str, str]]:
    """``{name: (colour, symbol)}`` of every trace the legend lists."""
    return {t.name: (t.marker.color, t.marker.symbol) for t in fig.data if t.showlegend is not False}


def test_distinct_generations_get_distinct_colours_named_in_the_legend():
    fig = generation_accuracy(GENERATIONS, PER_SEED)
    means, seeds = fig.data[0], fig.data[1]
    colours = list(means.marker.color)
    assert len(set(colours)) == 4 and set(colours) <= set(SERIES)
    assert list(means.y) == pytest.approx([100 * sum(a) / 2 for a in PER_SEED])
    legend = legend_entries(fig)
    assert [name for name in legend if name.startswith("generation")] == GENERATIONS
    for generation, colour, symbol in zip(GENERATIONS, colours, means.marker.symbol):
        assert legend[generation] == (colour, symbol)  # the legend's key looks like the generation's marks
    # each seed's dot is in its generation's colour: seeds listed generation by generation
    assert list(seeds.marker.color) == [c for c in colours for _ in range(2)]
    assert list(seeds.x) == [g for g in GENERATIONS for _ in range(2)]
    assert {"mean over seeds (± 1 std)", "one seed"} <= set(legend)
    assert fig.layout.legend.yanchor == "top" and fig.layout.legend.y < 0  # under the plot, clear of the title


def test_generation_zero_wears_the_scratch_colour_and_the_teachers_blue_comes_last():
    colours = [c for c, _ in group_styles(len(GROUP_COLOURS))]
    assert colours[0] == ROLE_COLORS["scratch student"] and colours[1] == ROLE_COLORS["kd student"]
    assert colours[-1] == ROLE_COLORS["teacher"]  # the dashed teacher line would hide a blue generation
    assert sorted(colours) == sorted(SERIES)


@pytest.mark.parametrize("count", [2, 7, 8, 11, 32])
def test_no_two_generations_look_alike_even_past_the_palette(count):
    styles = group_styles(count)
    assert len(set(styles)) == count
    fig = generation_accuracy([f"generation {k}" for k in range(count)], [[0.5 + 0.01 * k] for k in range(count)])
    drawn = list(zip(fig.data[0].marker.color, fig.data[0].marker.symbol))
    assert drawn == styles
    assert len({colour for colour, _ in drawn}) == min(count, len(SERIES))


def test_given_colours_are_used_and_a_repeated_colour_changes_symbol():
    fig = generation_accuracy(["a", "b", "c"], [[0.9], [0.8], [0.7]], colours=["#111111", "#222222", "#111111"])
    assert list(fig.data[0].marker.color) == ["#111111", "#222222", "#111111"]
    symbols = list(fig.data[0].marker.symbol)
    assert symbols[0] != symbols[2]
    with pytest.raises(ValueError, match="one colour per generation: 3 generations"):
        generation_accuracy(["a", "b", "c"], [[0.9], [0.8], [0.7]], colours=["#111111"])
    with pytest.raises(ValueError, match="whole number"):
        group_styles(-1)


def test_a_generation_without_an_evaluation_keeps_its_colour_and_legend_entry():
    fig = generation_accuracy(GENERATIONS[:3], [[0.8], [0.82], []])
    assert fig.data[0].y[2] is None
    assert len(set(fig.data[0].marker.color)) == 3
    assert "generation 2" in legend_entries(fig)
    assert list(fig.data[1].x) == GENERATIONS[:2]


def result(group: str, accuracies: tuple[float, ...], params: int) -> GroupResult:
    return GroupResult(group, accuracies, len(accuracies), len(accuracies), params, tuple(range(len(accuracies))))


def test_chain_figures_colour_each_generation_and_each_run_of_the_assistant_chain():
    born = [result(f"generation {k}", (0.8 + 0.01 * k, 0.82), 610) for k in range(4)]
    (fig, _caption), = chain_figures(ChainPlan(BORN_AGAIN, ()), born)
    assert len(set(fig.data[0].marker.color)) == 4
    runs = [result(ASSISTANT_GROUP, (0.94,), 2410), result(DIRECT_GROUP, (0.90,), 610), result(VIA_GROUP, (0.91,), 610)]
    per_run, gap_chart = (f for f, _ in chain_figures(ChainPlan(ASSISTANT, (), teacher_params=85002), runs, 0.96))
    assert list(per_run.data[0].marker.color) == [ASSISTANT_COLOUR, DIRECT_COLOUR, VIA_COLOUR]
    assert ROLE_COLORS["teacher"] not in per_run.data[0].marker.color  # the teacher's dashed line stays its own
    direct, via = gap_chart.data  # a student keeps its colour on the capacity-gap chart
    assert (direct.line.color, via.line.color) == (DIRECT_COLOUR, VIA_COLOUR)
