"""Pruning figures show the numbers they are given and say what to notice."""
import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from kdviz.figures import pruning as figs
from kdviz.models import build_model
from kdviz.prune import magnitude_masks, size_report, unit_norms, prune_structured


def test_mask_heatmap_from_bool_mask_and_from_snapshot_grid():
    mask = np.zeros((4, 6), bool)
    mask[:, :3] = True
    fig = figs.mask_heatmap(mask, "fc1", step=12)
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), 100.0 * mask)
    assert "50.0% of weights kept at step 12" in fig.layout.title.text
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text

    grid = np.array([[100, 50], [0, 25]], np.uint8)  # a snapshot's percent grid, one cell a 3 x 7 block
    snap_fig = figs.mask_heatmap(grid, "fc2", block=(3, 7), step=3)
    assert snap_fig.data[0].dx == 7 and snap_fig.data[0].dy == 3
    np.testing.assert_array_equal(np.asarray(snap_fig.data[0].z), grid)
    assert "3 x 7 block" in snap_fig.layout.title.text and "43.8% of weights kept at step 3" in snap_fig.layout.title.text


def test_mask_heatmap_is_a_pure_function_of_one_snapshot():
    a, b = np.eye(3, dtype=bool), np.ones((3, 3), bool)
    first, second, again = figs.mask_heatmap(a, "x"), figs.mask_heatmap(b, "x"), figs.mask_heatmap(a, "x")
    assert first.to_json() == again.to_json() != second.to_json()


def test_weight_histogram_marks_the_threshold():
    edges = np.linspace(-1, 1, 11)
    counts = np.arange(10)
    fig = figs.weight_histogram(counts, edges, "fc1", thresholds=0.3, pruned=123)
    bar = fig.data[0]
    np.testing.assert_allclose(bar.x, (edges[:-1] + edges[1:]) / 2)
    np.testing.assert_allclose(bar.y, counts)
    xs = sorted(s.x0 for s in fig.layout.shapes if s.type == "line")
    assert xs == pytest.approx([-0.3, 0.3])
    assert "45 weights kept" in fig.layout.title.text and "123" in fig.layout.title.text
    assert "9 survivors drifted inside the threshold" in fig.layout.title.text  # bins [-0.2, 0] (4) and [0, 0.2] (5)
    gap = figs.weight_histogram([3, 0, 0, 3], [-1, -0.5, 0, 0.5, 1], "fc2", thresholds=0.5)
    assert "a gap around zero" in gap.layout.title.text
    with pytest.raises(ValueError, match="len\\(edges\\)"):
        figs.weight_histogram(counts, edges[:-1], "fc1")


def test_sparsity_bars_and_targets():
    fig = figs.sparsity_bars(["fc1", "fc2", "fc3"], [0.92, 0.91, 0.74], targets=[0.92, 0.91, 0.74])
    assert list(fig.data[0].y) == pytest.approx([92, 91, 74])
    assert list(fig.data[0].text) == ["8.0% kept", "9.0% kept", "26.0% kept"]
    assert list(fig.data[1].y) == pytest.approx([92, 91, 74])
    assert fig.layout.yaxis.title.text == "weights pruned (%)"
    assert "unweighted mean 85.7%" in fig.layout.title.text
    sized = figs.sparsity_bars(["fc1", "fc2"], [0.9, 0.5], sizes=[900, 100], colour="#123456")
    assert "86.0% of all weights pruned" in sized.layout.title.text
    assert sized.data[0].marker.color == "#123456" and fig.data[0].marker.color == figs.PRUNED  # the run's colour, as data
    with pytest.raises(ValueError, match="2 layers but 3"):
        figs.sparsity_bars(["a", "b"], [0.1, 0.2, 0.3])


