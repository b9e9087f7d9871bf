"""Pruning widgets without a browser: the slider changes the FigureWidget data, the monitor follows a
running prune job. Expected values come from numpy (a stable sort of |w|, the model run with those
weights zeroed, zeros counted in the checkpoint), never from the widget code under test."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

pytest.importorskip("ipywidgets")

from kdviz import build_model, load_dataset  # noqa: E402
from kdviz.engine import TrainConfig, load_checkpoint, start  # noqa: E402
from kdviz.prune import fine_tune  # noqa: E402
from kdviz.methods.prune import read_prune_arrays  # noqa: E402
from kdviz.prune.explore import slider_arrays  # noqa: E402
from kdviz.widgets.pruning import PruningExplorer, PruningMonitor  # noqa: E402

from _support.jobs import job_manager  # noqa: E402

SIZES = {"fc1": 64 * 32, "fc2": 32 * 16, "fc3": 16 * 10}


@pytest.fixture(scope="module")
def model(digits):
    """A small MLP trained for 150 steps, so that pruning visibly costs accuracy."""
    torch.manual_seed(0)
    m = build_model("mlp", input_shape=digits.input_shape, num_classes=10, hidden=(32, 16))
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    fine_tune(m, None, digits.train_images, digits.train_labels, opt, steps=150, generator=torch.Generator().manual_seed(0))
    return m.eval()


def numpy_prune(weights: dict[str, np.ndarray], sparsity: float, scope: str) -> dict[str, np.ndarray]:
    """Masks (True = kept) removing the floor(s*n + 0.5) smallest |w| per layer or over all layers."""
    if scope == "layer":
        out = {}
        for name, w in weights.items():
            keep = np.ones(w.size, bool)
            keep[np.argsort(np.abs(w.ravel().astype(np.float64)), kind="stable")[: int(math.floor(sparsity * w.size + 0.5))]] = False
            out[name] = keep.reshape(w.shape)
        return out
    flat = np.concatenate([np.abs(w.ravel().astype(np.float64)) for w in weights.values()])
    keep = np.ones(flat.size, bool)
    keep[np.argsort(flat, kind="stable")[: int(math.floor(sparsity * flat.size + 0.5))]] = False
    out, start_at = {}, 0
    for name, w in weights.items():
        out[name] = keep[start_at : start_at + w.size].reshape(w.shape)
        start_at += w.size
    return out


def masked_accuracy(model, data, masks: dict[str, np.ndarray]) -> float:
    clone = build_model("mlp", input_shape=data.input_shape, num_classes=10, hidden=(32, 16))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for layer, keep in masks.items():
        state[f"{layer}.weight"] = state[f"{layer}.weight"] * torch.from_numpy(keep)
    clone.load_state_dict(state)
    with torch.no_grad():
        return float((clone.eval()(data.test_images).argmax(1) == data.test_labels).double().mean())


def dense_weights(model) -> dict[str, np.ndarray]:
    return {layer: getattr(model, layer).weight.detach().numpy().copy() for layer in SIZES}


def test_slider_updates_accuracy_bars_histogram_and_mask(model, digits):
    weights = dense_weights(model)
    ex = PruningExplorer(model, digits, sparsity=0.5)
    assert ex.dense_accuracy == pytest.approx(masked_accuracy(model, digits, {}))
    for sparsity, scope in ((0.9, "layer"), (0.9, "global"), (0.3, "layer")):
        ex.scope_buttons.value = scope
        ex.slider.value = sparsity
        ex.flush()
        masks = numpy_prune(weights, sparsity, scope)
        assert ex.accuracy == pytest.approx(masked_accuracy(model, digits, masks))
        bars = np.asarray(ex.bars_chart.widget.data[0].y, dtype=float)
        assert np.allclose(bars, [100 * (1 - masks[n].mean()) for n in SIZES])
        hist = np.asarray(ex.histogram_chart.widget.data[0].y, dtype=float)
        assert hist.sum() == masks["fc1"].sum()  # fc1 is shown: every surviving weight counted once
        z = np.asarray(ex.mask_chart.widget.data[0].z, dtype=float)
        assert z.shape == (32, 64) and np.array_equal(z, 100.0 * masks["fc1"])  # full resolution: 0 or 100
        assert f"{100 * ex.accuracy:.2f}%" in ex.curve_chart.widget.layout.title.text
    assert not np.allclose(bars, [90.0] * 3)
    ex.layer_picker.value = "fc3"
    assert np.array_equal(np.asarray(ex.mask_chart.widget.data[0].z, dtype=float), 100.0 * masks["fc3"])
    for name, w in weights.items():  # the user's model keeps its dense weights
        assert np.array_equal(getattr(model, name).weight.detach().numpy(), w)


@pytest.mark.parametrize("sparsity", [0.37, 0.81])
def test_the_sparsity_asked_for_is_the_snapshot_target(model, digits, sparsity):
    """Not the default 0.8: the slider's snapshot prunes floor(s*n + 0.5) weights of each layer."""
    ex = PruningExplorer(model, digits, sparsity=sparsity)
    expected = [math.floor(sparsity * n + 0.5) / n for n in SIZES.values()]
    assert ex.sparsity == sparsity and ex.snapshot.target == pytest.approx(expected)
    assert np.allclose(np.asarray(ex.bars_chart.widget.data[0].y, dtype=float), [100 * e for e in expected])


