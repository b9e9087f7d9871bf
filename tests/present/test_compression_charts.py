"""The pruning charts of a snapshot are kept per snapshot (issue 14: a revisited slider position
redraws at once) and are the very figures the figure functions draw."""
import copy

import numpy as np
import torch

from kdviz.data import load_dataset
from kdviz.figures.pruning import mask_heatmap, sparsity_bars
from kdviz.methods.prune import read_prune_arrays
from kdviz.models import build_model
from kdviz.present import compression_charts
from kdviz.present.compression_charts import layer_charts, sparsity_chart
from kdviz.prune import MaskedEvaluator
from kdviz.prune.explore import slider_arrays


def test_a_revisited_position_reuses_its_figures_and_they_equal_fresh_ones():
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = build_model("lenet300", input_shape=data.input_shape, num_classes=10).eval()
    ev = MaskedEvaluator(copy.deepcopy(model), data.test_images, data.test_labels)
    at = {s: read_prune_arrays(slider_arrays(ev, ev.masks_at(s))) for s in (0.5, 0.9)}
    first = layer_charts(at[0.9], "fc1")
    again = layer_charts(read_prune_arrays(slider_arrays(ev, ev.masks_at(0.9))), "fc1")  # a new snapshot object
    assert again["mask"] is first["mask"] and again["histogram"] is first["histogram"]
    other = layer_charts(at[0.5], "fc1")
    assert other["mask"] is not first["mask"] and other["mask"].layout.title.text != first["mask"].layout.title.text
    grid, block = at[0.9].mask("fc1")
    assert first["mask"].to_dict() == mask_heatmap(grid, "fc1", block=block).to_dict()
    bars = sparsity_chart(at[0.9])
    assert sparsity_chart(at[0.9]) is bars
    assert bars.to_dict() == sparsity_bars(at[0.9].layers, at[0.9].sparsity, sizes=at[0.9].weights).to_dict()
    assert sparsity_chart(at[0.9], live=True) is not bars  # other arguments, another figure
    first.pop("mask")  # the caller's dict is its own
    assert "mask" in layer_charts(at[0.9], "fc1")


def test_the_figure_cache_is_bounded():
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = build_model("lenet300", input_shape=data.input_shape, num_classes=10).eval()
    ev = MaskedEvaluator(model, data.test_images, data.test_labels, positions=0)
    for i in range(compression_charts.FIGURE_CACHE + 5):
        sparsity_chart(read_prune_arrays(slider_arrays(ev, ev.masks_at(i / 100))))
    assert len(compression_charts._figures) <= compression_charts.FIGURE_CACHE


def test_quantized_charts_equal_the_figure_functions_and_are_kept_per_choice():
    from kdviz.figures.quantization import index_map_heatmap
    from kdviz.figures.quantization_explorer import levels_histogram, levels_table
    from kdviz.present.compression_charts import quantized_charts
    from kdviz.quant import SliderEvaluator
    from kdviz.quant.explore import MethodExplorer, QuantChoice, layer_histogram

    data = load_dataset("digits")
    torch.manual_seed(0)
    model = build_model("lenet300", input_shape=data.input_shape, num_classes=10).eval()
    explorer = MethodExplorer(SliderEvaluator(model, data.test_images, data.test_labels))
    for choice in (QuantChoice("kmeans", 3), QuantChoice("uniform", 5, per_channel=True)):
        q = explorer.quantize(choice)
        charts = quantized_charts(explorer.evaluator, q, "fc2")
        counts, edges = layer_histogram(explorer.evaluator, "fc2")
        fresh = levels_histogram(counts, edges, q.levels["fc2"], "fc2", choice.label(), choice.bits, q.n_weights["fc2"],
                                 shared=choice.kind.shared, per_row=q.per_row)
        assert charts["histogram"].to_dict() == fresh.to_dict()
        # fc2 of LeNet-300-100 is 100 x 300: its 300 input columns are sampled to 128, numbered 0..299
        rows, cols = np.arange(100), np.unique(np.linspace(0, 299, 128).round().astype(int))
        heat = charts["index_map"].data[0]
        assert np.array_equal(heat.y, rows) and np.array_equal(heat.x, cols) and cols[-1] == 299
        drawn = index_map_heatmap(q.codes["fc2"], layer="fc2", rows=rows, cols=cols)
        assert charts["index_map"].to_dict() == drawn.to_dict()
        table, frame = levels_table(q.levels["fc2"], q.counts["fc2"], q.per_row)
        assert charts["table"].to_dict() == table.to_dict() and charts["frame"].equals(frame)
        again = quantized_charts(explorer.evaluator, explorer.quantize(choice), "fc2")
        assert again["histogram"] is charts["histogram"]  # the same position: the same figures
    assert "3 bits" in quantized_charts(explorer.evaluator, explorer.quantize(QuantChoice("kmeans", 3)), "fc2")[
        "histogram"].layout.title.text
    product = quantized_charts(explorer.evaluator, explorer.quantize(QuantChoice("product", 2, subvector=4)), "fc3")
    assert product["table"] is None and product["frame"] is None
    assert list(product["index_map"].data[0].x) == list(range(25))  # fc3: 10 x 100 weights, 25 sub-vectors of 4
    assert "codewords each sub-vector uses" in product["index_map"].layout.title.text
    assert product["index_map"].layout.xaxis.title.text == "sub-vector (column)"
    binary = quantized_charts(explorer.evaluator, explorer.quantize(QuantChoice("binary", 1)), "fc1")
    assert binary["index_map"].data[0].y[-1] == 299 and binary["index_map"].data[0].x[-1] == 63  # fc1: 300 x 64


def test_an_index_map_refuses_unit_numbers_that_do_not_fit_it():
    import pytest

    from kdviz.figures.quantization import index_map_heatmap

    with pytest.raises(ValueError, match="3 rows and 2 columns"):
        index_map_heatmap(np.zeros((3, 2), dtype=int), rows=[0, 5], cols=[0, 1])
