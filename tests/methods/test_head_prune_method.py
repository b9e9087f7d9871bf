"""The ``head_prune`` hook and method through the real engine: a tiny ViT trained on digits is
fine-tuned while its least important heads go on a schedule (Michel et al. 2019), the importance
matrix read back through the spec, the removed heads checked in the checkpoint and taken out
physically, and bad options named."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kdviz.engine import TrainConfig, load_trained_model, start, train_teacher_cached
from kdviz.engine.hooks import TrainContext, build_hook
from kdviz.methods import method_of
from kdviz.methods.head_prune import HEAD_PRUNE, HeadSchedule, head_prune_hook, shrunk_model
from kdviz.present import as_run_view
from kdviz.prune.heads import gate_rows, head_importance

TINY = {"patch": 2, "dim": 16, "depth": 2, "heads": 4, "mlp_ratio": 1.0}


@pytest.fixture(scope="module")
def vit_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("head-prune-runs")
    job = train_teacher_cached("digits", "vit", model_options=TINY, epochs=1, max_steps=20, lr=0.003, optimizer="adam",
                               batch_size=64, runs_root=str(root), name="vit-tiny")
    assert job.wait(120).state == "finished", job.status().message
    return job


@pytest.fixture(scope="module")
def pruned_run(vit_run):
    hook = head_prune_hook(heads_removed=5, rounds=3, start_step=2, end_step=10, probe_size=96, order="importance",
                           normalize_layers=True)
    config = TrainConfig(dataset="digits", model="vit", model_options=TINY, init_from=str(vit_run.path), optimizer="adam",
                         lr=0.001, epochs=1, max_steps=16, eval_every=4, snapshot_every=2, eval_train_samples=200,
                         runs_root=str(Path(vit_run.path).parent), name="heads-5", hooks=[hook])
    job = start(config)
    assert job.wait(120).state == "finished", job.status().message
    return job


def test_heads_go_on_schedule_by_importance_and_the_heatmap_changes(pruned_run):
    run = as_run_view(pruned_run.path)
    run.refresh()
    assert method_of(run.config) is HEAD_PRUNE and HEAD_PRUNE.run_label(run.config) == "5 heads pruned"
    snaps = [(s.step, run.read(HEAD_PRUNE, s)) for s in run.snapshots]
    counts = {step: snap.heads_removed for step, snap in snaps}
    # rounds at steps 2, 6, 10 bring the count to round(k * 5 / 3) = 2, 3, 5 (after_step of step s runs at ctx.step s)
    assert counts[0] == 0 and counts[4] == 2 and counts[8] == 3 and counts[16] == 5
    last = snaps[-1][1]
    assert sorted(set(last.removed_at[last.removed].tolist())) == [2, 6, 10]
    assert (last.removed_at[~last.removed] == -1).all() and last.removed.sum(1).max() <= 3  # each layer keeps a head
    assert last.shape == (2, 4) and last.target == 5 and last.normalized
    assert not np.allclose(snaps[0][1].importance, last.importance)  # the matrix moves while heads go
    torch.testing.assert_close(torch.from_numpy(last.importance).pow(2).sum(1), torch.ones(2), rtol=1e-4, atol=1e-4)
    evals = [r for r in run.evals if HEAD_PRUNE.metric_key(run.config, "heads_removed") in r]
    assert [r[HEAD_PRUNE.metric_key(run.config, "heads_removed")] for r in evals][-1] == 5.0


def test_checkpoint_keeps_removed_heads_off_and_shrinks_to_the_same_predictions(pruned_run):
    run = as_run_view(pruned_run.path)
    run.refresh()
    last = run.read(HEAD_PRUNE, run.snapshots[-1])
    model = load_trained_model(pruned_run.path).eval()
    for layer, block in enumerate(model.blocks):
        for h in np.flatnonzero(last.removed[layer]):
            assert float(block.attn.proj.weight.detach()[:, h * 4:(h + 1) * 4].abs().max()) == 0.0
    small = shrunk_model(model, last).eval()
    assert small.heads_per_layer == [4 - int(r) for r in last.removed.sum(1)]
    x = torch.as_tensor(np.random.default_rng(0).random((8, 1, 8, 8)), dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(small(x), model(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(model(x), model.forward_detailed(x, gate_rows(torch.from_numpy(last.removed))).logits)


def test_importance_in_the_snapshot_is_eq4_on_the_probe_set(vit_run):
    """setup's first snapshot of the trained model equals eq. 4 computed here on the same probe images."""
    from kdviz.engine.setup import dataset_for

    config = TrainConfig(dataset="digits", model="vit", model_options=TINY, runs_root=str(Path(vit_run.path).parent))
    model = load_trained_model(vit_run.path)
    dataset = dataset_for(config)
    hook = build_hook(head_prune_hook(heads_removed=2, rounds=1, start_step=50, probe_size=40, normalize_layers=False,
                                      per_example=False))
    hook.setup(TrainContext(model=model, teacher=None, config=config, dataset=dataset, device=torch.device("cpu"), total_steps=100))
    snap = hook.snapshot(TrainContext(model=model, teacher=None, config=config, dataset=dataset, device=torch.device("cpu")))
    expected = head_importance(model, torch.as_tensor(dataset.train_images[:40]), torch.as_tensor(dataset.train_labels[:40]),
                               per_example=False)
    np.testing.assert_allclose(snap["importance"], expected.numpy(), rtol=1e-5)
    assert snap["removed"].sum() == 0  # the round is due at step 50


