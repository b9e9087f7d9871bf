"""The replay figure: frames, controls and fixed axes (kdviz.figures.replay)."""
import plotly.graph_objects as go
import pytest

from kdviz.figures.replay import frame_indices, replay


def _curve(n: int) -> go.Figure:
    xs = list(range(n))
    return go.Figure(go.Scatter(x=xs, y=[2.0 * x + 1 for x in xs]), layout={"title": {"text": f"after {n}"}})


def test_replay_holds_every_frame_and_ends_on_the_last():
    frames = [_curve(n) for n in (2, 5, 9)]
    fig = replay(frames, ["a", "b", "c"])
    assert [f.name for f in fig.frames] == ["f0", "f1", "f2"]
    assert list(fig.frames[1].data[0].y) == [1.0, 3.0, 5.0, 7.0, 9.0]
    assert list(fig.data[0].y) == list(frames[-1].data[0].y)
    assert fig.frames[0].layout.title.text == "after 2"
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["a", "b", "c"]
    assert list(steps[1].args[0]) == ["f1"]
    assert fig.layout.sliders[0].active == 2
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["▶ Play", "❚❚ Pause"]


def test_axes_are_fixed_to_hold_every_frame():
    fig = replay([_curve(3), _curve(11)], ["a", "b"])
    lo, hi = fig.layout.yaxis.range
    assert lo < 1.0 and hi > 21.0 and hi < 23.0  # 4 % padding around 1..21
    lo, hi = fig.layout.xaxis.range
    assert lo < 0 and 10 < hi < 11
    assert fig.layout.xaxis.autorange is False


def test_bars_keep_zero_in_range():
    bars = [go.Figure(go.Bar(x=["a", "b"], y=[v, v + 1])) for v in (5.0, 7.0)]
    lo, hi = replay(bars, ["1", "2"]).layout.yaxis.range
    assert lo <= 0 and 8 < hi < 9


@pytest.mark.parametrize("frames, labels, message", [
    ([], [], "at least one frame"),
    ([_curve(2)], ["a", "b"], "1 frames but 2 labels"),
    ([_curve(2), go.Figure([go.Scatter(y=[1]), go.Scatter(y=[2])])], ["a", "b"], "same number of traces"),
])
def test_bad_frames_are_refused_with_the_reason(frames, labels, message):
    with pytest.raises(ValueError, match=message):
        replay(frames, labels)


def test_frame_indices_spread_and_keep_both_ends():
    picks = frame_indices(1000, 9)
    assert picks[0] == 0 and picks[-1] == 999 and len(picks) == 9
    assert all(b - a > 100 for a, b in zip(picks, picks[1:]))
    assert frame_indices(4, 9) == [0, 1, 2, 3]
    assert frame_indices(0, 9) == []
    with pytest.raises(ValueError):
        frame_indices(5, 0)
