"""The "prune" training hook keeps pruned weights at zero while training, follows its schedule,
contributes snapshots, and keeps its masks in checkpoints. Tested with a manual loop calling the
hook's methods in the engine's order, and once through the real engine."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdviz.engine.hooks import HOOKS, StepBatch, TrainContext, build_hook
from kdviz.models import build_model
from kdviz.methods.prune import PruneHook
from kdviz.prune import agp_sparsity, prunable_weights
from kdviz.prune.masks import downsample_mask


def run_loop(hook, data, steps=60, seed=0, state=None):
    """setup -> per step: loss (+ hook terms), backward, step, ctx.step += 1, after_step."""
    torch.manual_seed(seed)
    model = build_model("mlp", input_shape=data.input_shape, num_classes=10, hidden=(48, 24))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    ctx = TrainContext(model=model, teacher=None, config=None, dataset=data, device=torch.device("cpu"),
                       optimizer=opt, total_steps=steps)
    if state is not None:
        hook.load_state_dict(state)
    hook.setup(ctx)
    g = torch.Generator().manual_seed(seed)
    history = []
    for _ in range(steps):
        idx = torch.randint(0, len(data.train_labels), (64,), generator=g)
        x, y = data.train_images[idx], data.train_labels[idx]
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        for term in hook.loss_terms(ctx, StepBatch(x, y, idx, logits)).values():
            loss = loss + term
        opt.zero_grad()
        loss.backward()
        opt.step()
        ctx.step += 1
        hook.after_step(ctx)
        for name, p in prunable_weights(model, hook.names).items():
            assert torch.all(p.detach()[~hook.masks[name]] == 0), f"pruned weight of {name} moved at step {ctx.step}"
        history.append(dict(hook.masks.sparsity()))
    return model, ctx, history


def test_agp_hook_follows_the_schedule_and_keeps_zeros(digits, one_thread):
    hook = build_hook({"name": "prune", "sparsity": 0.8, "schedule": "agp", "start_step": 10, "end_step": 50,
                       "frequency": 10})
    assert isinstance(hook, PruneHook) and "prune" in HOOKS
    model, ctx, history = run_loop(hook, digits)
    for step, sparsity in enumerate(history, start=1):
        target = agp_sparsity(step, 0.0, 0.8, 10, 50, 10)
        for name, s in sparsity.items():
            n = hook.masks[name].numel()
            assert s == pytest.approx(math.floor(target * n + 0.5) / n), (step, name)
    assert hook.metrics(ctx)["sparsity"] == pytest.approx(0.8, abs=1e-3)
    assert set(hook.metrics(ctx)) == {"sparsity", "sparsity/fc1", "sparsity/fc2", "sparsity/fc3"}


def test_one_shot_global_hook_prunes_at_setup(digits, one_thread):
    hook = PruneHook(sparsity=0.9, scope="global", schedule="one-shot")
    _, _, history = run_loop(hook, digits, steps=5)
    total = sum(hook.masks[n].numel() for n in hook.names)
    assert hook.masks.overall_sparsity() == pytest.approx(math.floor(0.9 * total + 0.5) / total)
    assert history[0] == history[-1]


def test_l1_term_and_per_layer_targets(digits, one_thread):
    hook = PruneHook(sparsity={"fc1": 0.5, "fc2": 0.3}, schedule="one-shot", l1=1e-3)
    model, ctx, _ = run_loop(hook, digits, steps=3)
    assert hook.names == ["fc1.weight", "fc2.weight"]  # fc3 left dense
    terms = hook.loss_terms(ctx, None)
    expected = 1e-3 * sum(float(p.detach().abs().sum()) for p in (model.fc1.weight, model.fc2.weight))
    assert float(terms["l1"].detach()) == pytest.approx(expected, rel=1e-5)
    assert hook.masks.sparsity()["fc2.weight"] == pytest.approx(math.floor(0.3 * 24 * 48 + 0.5) / (24 * 48))


def test_snapshot_arrays(digits, one_thread):
    hook = PruneHook(sparsity=0.7, schedule="one-shot", mask_max_side=24, histogram_bins=30)
    model, ctx, _ = run_loop(hook, digits, steps=3)
    snap = hook.snapshot(ctx)
    assert snap["layers"].tolist() == ["fc1", "fc2", "fc3"]
    assert snap["weights"].tolist() == [48 * 64, 24 * 48, 10 * 24]
    np.testing.assert_allclose(snap["sparsity"], [hook.masks.sparsity()[n] for n in hook.names])
    mask = snap["mask/fc1"]
    assert mask.dtype == np.uint8 and mask.shape == (24, 22) and snap["mask_block/fc1"].tolist() == [2, 3]
    assert snap["mask/fc3"].shape == (10, 24) and set(np.unique(snap["mask/fc3"])) <= {0, 100}
    assert snap["hist/fc2"].sum() == int(hook.masks["fc2.weight"].sum())
    assert len(snap["edges/fc2"]) == 31
    fresh = PruneHook(sparsity=0.7, schedule="one-shot")  # the threshold is the cut at pruning time
    model, ctx, _ = run_loop(fresh, digits, steps=0)
    w = model.fc2.weight.detach().abs()
    assert fresh.snapshot(ctx)["threshold"][1] == pytest.approx(float(w[fresh.masks["fc2.weight"]].min()))
    assert float(w[~fresh.masks["fc2.weight"]].max()) == 0.0


def test_downsample_mask_equals_a_block_loop():
    rng = np.random.default_rng(0)
    m = rng.random((23, 50)) > 0.6
    grid, (br, bc) = downsample_mask(m, 8)
    assert (br, bc) == (3, 7) and grid.shape == (8, 8)
    for i in range(8):
        for j in range(8):
            block = m[i * br:(i + 1) * br, j * bc:(j + 1) * bc]
            assert grid[i, j] == int(np.rint(100 * block.mean()))


def test_state_dict_restores_masks_into_a_new_run(digits, one_thread):
    hook = PruneHook(sparsity=0.6, schedule="one-shot")
    run_loop(hook, digits, steps=3)
    state = hook.state_dict()
    assert all(v.dtype == torch.bool for k, v in state.items() if k.startswith("mask/"))
    resumed = PruneHook(sparsity=0.6, schedule="one-shot")
    model, _, _ = run_loop(resumed, digits, steps=2, seed=5, state=state)  # loaded before setup, as the engine does
    for name in hook.names:
        assert torch.equal(resumed.masks[name], hook.masks[name])
        assert torch.all(prunable_weights(model)[name].detach()[~hook.masks[name]] == 0)


def test_bad_hook_options():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        build_hook({"name": "prune", "sparsity": 1.0})
    with pytest.raises(ValueError, match="No pruning scope"):
        build_hook({"name": "prune", "scope": "channel"})
    with pytest.raises(ValueError, match="No pruning schedule"):
        build_hook({"name": "prune", "schedule": "linear"})
    with pytest.raises(ValueError, match="not a dict per layer"):
        build_hook({"name": "prune", "scope": "global", "sparsity": {"fc1": 0.5}})
    with pytest.raises(ValueError, match="l1"):
        build_hook({"name": "prune", "l1": -1})
    with pytest.raises(ValueError, match="no option.*quality.*known: sparsity"):
        build_hook({"name": "prune", "quality": 2})


def test_hook_through_the_engine(tmp_path, one_thread):
    from kdviz.engine import JobManager, TrainConfig, load_checkpoint, open_run, start

    config = TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [32, 16]}, epochs=1, max_steps=12,
                         batch_size=32, lr=0.05, snapshot_every=4, eval_every=6, runs_root=str(tmp_path),
                         hooks=[{"name": "prune", "sparsity": 0.75, "schedule": "agp", "start_step": 2,
                                 "end_step": 8, "frequency": 2}])
    job = start(config, manager=JobManager(max_concurrent=1, cpu_threads=1))
    status = job.wait(timeout=240)
    assert status.state == "finished", status
    reader = open_run(job.path)
    snaps, _ = reader.snapshots_since(0)
    last = snaps[-1].arrays
    assert last["prune/layers"].tolist() == ["fc1", "fc2", "fc3"]
    np.testing.assert_allclose(last["prune/sparsity"], [math.floor(0.75 * n + 0.5) / n for n in (2048, 512, 160)])
    evals = [r for r in reader.metrics() if r.get("kind") == "eval"]
    assert evals[-1]["prune/sparsity"] == pytest.approx(0.75, abs=1e-3)
    ckpt = load_checkpoint(job.path / "checkpoints" / "last.pt")
    for name in ("fc1.weight", "fc2.weight", "fc3.weight"):
        mask = ckpt["hooks"]["prune"][f"mask/{name}"]
        assert torch.all(ckpt["model"][name][~mask] == 0)


def test_layer_target_that_empties_a_layer_is_refused_at_setup(digits, one_thread):
    # fc3 of hidden (48, 24) has 240 weights: s >= 1 - 0.5/240 = 0.99792 empties it, fc1/fc2 stay
    hook = build_hook({"name": "prune", "sparsity": 0.998, "schedule": "agp", "start_step": 5, "end_step": 20})
    with pytest.raises(ValueError, match=r"every weight of fc3 \(240 weights\).*allow_empty") as info:
        run_loop(hook, digits, steps=30)
    assert "fc1" not in str(info.value) and hook.masks is None  # refused before any mask or step
    per_layer = build_hook({"name": "prune", "sparsity": {"fc2": 0.9996, "fc3": 0.5}, "schedule": "one-shot"})
    with pytest.raises(ValueError, match=r"every weight of fc2 \(1152 weights\)"):
        run_loop(per_layer, digits, steps=2)
    allowed = build_hook({"name": "prune", "sparsity": 0.998, "schedule": "one-shot", "allow_empty": True})
    run_loop(allowed, digits, steps=3)
    assert allowed.masks.kept()["fc3.weight"] == 0 and allowed.masks.kept()["fc1.weight"] == 6  # 3072 - 3066


def test_global_target_that_empties_a_layer_is_refused_at_setup(digits, one_thread):
    torch.manual_seed(0)
    model = build_model("mlp", input_shape=digits.input_shape, num_classes=10, hidden=(48, 24))
    with torch.no_grad():
        model.fc3.weight.mul_(1e-3)  # the smallest weights of the whole net: the global cut takes fc3 first
    ctx = TrainContext(model=model, teacher=None, config=None, dataset=digits, device=torch.device("cpu"),
                       optimizer=torch.optim.SGD(model.parameters(), lr=0.1), total_steps=20)
    hook = build_hook({"name": "prune", "sparsity": 0.2, "scope": "global", "schedule": "one-shot"})
    with pytest.raises(ValueError, match=r"global target would prune every weight of fc3 \(240 weights\)"):
        hook.setup(ctx)
    allowed = build_hook({"name": "prune", "sparsity": 0.2, "scope": "global", "schedule": "one-shot",
                          "allow_empty": True})
    allowed.setup(ctx)
    assert allowed.masks.kept()["fc3.weight"] == 0 and allowed.masks.overall_sparsity() == pytest.approx(0.2, abs=1e-3)


def test_allow_empty_is_a_typed_option():
    with pytest.raises(ValueError, match="allow_empty"):
        build_hook({"name": "prune", "sparsity": 0.5, "allow_empty": "yes"})
    assert build_hook({"name": "prune", "sparsity": 0.5, "allow_empty": True}).allow_empty is True


def test_engine_run_that_would_empty_a_layer_fails_at_start_with_the_message(tmp_path, one_thread):
    from kdviz.engine import JobManager, TrainConfig, open_run, start

    config = TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [32, 16]}, epochs=1, max_steps=12,
                         batch_size=32, runs_root=str(tmp_path),
                         hooks=[{"name": "prune", "sparsity": 0.997, "schedule": "one-shot"}])
    config.validate()  # the option is typed, the value is only wrong for this model
    with pytest.raises(ValueError, match="allow_empty"):
        TrainConfig(**{**config.__dict__, "hooks": [{"name": "prune", "sparsity": 0.5, "allow_empty": 1}]}).validate()
    try:
        job = start(config, manager=JobManager(max_concurrent=1, cpu_threads=1))
    except ValueError as exc:  # refused before the job starts: equally fine
        assert "every weight of fc3 (160 weights)" in str(exc)
        return
    status = job.wait(timeout=240)
    assert status.state == "failed" and status.step == 0
    assert "every weight of fc3 (160 weights)" in status.message and "allow_empty" in status.message
    assert not [r for r in open_run(job.path).metrics() if r.get("kind") == "train"]  # no step was trained


def test_global_cut_that_empties_a_layer_later_stops_with_the_message(digits, one_thread):
    """The documented rule for scope "global": the start judges the starting weights; if the weights
    drift so that a later step of the ramp would empty a layer, that step raises the same message."""
    torch.manual_seed(0)
    model = build_model("mlp", input_shape=digits.input_shape, num_classes=10, hidden=(48, 24))
    ctx = TrainContext(model=model, teacher=None, config=None, dataset=digits, device=torch.device("cpu"),
                       optimizer=torch.optim.SGD(model.parameters(), lr=0.1), total_steps=20)
    hook = build_hook({"name": "prune", "sparsity": 0.3, "scope": "global", "schedule": "agp", "start_step": 2,
                       "end_step": 10, "frequency": 2})
    hook.setup(ctx)  # the starting weights: no layer emptied
    with torch.no_grad():
        model.fc3.weight.mul_(1e-4)  # as if training had shrunk fc3 below every other weight
    ctx.step = 10
    with pytest.raises(ValueError, match=r"would prune every weight of fc3.weight \(240 weights\).*allow_empty"):
        hook.after_step(ctx)
