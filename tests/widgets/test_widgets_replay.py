"""The notebook replay bar (kdviz.widgets._replay.ReplayBar)."""
from types import SimpleNamespace

import pytest

from kdviz.widgets._replay import ReplayBar


def _snaps(n):
    return [SimpleNamespace(step=10 * i, epoch=i / 2) for i in range(n)]


def test_hidden_until_two_snapshots_then_scrubbing_draws_that_snapshot():
    drawn = []
    bar = ReplayBar(drawn.append)
    assert bar.layout.display == "none"
    bar.set_snapshots(_snaps(1))
    assert bar.layout.display == "none"
    snaps = _snaps(6)
    bar.set_snapshots(snaps)
    assert bar.layout.display == "flex"
    assert bar.play.max == bar.scrubber.max == 5 and bar.scrubber.value == 5
    assert bar.where.value == "epoch 2.5 · step 50"
    bar.scrubber.value = 2
    bar.flush()
    assert drawn and drawn[-1] is snaps[2]
    assert bar.where.value == "epoch 1.0 · step 20"


def test_draw_must_be_callable():
    with pytest.raises(TypeError, match="draw must be callable"):
        ReplayBar("not a function")
