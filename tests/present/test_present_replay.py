"""Replays of a run's snapshots (kdviz.present.replay) on snapshots a real run wrote."""
from types import SimpleNamespace

import plotly.graph_objects as go

from kdviz.present.replay import replay_figure, snapshot_label


def _snap(step: int) -> SimpleNamespace:
    return SimpleNamespace(step=step, epoch=step / 10, arrays={"w": [step, step * 2]})


def _draw(snapshot) -> go.Figure:
    return go.Figure(go.Bar(x=["a", "b"], y=snapshot.arrays["w"]))


def test_replay_draws_a_spread_of_snapshots_with_labels():
    snaps = [_snap(s) for s in range(0, 200, 2)]
    fig = replay_figure(snaps, _draw, max_frames=5)
    assert len(fig.frames) == 5
    assert list(fig.frames[0].data[0].y) == [0, 0]
    assert list(fig.frames[-1].data[0].y) == [198, 396]
    assert fig.layout.sliders[0].steps[-1].label == "epoch 19.8 · step 198"


def test_nothing_to_replay_gives_none():
    assert replay_figure([], _draw) is None
    assert replay_figure([_snap(1)], _draw) is None
    assert replay_figure([_snap(1), _snap(2)], lambda s: None) is None


def test_undrawable_and_odd_frames_are_skipped():
    def draw(s):
        if s.step == 2:
            return None
        if s.step == 4:
            return go.Figure([go.Bar(y=[1]), go.Bar(y=[2])])
        return _draw(s)
    fig = replay_figure([_snap(s) for s in range(6)], draw)
    assert [st.label.split("step ")[1] for st in fig.layout.sliders[0].steps] == ["0", "1", "3", "5"]


def test_snapshot_label():
    assert snapshot_label(_snap(35)) == "epoch 3.5 · step 35"
