"""The ``kmeans``, ``fake_quant`` and ``binary`` training hooks, driven by a plain training loop."""
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdviz.engine.hooks import HOOKS, TrainContext, build_hook
from kdviz.models import build_model
from kdviz.quant.histograms import index_map
from kdviz.quant import kmeans_quantize


torch.set_num_threads(1)  # 2 shared cores: extra threads only spin against other processes


def _fit(model, data, steps, lr, after_step=None, optimizer=None, seed=0):
    torch.manual_seed(seed)
    opt = optimizer or torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    x, y = torch.as_tensor(data.train_images), torch.as_tensor(data.train_labels)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (64,))
        opt.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
        if after_step:
            after_step()
    with torch.no_grad():
        return float((model(torch.as_tensor(data.test_images)).argmax(1) == torch.as_tensor(data.test_labels)).float().mean())


@pytest.fixture(scope="module")
def pretrained(digits):
    torch.manual_seed(0)
    model = build_model("lenet300", input_shape=(1, 8, 8), num_classes=10)
    acc = _fit(model, digits, steps=150, lr=0.05)
    assert acc > 0.85
    return model.state_dict(), acc


def _train(hook, data, pretrained, steps=40, lr=0.01, optimizer_first=True, adam=False):
    """A minimal engine: setup (with or without an optimizer yet), steps with after_step."""
    model = build_model("lenet300", input_shape=(1, 8, 8), num_classes=10)
    model.load_state_dict(pretrained[0])
    ctx = TrainContext(model=model, teacher=None, config=None, dataset=data, device=torch.device("cpu"))
    make = (lambda p: torch.optim.Adam(p, lr=lr)) if adam else (lambda p: torch.optim.SGD(p, lr=lr, momentum=0.9))
    if optimizer_first:
        ctx.optimizer = make(model.parameters())
    hook.setup(ctx)
    if not optimizer_first:
        ctx.optimizer = make(list(model.parameters()) + hook.extra_parameters())
    acc = _fit(model, data, steps, lr, after_step=lambda: hook.after_step(ctx), optimizer=ctx.optimizer)
    return model, ctx, acc


def test_hooks_are_registered():
    assert {"kmeans", "fake_quant", "binary"} <= set(HOOKS.names())
    with pytest.raises(ValueError, match="bits"):
        build_hook({"name": "kmeans", "bits": 17})
    with pytest.raises(ValueError, match="initialisation"):
        build_hook({"name": "kmeans", "init": "nope"})
    with pytest.raises(ValueError, match="binarization"):
        build_hook({"name": "binary", "method": "ternary"})
    with pytest.raises(ValueError, match="at least 2 bits"):
        build_hook({"name": "fake_quant", "bits": 1})


@pytest.mark.parametrize("optimizer_first", [True, False])
def test_kmeans_hook_trains_centroids_with_fixed_indices(digits, pretrained, optimizer_first):
    hook = build_hook({"name": "kmeans", "bits": 3, "init": "linear", "lr": 1e-3})
    model, ctx, acc = _train(hook, digits, pretrained, lr=1e-3, optimizer_first=optimizer_first)
    assert acc > pretrained[1] - 0.05  # 8 shared values per layer keep the accuracy
    for name, p in hook.params.items():
        w = getattr(model, name).weight.detach()
        assert len(torch.unique(w)) <= 8
        assert not torch.equal(p.centroids.detach(), hook.initial[name])
    n_params = sum(len(g["params"]) for g in ctx.optimizer.param_groups)
    assert n_params == len({id(p) for g in ctx.optimizer.param_groups for p in g["params"]})  # no duplicates
    snap = hook.snapshot(ctx)
    assert list(snap["layers"]) == ["fc1", "fc2", "fc3"] and list(snap["bits"]) == [3, 3, 3]
    assert snap["index_map/fc1"].shape == (128, 64)  # 300 x 64 subsampled to 128 rows
    assert snap["centroids/fc3"].shape == snap["centroids_initial/fc3"].shape
    assert snap["cluster_counts/fc2"].sum() == 100 * 300
    assert snap["hist_counts/fc1"].sum() == 300 * 64 and snap["hist_edges/fc1"].size == 61
    assert hook.metrics(ctx)["max_centroid_shift"] > 0
    for value in snap.values():
        assert isinstance(value, np.ndarray) and value.dtype != object


def test_kmeans_hook_state_round_trip(digits, pretrained):
    hook = build_hook({"name": "kmeans", "bits": 2})
    model, ctx, _ = _train(hook, digits, pretrained, steps=10, lr=1e-3)
    state = hook.state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    fresh_hook = build_hook({"name": "kmeans", "bits": 2})
    fresh_hook.load_state_dict(state)
    torch.manual_seed(123)  # a different model: the codebook must come from the checkpoint
    fresh = build_model("lenet300", input_shape=(1, 8, 8), num_classes=10)
    fresh_hook.setup(TrainContext(model=fresh, teacher=None, config=None, dataset=digits, device=torch.device("cpu")))
    torch.testing.assert_close(fresh.fc1.weight, model.fc1.weight)