def test_bad_input_is_refused(model, digits):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        PruningExplorer(model, digits, sparsity=1.0)
    ex = PruningExplorer(model, digits, sparsity=0.2)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        ex.set_sparsity(1.0)
    with pytest.raises(ValueError, match="scope"):
        PruningExplorer(model, digits, scope="everything")
    with pytest.raises(TypeError, match="model must be"):
        PruningExplorer(42, digits)


def test_monitor_refuses_a_run_without_the_pruning_hook(tmp_path):
    with job_manager(1) as manager:
        plain = start(TrainConfig(dataset="digits", model="mlp", max_steps=1, runs_root=str(tmp_path)), manager)
        with pytest.raises(ValueError, match=r"this run has no 'prune' hook in its config \(hooks: \[\]\)"):
            PruningMonitor(plain, autostart=False)


def test_slider_arrays_match_the_masks(model):
    from kdviz.prune import MaskedEvaluator

    data = load_dataset("digits")
    ev = MaskedEvaluator(model, data.test_images, data.test_labels)
    snap = read_prune_arrays(slider_arrays(ev, ev.masks_at(0.7)))  # read like a training snapshot
    masks = numpy_prune(dense_weights(model), 0.7, "layer")
    assert snap.layers == list(SIZES)
    for i, (name, keep) in enumerate(masks.items()):
        w = dense_weights(model)[name]
        assert snap.threshold[i] == pytest.approx(np.abs(w[keep]).min())
        assert snap.target[i] == snap.sparsity[i] == pytest.approx(1 - keep.mean())
        counts, _ = np.histogram(w[keep].astype(np.float64), bins=60, range=(-np.abs(w).max(), np.abs(w).max()))
        assert np.array_equal(snap.histogram(name)[0], counts)
        grid, block = snap.mask(name)
        assert block == (1, 1) and np.array_equal(grid, 100 * keep)
    assert snap.kept() == sum(int(k.sum()) for k in masks.values())


def test_monitor_follows_a_running_prune_job(tmp_path):
    config = TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [32, 16]}, epochs=3, batch_size=32,
                         lr=0.05, eval_every=4, snapshot_every=2, runs_root=str(tmp_path), name="pruned",
                         hooks=[{"name": "prune", "sparsity": 0.8, "schedule": "agp", "start_step": 2,
                                 "end_step": 40, "frequency": 4}])
    with job_manager(1) as manager:
        job = start(config, manager)
        job.pause()  # held before its first step: the monitor sees the run at its start, then while it trains
        monitor = PruningMonitor(job, interval_ms=50)
        end = time.monotonic() + 90

        def caught_up() -> bool:  # every snapshot so far is in the monitor and the latest one is drawn
            snaps = job.store.snapshots_since(0)[0]
            return (monitor.scrubber.max == len(snaps) - 1 and monitor.mask_chart.updates > 0
                    and f"at step {snaps[-1].step}<" in monitor.mask_chart.widget.layout.title.text)

        while not (job.status().state == "paused" and caught_up()):
            assert time.monotonic() < end, "the monitor did not draw the paused job's first snapshot"
            time.sleep(0.05)
        assert np.all(np.asarray(monitor.mask_chart.widget.data[0].z) == 100)  # nothing pruned at step 0
        job.resume()
        while job.status().step < 20:
            assert time.monotonic() < end and not job.done
            time.sleep(0.01)
        job.pause()  # mid-run: the monitor has picked up the new snapshots while the job is alive
        while not (job.status().state == "paused" and caught_up()):
            assert time.monotonic() < end and not job.done, "the monitor did not catch up with the running job"
            time.sleep(0.05)
        seen = len(monitor.snapshots)
        assert seen >= 3 and monitor.scrubber.value == seen - 1 and monitor.follow.value
        job.resume()
        monitor.wait(120)
        assert job.status().state == "finished"
        snaps, _ = job.store.snapshots_since(0)
        assert len(monitor.snapshots) == len(snaps) > seen
        assert monitor.scrubber.value == len(snaps) - 1
        masks = load_checkpoint(job.path / "checkpoints" / "last.pt")["hooks"]["prune"]
        expected = [100 * (1 - float(masks[f"mask/{n}.weight"].double().mean())) for n in SIZES]
        assert np.allclose(np.asarray(monitor.bars_chart.widget.data[0].y, dtype=float), expected)
        assert np.allclose(expected, [100 * math.floor(0.8 * n + 0.5) / n for n in SIZES.values()])
        evals = [r for r in job.store.metrics() if r.get("kind") == "eval"]
        assert len(monitor.accuracy_chart.widget.data[0].y) == len(evals)
        monitor.scrubber.value = 0  # scrub back: follow turns off, the mask is the dense start
        monitor._throttle.flush()
        assert not monitor.follow.value
        assert np.all(np.asarray(monitor.mask_chart.widget.data[0].z) == 100)
        assert "step 0" in monitor.caption.value
        assert monitor.stop_button.disabled and monitor.stop_button.layout.display == "none"
        assert monitor.replay.layout.display == "flex" and not monitor.errors.outputs
        monitor.close()


