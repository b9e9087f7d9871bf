"""Quantization widgets without a browser: slider moves update the FigureWidgets, monitors poll jobs.

Expected values are recomputed here (numpy Lloyd's k-means, numpy SVD, a torch forward pass), never
read back from the code under test.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdviz.engine import TrainConfig, start
from kdviz.methods.quantize import kmeans_hook
from kdviz.models import build_model
from kdviz.widgets.deep_compression import DeepCompressionMonitor
from kdviz.widgets.quantization import CentroidMonitor, QuantizationExplorer

from _support.jobs import job_manager
from _support.reference import accuracy_with_weights, lloyd_linear

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model(digits):
    torch.manual_seed(0)
    m = build_model("lenet300", input_shape=(1, 8, 8), num_classes=10)
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    for _ in range(150):
        idx = torch.randint(0, len(digits.train_labels), (64,))
        opt.zero_grad()
        F.cross_entropy(m(digits.train_images[idx]), digits.train_labels[idx]).backward()
        opt.step()
    return m.eval()


@pytest.fixture(scope="module")
def explorer(model, digits):
    return QuantizationExplorer(model, digits, method="kmeans", bits=3)


@pytest.fixture()
def manager():
    """A fresh manager per test (not the module's): each test's jobs start on free slots."""
    with job_manager(2) as m:
        yield m


def lines(widget) -> np.ndarray:
    x = np.asarray([np.nan if v is None else v for v in widget.data[1].x], dtype=float)
    return np.unique(x[~np.isnan(x)])


def test_bits_slider_moves_the_centroids_and_the_accuracy(explorer, model, digits):
    before = lines(explorer.histogram_chart.widget)
    explorer.bits.value = 2
    explorer.flush()
    after = lines(explorer.histogram_chart.widget)
    weights = {n: lloyd_linear(getattr(model, n).weight.detach().numpy(), 4)[1] for n in ("fc1", "fc2", "fc3")}
    expected = lloyd_linear(model.fc1.weight.detach().numpy(), 4)[0]
    assert before.size > after.size == expected.size and np.allclose(after, expected, atol=1e-5)
    assert abs(explorer.accuracy - accuracy_with_weights(model, digits, weights)) <= 1 / len(digits.test_labels) + 1e-9
    z = np.asarray(explorer.index_chart.widget.data[0].z, dtype=float)
    assert np.nanmax(z) == expected.size - 1
    assert "Test accuracy" in explorer.info.value


def test_uniform_levels_options_and_a_refused_bit_width(explorer, model):
    explorer.bits.value = 3
    explorer.method.value = "uniform"
    explorer.flush()
    assert list(explorer.options.children) == [explorer.granularity, explorer.scheme]
    w = model.fc1.weight.detach().numpy()
    s = np.abs(w).max() / 3  # symmetric, 3 bits: levels -3s .. 3s
    assert np.allclose(lines(explorer.histogram_chart.widget), s * np.arange(-3, 4), atol=1e-6)
    explorer.bits.value = 1
    explorer.flush()
    assert "Cannot quantize" in explorer.info.value and "at least 2 bits" in explorer.info.value
    explorer.method.value = "binary"
    explorer.binarizer.value = "xnor"
    explorer.flush()
    alpha = np.abs(w[0]).mean()  # XNOR, output unit 0: +-mean |w|
    assert explorer.bits.disabled and np.allclose(lines(explorer.histogram_chart.widget), [-alpha, alpha], atol=1e-6)
    explorer.method.value, explorer.bits.value = "kmeans", 3
    explorer.flush()


def test_rank_slider_moves_the_spectrum_marker(explorer, model, digits):
    explorer.rank_layer.value = "fc1"
    explorer.rank.value = 4
    explorer.flush()
    fig = explorer.spectrum_chart.widget
    assert fig.layout.shapes[0].x0 == 4
    W = model.fc1.weight.detach().double().numpy()
    U, S, Vt = np.linalg.svd(W, full_matrices=False)
    assert np.allclose(fig.data[0].y, S[:4], rtol=1e-5)
    expected = accuracy_with_weights(model, digits, {"fc1": (U[:, :4] * S[:4]) @ Vt[:4]})
    assert abs(explorer.rank_accuracy - expected) <= 1 / len(digits.test_labels) + 1e-9
    assert explorer.rank.max == 64


def test_bad_arguments_are_refused(model, digits):
    with pytest.raises(ValueError, match="bits must be in 1..16"):
        QuantizationExplorer(model, digits, bits=0)
    with pytest.raises(ValueError, match="unknown layer"):
        QuantizationExplorer(model, digits, layer="fc9")
    with pytest.raises(ValueError, match="No quantization method"):
        QuantizationExplorer(model, digits, method="ternary")


def test_the_method_menu_is_the_quantizer_registry(explorer):
    """Every quantizer of ``quant.explore`` is offered, titled as its kind says, with its own options."""
    from kdviz.quant.explore import KINDS

    assert [value for _, value in explorer.method.options] == list(KINDS)
    assert [title for title, _ in explorer.method.options] == [k.title for k in KINDS.values()]
    explorer.method.value = "product"
    explorer.flush()
    assert list(explorer.options.children) == [explorer.subvector] and not explorer.bits.disabled
    assert len(explorer.histogram_chart.widget.data) == 1  # sub-vectors: no single levels drawn on the histogram
    assert "Test accuracy" in explorer.info.value
    explorer.method.value = "kmeans"
    explorer.flush()
    assert list(explorer.options.children) == [explorer.init]


def test_centroid_monitor_picks_up_snapshots(tmp_path, manager):
    """A job fine-tuning 3-bit shared values (not the hook's default 5): the monitor draws its codebook."""
    job = start(TrainConfig(dataset="digits", model="lenet300", epochs=1, lr=1e-3, eval_every=4, snapshot_every=4,
                            runs_root=str(tmp_path), hooks=[kmeans_hook(3)]), manager)
    job.pause()  # held at its start: the monitor draws the first codebook, then the moved ones
    monitor = CentroidMonitor(job, float_accuracy=0.9, interval_ms=100)
    end = time.monotonic() + 60
    while monitor.histogram_chart.updates < 1:
        assert time.monotonic() < end, "the monitor did not draw the paused job's first snapshot"
        time.sleep(0.05)
    job.resume()
    monitor.wait(60)
    assert job.status().state == "finished"
    evals = job.store.metrics("eval")
    assert len(monitor.accuracy_chart.widget.data[0].x) == len(evals) >= 3
    arrays = job.store.latest_snapshot().arrays
    assert list(arrays["kmeans/bits"]) == [3, 3, 3]  # the bits asked for, as the engine stored them
    solid = np.asarray([np.nan if v is None else v for v in monitor.histogram_chart.widget.data[2].x], dtype=float)
    shown = np.unique(solid[~np.isnan(solid)])
    assert shown.size <= 8 and np.allclose(shown, np.sort(arrays["kmeans/centroids/fc1"]), atol=1e-6)
    assert monitor.histogram_chart.updates >= 2  # the poller redrew as snapshots arrived
    assert list(monitor.layer.options) == ["fc1", "fc2", "fc3"] and "finished" in monitor.status.value
    monitor.layer.value = "fc3"
    assert len(monitor.codebook) == len(arrays["kmeans/centroids/fc3"])
    monitor.close()
    plain = start(TrainConfig(dataset="digits", model="lenet300", max_steps=1, runs_root=str(tmp_path)), manager)
    with pytest.raises(ValueError, match=r"this run has no 'kmeans' hook in its config \(hooks: \[\]\)"):
        CentroidMonitor(plain, autostart=False)


def test_centroid_monitor_of_a_finished_run_replays_the_codebooks(tmp_path, manager):
    """A finished 3-bit centroid fine-tune reopened from its folder: scrubbing back draws the first
    snapshot's centroids (of the layer picked) and marks its epoch on the accuracy chart."""
    from _support.run_files import snapshot_array

    job = start(TrainConfig(dataset="digits", model="lenet300", max_steps=24, lr=1e-2, eval_every=6, snapshot_every=6,
                            runs_root=str(tmp_path), hooks=[kmeans_hook(3)]), manager)
    assert job.wait(60).state == "finished"
    monitor = CentroidMonitor(str(job.path), float_accuracy=0.9)
    bar = monitor.replay
    assert bar.layout.display == "flex" and bar.scrubber.max == len(bar.snapshots) - 1 >= 3
    first, last = bar.snapshots[0], bar.snapshots[-1]

    def centroids() -> np.ndarray:  # the solid lines: the shared values as they are now
        x = np.asarray([np.nan if v is None else v for v in monitor.histogram_chart.widget.data[2].x], dtype=float)
        return np.unique(x[~np.isnan(x)])

    def marked_epochs() -> list[float]:  # the vertical line at the shown snapshot's epoch
        return [s.x0 for s in monitor.accuracy_chart.widget.layout.shapes if s.x0 == s.x1]

    monitor.layer.value = "fc2"
    at_last = centroids()
    assert last.epoch > first.epoch and marked_epochs() == [pytest.approx(last.epoch)]
    assert np.allclose(at_last, np.sort(snapshot_array(job.path, last.step, "kmeans/centroids/fc2")), atol=1e-6)
    bar.scrubber.value = 0
    bar.flush()
    at_first = centroids()
    assert np.allclose(at_first, np.sort(snapshot_array(job.path, first.step, "kmeans/centroids/fc2")), atol=1e-6)
    assert at_first.shape != at_last.shape or not np.allclose(at_first, at_last, rtol=0, atol=1e-6)
    assert marked_epochs() == [pytest.approx(first.epoch)]
    monitor.layer.value = "fc3"  # the picker still applies to the replayed snapshot
    assert np.allclose(centroids(), np.sort(snapshot_array(job.path, first.step, "kmeans/centroids/fc3")), atol=1e-6)
    assert not monitor.errors.outputs
    monitor.close()


def test_deep_compression_monitor_draws_the_waterfall(tmp_path, manager):
    from kdviz.methods.deep_compression import deep_compression_experiment, preset
    from kdviz.present.deep_compression import DeepCompressionView

    with pytest.raises(TypeError, match="deep_compression_experiment"):
        DeepCompressionMonitor(object())
    base = start(TrainConfig(dataset="digits", model="lenet300", epochs=2, runs_root=str(tmp_path), name="base"), manager)
    assert base.wait(60).state == "finished"
    options = preset("digits", bits=4, prune_rounds=2, round_epochs=1.0, retrain_epochs=1.0, finetune_epochs=1.0)
    monitor = DeepCompressionMonitor(deep_compression_experiment(base.path, options, manager), interval_ms=100)
    monitor.wait(60)
    view = DeepCompressionView(monitor.view.experiment)
    assert view.state == "finished" and monitor.progress.value == 1.0 and monitor.stop_button.disabled
    assert monitor.stop_button.layout.display == "none"  # no red button beside a finished experiment
    y = np.asarray(monitor.waterfall.widget.data[0].y, dtype=float)
    sizes = [s.nbytes / 1e3 for s in view.report().stages]
    assert len(sizes) == 4 and np.allclose(y[:4], [sizes[0], *np.diff(sizes)]) and (y[1:4] < 0).all()
    lines = {t.name: len(t.x) for t in monitor.accuracy.widget.data}
    evals = {v.label: len(v.evals) for v in view.refresh()}
    assert lines == evals and min(evals.values()) >= 3  # one curve per stage, every evaluation on it
    assert "finished" in monitor.status.value and monitor.stages.value.count("finished") == 2
    monitor.close()


def test_deep_compression_monitor_stop_cancels_the_next_stage(tmp_path, manager):
    from kdviz.methods.deep_compression import deep_compression_experiment, preset

    base = start(TrainConfig(dataset="digits", model="lenet300", max_steps=5, runs_root=str(tmp_path), name="base"), manager)
    assert base.wait(60).state == "finished"
    monitor = DeepCompressionMonitor(deep_compression_experiment(base.path, preset("digits", round_epochs=200.0), manager),
                                     interval_ms=100)
    monitor.stop_button.click()
    monitor.wait(30)
    assert monitor.view.state == "stopped" and "cancelled" in monitor.stages.value
    assert list(monitor.view.experiment.jobs) == [monitor.view.names[0]] and monitor.stop_button.disabled
    monitor.close()
