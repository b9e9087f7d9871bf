"""Figures of the lottery-ticket search and of N:M sparsity: data in, the plotted values out."""
import numpy as np
import pytest

from kdviz.figures.lottery import mask_overlap, ticket_accuracy
from kdviz.figures.n_m import n_m_pattern, sparsity_comparison


def test_ticket_chart_plots_percentages_and_skips_unmeasured_controls():
    fig = ticket_accuracy([0.8, 0.64, 0.512], [0.95, 0.96, None], [None, 0.90, 0.85], 0.955)
    ticket, control = fig.data
    assert list(ticket.x) == pytest.approx([80.0, 64.0]) and list(ticket.y) == pytest.approx([95.0, 96.0])
    assert list(control.x) == pytest.approx([64.0, 51.2]) and list(control.y) == pytest.approx([90.0, 85.0])
    assert fig.layout.shapes[0].y0 == pytest.approx(95.5) and fig.layout.xaxis.type == "log"
    with pytest.raises(ValueError, match="fractions"):
        ticket_accuracy([80.0], [0.9], [None], None)
    with pytest.raises(ValueError, match="one kept share"):
        ticket_accuracy([0.8, 0.6], [0.9], [None], None)


def test_overlap_chart_one_trace_per_run():
    fig = mask_overlap({"ticket 1": ([0.5, 1.0], [0.9, 0.97]), "dense": ([1.0], [0.99])}, {"dense": "#000000"})
    assert [t.name for t in fig.data] == ["ticket 1", "dense"] and fig.data[1].line.color == "#000000"
    with pytest.raises(ValueError, match="2 epochs but 1 overlaps"):
        mask_overlap({"x": ([0.5, 1.0], [0.9])})


def test_pattern_blanks_pruned_cells_and_marks_groups():
    w = np.arange(1, 17, dtype=float).reshape(2, 8) * np.array([1, -1] * 4)
    keep = np.array([[1, 0, 1, 0, 0, 1, 1, 0]] * 2, dtype=bool)
    fig = n_m_pattern(w, keep, 2, 4, "fc1")
    z = np.array(fig.data[0].z, dtype=float)
    assert np.isnan(z[~keep]).all() and np.allclose(z[keep], np.abs(w[keep]))
    assert [s.x0 for s in fig.layout.shapes] == [3.5]
    with pytest.raises(ValueError, match="one shape"):
        n_m_pattern(w, keep[:, :4], 2, 4)


def test_comparison_bars():
    fig = sparsity_comparison(["dense", "2:4", "unstructured 50%"], [0.97, 0.95, None], [0.0, 0.5, 0.5], dense=0.97)
    assert list(fig.data[0].y) == [97.0, 95.0, None] and "waiting" in fig.data[0].text[2]
    with pytest.raises(ValueError, match="fractions"):
        sparsity_comparison(["a"], [97.0], [0.5])