def test_pruned_model_stays_pruned_under_the_kmeans_hook(digits, pretrained):
    model = build_model("lenet300", input_shape=(1, 8, 8), num_classes=10)
    model.load_state_dict(pretrained[0])
    with torch.no_grad():
        for layer in (model.fc1, model.fc2):
            layer.weight[layer.weight.abs() < layer.weight.abs().median()] = 0
    zeros = model.fc1.weight.detach() == 0
    hook = build_hook({"name": "kmeans", "bits": 2})
    ctx = TrainContext(model=model, teacher=None, config=None, dataset=digits, device=torch.device("cpu"))
    hook.setup(ctx)
    opt = torch.optim.SGD(model.parameters(), lr=0.5, weight_decay=0.01)
    x, y = torch.as_tensor(digits.train_images[:128]), torch.as_tensor(digits.train_labels[:128])
    for _ in range(5):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    assert (model.fc1.weight[zeros] == 0).all()
    assert (hook.snapshot(ctx)["index_map/fc1"] == -1).any()


def test_fake_quant_hook_keeps_the_weights_on_the_grid(digits, pretrained):
    hook = build_hook({"name": "fake_quant", "bits": 4, "per_channel": True})
    model, ctx, acc = _train(hook, digits, pretrained)
    assert acc > pretrained[1] - 0.05
    w = model.fc2.weight.detach()
    for row in w:
        assert len(torch.unique(row)) <= 15  # symmetric 4-bit: levels -7..7
    snap = hook.snapshot(ctx)
    assert snap["scale/fc2"].shape == (100,)


@pytest.mark.parametrize("method", ["binaryconnect", "xnor"])
def test_binary_hook_binarizes_and_clips(digits, pretrained, method):
    hook = build_hook({"name": "binary", "method": method})
    model, ctx, acc = _train(hook, digits, pretrained, steps=150, lr=1e-3, adam=True)  # Adam, as Courbariaux et al.
    assert acc > 0.7
    latent = model.fc1.parametrizations.weight.original.detach()
    assert latent.abs().max() <= 1.0
    w = model.fc1.weight.detach()
    if method == "binaryconnect":
        assert set(torch.unique(w).tolist()) <= {-1.0, 1.0}
    else:
        torch.testing.assert_close(w.abs().mean(dim=1), latent.abs().mean(dim=1))
    torch.testing.assert_close(torch.from_numpy(hook.snapshot(ctx)["alpha/fc1"]), latent.abs().mean(dim=1))


def test_index_map_marks_pruned_and_subsamples():
    w = torch.randn(300, 200)
    w[:, :10] = 0
    m = index_map(kmeans_quantize(w, 2), max_side=50)
    assert m.shape == (50, 50) and m.dtype == np.int32
    assert (m[:, 0] == -1).all() and m.max() <= 3


def test_kmeans_hook_through_the_engine_with_init_from_and_resume(tmp_path):
    """A trained run, then a k-means fine-tuning run initialised from it, stopped and resumed."""
    from kdviz.engine import JobManager, TrainConfig, open_run, resume, start

    manager = JobManager(max_concurrent=1, cpu_threads=1)
    base = dict(dataset="digits", model="lenet300", runs_root=str(tmp_path), snapshot_every=0, lr=0.05)
    dense = start(TrainConfig(**base, epochs=3, name="dense"), manager)
    assert dense.wait(120).state == "finished"
    dense_acc = dense.store.metrics("eval")[-1]["test_acc"]
    spec = {"name": "kmeans", "bits": 4, "lr": 1e-4}
    job = start(TrainConfig(**{**base, "snapshot_every": 10, "lr": 1e-3}, epochs=2, init_from=str(dense.path),
                            hooks=[spec], name="kmeans"), manager)
    deadline = time.monotonic() + 60
    while job.status().step < 12 and time.monotonic() < deadline:
        time.sleep(0.01)
    job.stop()
    assert job.wait(60).state == "stopped"
    again = resume(job.path, manager)
    assert again.wait(120).state == "finished"
    acc = open_run(job.path).metrics("eval")[-1]["test_acc"]
    assert acc > dense_acc - 0.05  # 16 shared values per layer keep the accuracy
    snaps, _ = open_run(job.path).snapshots_since(0)
    last = snaps[-1].arrays
    first_after_resume = [s for s in snaps if s.step > job.status().step][0].arrays
    # the resumed run kept the codebook's indices: the same index maps before and after resuming
    assert (first_after_resume["kmeans/index_map/fc1"] == snaps[0].arrays["kmeans/index_map/fc1"]).all()
    assert len(last["kmeans/centroids/fc1"]) <= 16
    assert not (last["kmeans/centroids/fc1"] == last["kmeans/centroids_initial/fc1"]).all()
