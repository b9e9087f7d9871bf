"""The quantization charts: the data they show, their labels, and clear errors for bad input."""
import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from kdviz.figures import quantization as qf
from kdviz.quant import kmeans_quantize, singular_values
from kdviz.quant.histograms import index_map, weight_histogram


@pytest.fixture(scope="module")
def shared():
    torch.manual_seed(0)
    w = torch.randn(40, 30) * 0.1
    w[w.abs() < 0.05] = 0
    return w, kmeans_quantize(w, 3)


def test_codebook_histogram_draws_the_histogram_and_both_codebooks(shared):
    w, sw = shared
    counts, edges = weight_histogram(w.numpy(), bins=30)
    after = sw.centroids.numpy() + 0.01
    fig = qf.codebook_histogram(counts, edges, sw.centroids.numpy(), after, layer="fc1")
    assert isinstance(fig, go.Figure)
    bars, before_lines, after_lines = fig.data
    assert bars.y.sum() == (w != 0).sum().item()
    assert sorted({v for v in before_lines.x if v is not None}) == pytest.approx(sorted(sw.centroids.tolist()))
    assert sorted({v for v in after_lines.x if v is not None}) == pytest.approx(sorted(after.tolist()))
    assert "fc1" in fig.layout.title.text and "0.01" in fig.layout.title.text
    assert fig.layout.xaxis.title.text == "weight value"
    with pytest.raises(ValueError, match="hist_edges"):
        qf.codebook_histogram(counts, edges[:-2], sw.centroids.numpy())
    with pytest.raises(ValueError, match="fine-tuned"):
        qf.codebook_histogram(counts, edges, sw.centroids.numpy(), after[:2])


def test_index_map_blanks_pruned_weights(shared):
    _, sw = shared
    m = index_map(sw)
    fig = qf.index_map_heatmap(m, sw.num_clusters, layer="fc2")
    z = np.array(fig.data[0].z, dtype=float)
    assert np.isnan(z[m < 0]).all() and (z[m >= 0] == m[m >= 0]).all()
    assert f"{sw.num_clusters} shared values" in fig.layout.title.text
    with pytest.raises(ValueError, match="2-D"):
        qf.index_map_heatmap(np.zeros(3))


def test_codebook_table_lists_every_entry(shared):
    _, sw = shared
    fig = qf.codebook_table(sw.centroids.numpy() + 0.5, sw.cluster_counts().numpy(), sw.centroids.numpy())
    cells = fig.data[0].cells.values
    assert len(cells) == 5 and len(cells[0]) == sw.num_clusters
    assert sum(cells[4]) == int(sw.mask.sum())
    assert all(s == "+5.00e-01" for s in cells[3])
    with pytest.raises(ValueError, match="counts"):
        qf.codebook_table(sw.centroids.numpy(), [1])


def test_accuracy_and_compression_charts():
    fig = qf.accuracy_vs_bits({"linear": {4: 0.9, 2: 0.5}, "density": {2: 0.7, 4: 0.95}}, baseline=0.98)
    assert [list(t.x) for t in fig.data] == [[2, 4], [2, 4]]
    assert list(fig.data[1].y) == pytest.approx([70.0, 95.0])
    assert "%" in fig.layout.yaxis.title.text
    pts = [{"method": "k-means", "ratio": 5.3, "accuracy": 0.97, "label": "6 bits"},
           {"method": "k-means", "ratio": 10.6, "accuracy": 0.9},
           {"method": "SVD", "ratio": 3.0, "accuracy": 0.96, "label": "r=20"}]
    fig = qf.compression_vs_accuracy(pts, baseline=0.98)
    assert [t.name for t in fig.data] == ["k-means", "SVD"] and list(fig.data[0].x) == [5.3, 10.6]
    assert fig.layout.xaxis.type == "log"
    # neighbouring labels alternate above and below, and the second series starts on the other side
    assert list(fig.data[0].textposition) == ["top center", "bottom center"]
    assert list(fig.data[1].textposition) == ["bottom center"]
    with pytest.raises(ValueError):
        qf.accuracy_vs_bits({})
    with pytest.raises(ValueError):
        qf.compression_vs_accuracy([])


def test_singular_spectrum_marks_rank_and_energy():
    s = singular_values(torch.randn(20, 30)).numpy()
    fig = qf.singular_spectrum(s, 5, layer="fc1")
    energy = (s[:5] ** 2).sum() / (s**2).sum()
    assert f"{energy:.1%}" in fig.layout.title.text
    assert len(fig.data[0].x) == 5 and fig.layout.shapes[0].x0 == 5
    assert len(qf.singular_spectrum(s, 20).data) == 1  # full rank: nothing discarded
    with pytest.raises(ValueError, match="rank must be in 1..20"):
        qf.singular_spectrum(s, 21)


def test_size_waterfall_shows_each_stage():
    stages = [("dense", 1_070_000), ("pruned", 133_000), ("quantized", 35_000), ("Huffman", 27_000)]
    fig = qf.size_waterfall(stages)
    wf = fig.data[0]
    assert list(wf.measure) == ["absolute", "relative", "relative", "relative", "total"]
    assert wf.y[0] == pytest.approx(1070) and sum(wf.y[:4]) == pytest.approx(27)
    assert "39.6x" in fig.layout.title.text and "(KB)" in fig.layout.yaxis.title.text
    with pytest.raises(ValueError, match="two stages"):
        qf.size_waterfall(stages[:1])


def test_codebook_progress_draws_both_codebooks_and_the_shift(shared):
    from kdviz.figures.quantization_explorer import codebook_progress, finetune_accuracy

    w, sw = shared
    counts, edges = weight_histogram(w.numpy(), bins=30)
    start = sw.centroids.numpy()
    now = start + np.linspace(-0.01, 0.01, start.size)
    hist, table, frame = codebook_progress(counts, edges, start, now, sw.cluster_counts().numpy(), "fc1")
    assert sorted({v for v in hist.data[2].x if v is not None}) == pytest.approx(sorted(now.tolist()))
    assert np.allclose(frame["shift"], now - start) and frame["weights"].sum() == int(sw.mask.sum())
    assert len(table.data[0].cells.values[0]) == start.size
    with pytest.raises(ValueError, match="must match"):
        codebook_progress(counts, edges, start, now[:2], sw.cluster_counts().numpy(), "fc1")
    records = [{"kind": "eval", "epoch": 0.0, "test_acc": 0.8}, {"kind": "eval", "epoch": 1.0, "test_acc": 0.9}]
    fig = finetune_accuracy(records, 0.95, 0.5, label="run", colour="#00AA00")
    assert fig.data[0].name == "run" and fig.data[0].line.color == "#00AA00"
    assert "80.00% -> 90.00%" in fig.layout.title.text
