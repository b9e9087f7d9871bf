"""ProjectionNet's charts: data in, figure out (bits, p(class), accuracy against bits, loss parts)."""
from __future__ import annotations

import numpy as np
import pytest

from kdviz.figures.projection import accuracy_against_bits, bit_patterns, loss_parts_curve, loss_parts_series


def test_bit_patterns_draw_the_bits_and_the_softmax_with_the_share_read_right():
    bits = np.array([[1, 0, 0, 1, 1, 0], [0, 0, 1, 1, 0, 1], [1, 1, 1, 0, 0, 0]], dtype=np.uint8)
    probs = np.array([[0.7, 0.3], [0.2, 0.8], [0.9, 0.1]])
    fig = bit_patterns(bits, 2, 3, [0, 0, 0], probs, step=40)
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), bits)
    np.testing.assert_allclose(np.asarray(fig.data[1].z), probs)
    assert list(fig.data[0].y) == ["#0: a 0", "#1: a 0", "#2: a 0"]
    assert "Step 40" in fig.layout.title.text and "67%" in fig.layout.title.text  # 2 of 3 argmax are class 0
    assert [s.x0 for s in fig.layout.shapes] == [2.5]  # one line between the two hash functions
    with pytest.raises(ValueError, match=r"\(n, 6\)"):
        bit_patterns(bits[:, :5], 2, 3, [0, 0, 0], probs)
    with pytest.raises(ValueError, match="only 0 and 1"):
        bit_patterns(bits * 2, 2, 3, [0, 0, 0], probs)


def test_accuracy_against_bits_sorts_by_bits_and_leaves_out_runs_without_an_evaluation():
    points = [{"bits": 64, "accuracy": 0.9, "bytes": 100, "trainer_accuracy": 0.97, "trainer_bytes": 900},
              {"bits": 8, "accuracy": 0.4, "bytes": 50, "trainer_accuracy": 0.95, "trainer_bytes": 900},
              {"bits": 16, "accuracy": None, "bytes": 60}]
    fig = accuracy_against_bits(points)
    projection, trainer = fig.data
    assert list(projection.x) == [8, 64] and list(projection.y) == pytest.approx([40.0, 90.0])
    assert list(trainer.y) == pytest.approx([95.0, 97.0]) and [c[0] for c in projection.customdata] == [50, 100]
    assert "+50.0 points" in fig.layout.title.text and fig.layout.xaxis.type == "log"


def test_loss_parts_read_from_step_records_and_drawn_per_term():
    records = [{"kind": "eval", "step": 0}, {"kind": "step", "step": 1, "a/t": 2.0, "a/d": 1.5, "a/l": 2.2},
               {"kind": "step", "step": 2, "a/t": 1.0, "a/d": 1.7, "a/l": 1.1}]
    steps, parts = loss_parts_series(records, {"trainer_ce": "a/t", "distill": "a/d", "label": "a/l"})
    assert steps == [1.0, 2.0] and parts["distill"] == [1.5, 1.7]
    fig = loss_parts_curve(steps, parts)
    assert [t.name.split(":")[0] for t in fig.data] == ["λ1 L_θ", "λ2 L_p", "λ3 L̂_p"]
    assert "λ2 L_p is the largest term now (1.70)" in fig.layout.title.text
    with pytest.raises(ValueError, match="3 values for 2 steps"):
        loss_parts_curve(steps, {"x": [1, 2, 3]})
