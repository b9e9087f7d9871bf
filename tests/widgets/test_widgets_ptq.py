"""``PTQExplorer`` without a browser: control moves update the FigureWidgets with numbers recomputed here.

The per-layer accuracies are checked against a plain torch forward pass with the weights quantized by
hand (symmetric min-max, Jacob et al. eq. 1), never read back from the code under test.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from _support.models import trained_digits_mlp
from kdviz.present.ptq import PTQSettings
from kdviz.widgets.ptq import PTQExplorer


@pytest.fixture(scope="module")
def model(digits):
    return trained_digits_mlp(digits, hidden=[32, 16], seed=2, steps=150)


def hand_quantized_accuracy(model, digits, layer: str, bits: int) -> float:
    m = copy.deepcopy(model)
    with torch.no_grad():
        w = getattr(m, layer).weight
        qmax = 2 ** (bits - 1) - 1
        scale = w.abs().max() / qmax
        w.copy_(torch.clamp(torch.round(w / scale), -qmax, qmax) * scale)
        return float((m(digits.test_images).argmax(1) == digits.test_labels).double().mean())


@pytest.fixture(scope="module")
def explorer(model, digits):
    return PTQExplorer(model, digits, PTQSettings(method="minmax", bits=4, uniform_bits=3, act_bits=None))


def test_moving_the_bits_redraws_the_layer_view(explorer, model, digits):
    fig = explorer.noise_chart.widget
    before = list(fig.data[1].y)
    assert list(fig.data[0].x) == ["fc1", "fc2", "fc3"]
    explorer.bits.value = 2
    explorer.flush()
    drops = np.asarray(fig.data[1].y, dtype=float)
    expected = [100 * (explorer.evaluator.float_accuracy - hand_quantized_accuracy(model, digits, n, 2))
                for n in ("fc1", "fc2", "fc3")]
    assert np.allclose(drops, expected, atol=1e-9) and list(drops) != before
    worst = ("fc1", "fc2", "fc3")[int(np.argmax(drops))]
    assert f"{worst} breaks accuracy first at 2 bits" in fig.layout.title.text


def test_uniform_bits_and_range_controls_update_the_other_charts(explorer):
    explorer.uniform_bits.value = 3
    explorer.flush()
    assert "uniform 3 bits" in explorer.bits_chart.widget.layout.annotations[0].text
    updates = explorer.size_chart.updates
    explorer.uniform_bits.value = 5
    explorer.per_channel.value = True
    explorer.method.value = "mse"
    explorer.act_bits.value = 8
    explorer.flush()
    assert "uniform 5 bits" in explorer.bits_chart.widget.layout.annotations[0].text
    assert explorer.size_chart.updates > updates
    assert explorer.study.settings == PTQSettings("mse", explorer.bits.value, 5, True, 8)
    mixed = explorer.study.equal.mixed
    assert list(explorer.bits_chart.widget.data[0].y) == [mixed.bits[n] for n in ("fc1", "fc2", "fc3")]
    assert "At the size of uniform 5 bits" in explorer.info.value


def test_bad_settings_are_refused(model, digits):
    with pytest.raises(ValueError, match="unknown range method 'median'"):
        PTQExplorer(model, digits, PTQSettings(method="median"))
    with pytest.raises(ValueError, match="uniform width 2 to 8"):
        PTQExplorer(model, digits, PTQSettings(uniform_bits=9))
