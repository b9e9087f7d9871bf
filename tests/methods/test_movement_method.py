"""The "movement" hook and method: through the real engine, fine-tuning a trained digits MLP beside
magnitude pruning on the same cubic schedule; typed options; resume state; the snapshot reader."""
import math

import numpy as np
import pytest
import torch

from _support.jobs import finished_job
from kdviz.engine import TrainConfig, load_checkpoint, open_run
from kdviz.engine.hooks import build_hook
from kdviz.methods.base import method_of
from kdviz.methods.movement import MOVEMENT, MovementHook, movement_configs, movement_hook, read_movement_snapshot
from kdviz.methods.prune import PRUNE
from kdviz.prune.schedule import agp_sparsity


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, manager):
    config = TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [32, 16]}, epochs=1, max_steps=40,
                         batch_size=32, lr=0.1, eval_every=40, snapshot_every=40, train_subset=600,
                         runs_root=str(tmp_path_factory.mktemp("runs")), name="mv-baseline")
    return finished_job(config, manager)


def test_movement_beside_magnitude_through_the_engine(baseline, manager):
    fine_tune = TrainConfig(**{**baseline.config.__dict__, "init_from": str(baseline.path), "max_steps": 24,
                               "lr": 0.05, "eval_every": 6, "snapshot_every": 6, "name": "mv"})
    configs = movement_configs(fine_tune, 0.8, score_lr=0.05, frequency=2, scatter_points=50)
    assert set(configs) == {MOVEMENT.label, PRUNE.label}
    assert method_of(configs[MOVEMENT.label]) is MOVEMENT and method_of(configs[PRUNE.label]) is PRUNE
    jobs = {label: finished_job(config, manager) for label, config in configs.items()}
    moved, magnitude = open_run(jobs[MOVEMENT.label].path), open_run(jobs[PRUNE.label].path)
    m_evals = [r for r in moved.metrics() if r.get("kind") == "eval"]
    p_evals = [r for r in magnitude.metrics() if r.get("kind") == "eval"]
    # the same cubic ramp (0 -> 80 % over 18 steps, every 2): identical sparsity at every evaluation
    for m, p in zip(m_evals, p_evals):
        assert m["movement/sparsity"] == pytest.approx(p["prune/sparsity"], abs=2e-3), m["step"]
        assert m["movement/target"] == pytest.approx(agp_sparsity(m["step"], 0.0, 0.8, 0, 18, 2))
    assert m_evals[-1]["movement/sparsity"] == pytest.approx(0.8, abs=2e-3)
    assert 0.2 < m_evals[-1]["movement/agreement"] < 1.0  # movement keeps other weights than magnitude
    snap = read_movement_snapshot(moved.snapshots_since(0)[0][-1].arrays, MOVEMENT.hook_label(configs[MOVEMENT.label]))
    assert snap.names == ["fc1", "fc2", "fc3"] and snap.overall_sparsity() == pytest.approx(0.8, abs=2e-3)
    fc1 = snap.layer("fc1")
    assert fc1.abs_weight.shape == fc1.score.shape == fc1.kept.shape == (50,)
    assert (fc1.kept != fc1.magnitude_kept).any()
    ckpt = load_checkpoint(jobs[MOVEMENT.label].path / "checkpoints" / "last.pt")
    for name in ("fc1.weight", "fc2.weight"):
        mask = ckpt["hooks"]["movement"][f"mask/{name}"]
        assert torch.all(ckpt["model"][name][~mask] == 0)
        kept_frac = float(mask.float().mean())
        assert kept_frac == pytest.approx(1 - math.floor(0.8 * mask.numel() + 0.5) / mask.numel())


def test_resume_state_restores_scores_before_setup(digits, one_thread):
    from kdviz.engine.hooks import TrainContext
    from kdviz.models import build_model

    torch.manual_seed(0)
    model = build_model("mlp", input_shape=digits.input_shape, num_classes=10, hidden=(16,))
    ctx = TrainContext(model=model, teacher=None, config=None, dataset=digits, device=torch.device("cpu"), total_steps=20)
    first = MovementHook(sparsity=0.5, end_step=4)
    first.setup(ctx)
    first.pruner.scores["fc1.weight"] = torch.randn_like(first.pruner.scores["fc1.weight"])
    ctx.step = 10
    first._remask(ctx)
    second = MovementHook(sparsity=0.5, end_step=4)
    second.load_state_dict(first.state_dict())
    second.setup(ctx)
    assert torch.equal(second.pruner.masks["fc1.weight"], first.pruner.masks["fc1.weight"])
    assert second.pruner.masks.sparsity()["fc1.weight"] == pytest.approx(0.5, abs=1e-3)


def test_typed_options_name_the_problem():
    assert isinstance(build_hook(movement_hook(0.7, "soft", threshold=0.3, penalty=0.1)), MovementHook)
    with pytest.raises(ValueError, match="movement-pruning mode 'medium'"):
        movement_hook(0.5, "medium")
    with pytest.raises(ValueError, match="score_lr"):
        movement_hook(0.5, score_lr=0.0)
    with pytest.raises(ValueError, match="threshold"):
        movement_hook(0.5, "soft", threshold=1.0)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        movement_hook(1.0)
    with pytest.raises(ValueError, match="init_from"):
        movement_configs(TrainConfig(dataset="digits", model="mlp"), 0.5)
    fine_tune = TrainConfig(dataset="digits", model="mlp", init_from="/nowhere", max_steps=100)
    with pytest.raises(ValueError, match="warmup"):
        movement_configs(fine_tune, 0.5, warmup=0.9)
    warm = movement_configs(fine_tune, 0.5, warmup=0.2)
    assert [(h["start_step"], h["end_step"]) for c in warm.values() for h in c.hooks] == [(20, 75), (20, 75)]


def test_reader_refuses_arrays_without_movement():
    with pytest.raises(ValueError, match="no movement-pruning arrays"):
        read_movement_snapshot({"prune/layers": np.array(["fc1"])}, "movement")


def test_soft_movement_keeps_positive_scores_and_the_penalty_pushes_them_down(digits, one_thread):
    import torch.nn.functional as F
    from kdviz.engine.hooks import TrainContext
    from kdviz.models import build_model

    def run(penalty: float) -> MovementHook:
        torch.manual_seed(0)
        model = build_model("mlp", input_shape=digits.input_shape, num_classes=10, hidden=(32,))
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        ctx = TrainContext(model=model, teacher=None, config=None, dataset=digits, device=torch.device("cpu"),
                           optimizer=opt, total_steps=30)
        hook = MovementHook(mode="soft", threshold=0.5, penalty=penalty, score_lr=1.0, end_step=20, frequency=5)
        hook.setup(ctx)
        g = torch.Generator().manual_seed(0)
        for _ in range(30):
            idx = torch.randint(0, len(digits.train_labels), (64,), generator=g)
            opt.zero_grad()
            F.cross_entropy(model(digits.train_images[idx]), digits.train_labels[idx]).backward()
            opt.step()
            ctx.step += 1
            hook.after_step(ctx)
        return hook

    plain, penalised = run(0.0), run(0.05)
    scores = plain.pruner.scores["fc1.weight"]
    assert torch.equal(plain.pruner.masks["fc1.weight"], torch.sigmoid(scores) > 0.5)  # tau reached 0.5: S > 0 kept
    assert 0.05 < plain.pruner.masks.overall_sparsity() < 0.95
    assert penalised.pruner.masks.overall_sparsity() > plain.pruner.masks.overall_sparsity()
