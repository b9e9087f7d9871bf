"""Theme helpers that fit titles and legends: wrapping, a legend under the plot, compact charts."""
import plotly.graph_objects as go
import pytest

from kdviz.figures import theme


def test_wrap_title_breaks_at_spaces_within_the_width():
    assert theme.wrap_title("Stage one loss fell ten times", width=10) == "Stage one<br>loss fell<br>ten times"
    assert theme.wrap_title("short", width=46) == "short"
    assert theme.wrap_title("averyveryverylongword x", width=5) == "averyveryverylongword<br>x"  # a long word keeps its line
    with pytest.raises(ValueError, match="width"):
        theme.wrap_title("x", width=0)


def test_legend_below_moves_the_legend_under_the_plot_and_makes_room():
    fig = go.Figure(go.Scatter(y=[1, 2]), layout={"margin": {"t": 70}})
    assert theme.legend_below(fig, y=-0.4, rows=2) is fig
    assert (fig.layout.legend.orientation, fig.layout.legend.yanchor, fig.layout.legend.y) == ("h", "top", -0.4)
    assert fig.layout.margin.b == 88 + 44 and fig.layout.margin.t == 70  # other margins kept
    assert theme.legend_below(go.Figure()).layout.legend.y == -0.28
    with pytest.raises(ValueError, match="row"):
        theme.legend_below(go.Figure(), rows=0)


def test_compact_splits_the_title_into_a_bold_headline_and_a_grey_line():
    fig = go.Figure(layout={"title": {"text": "<b>FSP loss fell 3.2x: the student's flows match the teacher's</b>"}})
    theme.compact(fig)
    text = fig.layout.title.text
    assert text.startswith("<b>FSP loss fell 3.2x</b><br><span") and "the student's flows match the teacher's" in text
    assert fig.layout.legend.y == -0.25 and fig.layout.height == 420 + 44 and fig.layout.margin.t == 40 + 44
    marked = go.Figure(layout={"title": {"text": "<b>a</b><br><i>kept: as is</i>"}})
    assert theme.compact(marked).layout.title.text == "<b>a</b><br><i>kept: as is</i>"
    paren = theme.compact(go.Figure(layout={"title": {"text": "Accuracy (stage 1 + 2)"}}))
    assert paren.layout.title.text.endswith("(stage 1 + 2)</span>")