def test_accuracy_vs_sparsity_current_point_in_title():
    fig = figs.accuracy_vs_sparsity({"pruned": ([0, 0.5, 0.9], [0.98, 0.97, 0.6])}, baseline=0.98, current=(0.5, 0.97))
    assert list(fig.data[0].x) == pytest.approx([0, 50, 90]) and list(fig.data[0].y) == pytest.approx([98, 97, 60])
    assert fig.data[-1].x[0] == pytest.approx(50)
    assert "50.0% of weights pruned: 97.00% test accuracy" in fig.layout.title.text


def test_sensitivity_lines_name_the_most_sensitive_layer():
    curves = {"fc1.weight": [(0.0, 0.98), (0.9, 0.97)], "fc3.weight": [(0.0, 0.98), (0.9, 0.70)]}
    fig = figs.sensitivity_lines(curves, baseline=0.98)
    assert [t.name for t in fig.data] == ["fc1", "fc3"]
    assert list(fig.data[1].y) == pytest.approx([98, 70])
    assert fig.layout.title.text.startswith("<b>fc3 is the most sensitive layer (loses 28.0 points)")


def test_filter_norm_bars_sorted_and_coloured_by_kept():
    torch.manual_seed(0)
    model = build_model("lenet5", input_shape=(1, 8, 8))
    result = prune_structured(model, {"conv1": 0.25})
    norms = unit_norms(model)["conv1"]
    fig = figs.filter_norm_bars(norms, "conv1", kept=result.kept["conv1"].tolist())
    bar = fig.data[0]
    np.testing.assert_allclose(bar.y, np.sort(norms)[::-1])
    removed = [c for c in bar.marker.color if c == figs.REMOVED]
    assert len(removed) == 5 and all(c == figs.REMOVED for c in bar.marker.color[-5:])
    assert "5 of 20 units removed" in fig.layout.title.text


def test_storage_bars_from_a_size_report():
    torch.manual_seed(0)
    model = build_model("lenet300", input_shape=(1, 28, 28))
    magnitude_masks(model, 0.9).apply(model)
    rows = size_report(model).rows()
    fig = figs.storage_bars(rows)
    assert isinstance(fig, go.Figure) and len(fig.data) == 3
    assert list(fig.data[0].x) == ["fc1", "fc2", "fc3"]
    assert fig.data[2].y[0] == pytest.approx(rows[0]["relative-index bytes"] / 1024)


def test_accuracy_over_training_names_the_sparsity_and_takes_the_run_colour():
    from kdviz.figures.pruning_live import accuracy_over_training

    records = [{"kind": "eval", "epoch": 0.5, "test_acc": 0.9}, {"kind": "step", "epoch": 0.7, "loss": 1.0},
               {"kind": "eval", "epoch": 1.0, "test_acc": 0.95}]
    fig = accuracy_over_training(records, dense_accuracy=0.97, epoch=0.5, sparsity=0.81, colour="#ABCDEF")
    assert list(fig.data[0].y) == pytest.approx([90.0, 95.0]) and fig.data[0].line.color == "#ABCDEF"
    assert "95.00% test accuracy at 81% sparsity" in fig.layout.title.text
    assert "sparsity" not in accuracy_over_training(records).layout.title.text
    with pytest.raises(ValueError, match="dense_accuracy"):
        accuracy_over_training(records, dense_accuracy=97.0)


def test_mask_heatmap_sends_whole_percents_as_bytes():
    """Issue 14: the mask travels at every slider move, so its cells go as uint8 typed data."""
    import plotly.io as pio

    from kdviz.figures.pruning import mask_heatmap

    grid = np.random.default_rng(0).integers(0, 101, (128, 112)).astype(np.uint8)
    fig = mask_heatmap(grid, "fc1", block=(3, 7))
    assert fig.data[0].z.dtype == np.uint8 and np.array_equal(fig.data[0].z, grid)
    assert len(pio.to_json(fig.to_dict(), validate=False)) < 40_000  # float64 cells made it 130 KB
    bools = mask_heatmap(np.eye(3, dtype=bool), "fc3")
    assert bools.data[0].z.tolist() == [[100, 0, 0], [0, 100, 0], [0, 0, 100]]
    assert "33.3% of weights kept" in bools.layout.title.text