def test_schedule_and_bad_options_are_named(vit_run):
    assert HeadSchedule(6, 3, 10, 30).round_steps() == [10, 20, 30]
    assert [HeadSchedule(6, 3, 10, 30).removed_after(s) for s in (9, 10, 25, 30)] == [0, 2, 4, 6]
    with pytest.raises(ValueError, match="4 rounds cannot each remove a head when only 2 go"):
        build_hook(head_prune_hook(heads_removed=2, rounds=4))
    with pytest.raises(ValueError, match=r"end_step \(5\) must come after start_step \(5\)"):
        build_hook(head_prune_hook(heads_removed=4, rounds=2, start_step=5, end_step=5))
    with pytest.raises(ValueError, match="order must be one of"):
        build_hook(head_prune_hook(heads_removed=4, rounds=2, order="magnitude"))
    with pytest.raises(ValueError, match="option 'heads_removed' must be int"):
        TrainConfig(model="vit", model_options=TINY, hooks=[{"name": "head_prune", "heads_removed": 2.5}]).validate()
    config = TrainConfig(dataset="digits", model="vit", model_options=TINY, runs_root=str(Path(vit_run.path).parent))
    hook = build_hook(head_prune_hook(heads_removed=7, rounds=1))
    from kdviz.engine.setup import dataset_for

    ctx = TrainContext(model=load_trained_model(vit_run.path), teacher=None, config=config, dataset=dataset_for(config),
                       device=torch.device("cpu"), total_steps=10)
    with pytest.raises(ValueError, match=r"heads_removed=7 is more than this ViT can lose \(2 layers x 4 heads.*at most 6\)"):
        hook.setup(ctx)


def test_a_resumed_hook_keeps_its_removed_heads_and_their_steps(vit_run):
    """state_dict -> load_state_dict before setup (the engine's resume order): the same heads stay removed at a
    step past the last round, none more are chosen, and the model's removed heads are zeroed again."""
    from kdviz.engine.setup import dataset_for

    config = TrainConfig(dataset="digits", model="vit", model_options=TINY, runs_root=str(Path(vit_run.path).parent))
    dataset = dataset_for(config)
    options = head_prune_hook(heads_removed=3, rounds=3, start_step=0, end_step=4, probe_size=32)
    first, model = build_hook(options), load_trained_model(vit_run.path)
    ctx = TrainContext(model=model, teacher=None, config=config, dataset=dataset, device=torch.device("cpu"), total_steps=10)
    first.setup(ctx)
    for step in range(1, 5):
        ctx.step = step
        first.after_step(ctx)
    state = first.state_dict()
    assert int(state["removed"].sum()) == 3 and sorted(state["removed_at"][state["removed"]].tolist()) == [0, 2, 4]
    resumed, fresh = build_hook(options), load_trained_model(vit_run.path)
    resumed.load_state_dict(state)
    resumed.setup(TrainContext(model=fresh, teacher=None, config=config, dataset=dataset, device=torch.device("cpu"),
                               step=7, total_steps=10))
    assert torch.equal(resumed.removed, state["removed"]) and torch.equal(resumed.removed_at, state["removed_at"])
    with torch.no_grad():
        torch.testing.assert_close(fresh(dataset.test_images[:8]), model(dataset.test_images[:8]))