def test_wrap_title_breaks_only_long_titles():
    import plotly.graph_objects as go

    from kdviz.figures import theme
    from kdviz.figures.pruning_live import wrap_title

    long = theme.apply(go.Figure(), "fc1: 12 surviving weights have drifted inside the pruning threshold", subtitle="note")
    text = wrap_title(long, 50).layout.title.text
    head = text[3 : text.index("</b>")]
    assert head.replace("<br>", " ") == "fc1: 12 surviving weights have drifted inside the pruning threshold"
    assert all(len(part) <= 50 for part in head.split("<br>")) and text.endswith("note</span>")
    short = theme.apply(go.Figure(), "fc1: a gap around zero")
    assert wrap_title(short).layout.title.text == "<b>fc1: a gap around zero</b>"


def test_monitor_of_a_finished_run_replays_the_masks(tmp_path):
    """A finished prune run reopened from its folder: the replay bar stands in for the live scrubber,
    scrubbing redraws the mask and the bars at that snapshot, and the layer picker applies to it."""
    from _support.run_files import snapshot_array

    config = TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [32, 16]}, epochs=1, batch_size=32,
                         lr=0.05, eval_every=8, snapshot_every=4, runs_root=str(tmp_path), name="pruned",
                         hooks=[{"name": "prune", "sparsity": 0.7, "schedule": "agp", "start_step": 0,
                                 "end_step": 24, "frequency": 4}])
    with job_manager(1) as manager:
        job = start(config, manager)
        assert job.wait(90).state == "finished"
    monitor = PruningMonitor(str(job.path))  # a reopened folder: drawn at once, no poller
    bar, steps = monitor.replay, [s.step for s in monitor.snapshots]
    assert bar.layout.display == "flex" and bar.scrubber.max == len(steps) - 1 >= 3
    assert monitor.scrubber.layout.display == "none" and monitor.stop_button.layout.display == "none"
    first, last = steps[0], steps[-1]

    def shown() -> tuple[np.ndarray, np.ndarray]:  # (mask of the picked layer, sparsity bars)
        return (np.asarray(monitor.mask_chart.widget.data[0].z, dtype=float),
                np.asarray(monitor.bars_chart.widget.data[0].y, dtype=float))

    monitor.layer_picker.value = "fc2"
    monitor._throttle.flush()
    last_mask, last_bars = shown()
    assert np.array_equal(last_mask, snapshot_array(job.path, last, "prune/mask/fc2"))
    bar.scrubber.value = 0
    bar.flush()
    mask, bars = shown()
    assert np.array_equal(mask, snapshot_array(job.path, first, "prune/mask/fc2"))
    assert np.allclose(bars, 100 * snapshot_array(job.path, first, "prune/sparsity"))
    assert not np.array_equal(mask, last_mask) and not np.allclose(bars, last_bars)
    assert bar.where.value.endswith(f"step {first}") and f"step {first} " in monitor.caption.value
    monitor.layer_picker.value = "fc3"  # the picker still applies to the replayed snapshot
    monitor._throttle.flush()
    assert np.array_equal(shown()[0], snapshot_array(job.path, first, "prune/mask/fc3"))
    assert not monitor.errors.outputs
    monitor.close()


def test_a_sparsity_that_empties_a_layer_is_named_in_an_orange_warning(digits):
    """Layer scope: a 40-weight layer is emptied at s >= 1 - 0.5/40 = 0.9875 (0.98 keeps 1 weight).
    Global scope: a layer of tiny weights is the first the one cut takes whole."""
    from kdviz.prune import layers_emptied

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 24), torch.nn.ReLU(), torch.nn.Linear(24, 4),
                              torch.nn.ReLU(), torch.nn.Linear(4, 10))
    ex = PruningExplorer(net, digits, sparsity=0.98)
    assert ex.emptied == [] and ex.warning.value == ""
    ex.set_sparsity(0.99)
    ex.flush()
    assert ex.emptied == ["5.weight"] == layers_emptied(net, 0.99)
    assert "every weight of 5 (40 weights)" in ex.warning.value and "#E69F00" in ex.warning.value
    assert ex.snapshot.sparsity[-1] == 1.0  # the warning tells the truth: the layer is pruned whole
    with torch.no_grad():
        net[3].weight.mul_(1e-4)  # 96 tiny weights: a global cut of 0.1 (167 of 1672) takes them all
    ex = PruningExplorer(net, digits, sparsity=0.1, scope="global")
    assert ex.emptied == ["3.weight"] == layers_emptied(net, 0.1, scope="global")
    assert "every weight of 3 (96 weights)" in ex.warning.value and "one cut per layer" in ex.warning.value
    ex.scope_buttons.value = "layer"
    ex.flush()
    assert ex.emptied == [] and ex.warning.value == ""  # 10% per layer leaves every layer alive
