"""The "n_m" hook: N:M masks (Mishra et al. 2021) one-shot or gradual while fine-tuning, through the engine."""
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdviz.engine import load_checkpoint, open_run
from kdviz.engine.hooks import TrainContext, build_hook
from kdviz.methods.n_m import N_M, n_m_hook, read_n_m_snapshot
from kdviz.models import build_model
from kdviz.prune.n_m import follows_n_m, n_m_mask
from kdviz.present.lottery import DENSE, NM_RUN, UNSTRUCTURED_RUN, base_config, n_m_experiment, n_m_plan, n_m_results
from _support.jobs import job_manager
from _support.polling import wait_for


def test_gradual_hook_steps_n_down_and_keeps_the_pattern(digits, one_thread):
    torch.manual_seed(0)
    model = build_model("mlp", input_shape=(1, 8, 8), num_classes=10, hidden=[32, 16])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    hook = build_hook(n_m_hook(1, 4, "gradual", start_step=2, end_step=20, frequency=2))
    ctx = TrainContext(model=model, teacher=None, config=types.SimpleNamespace(init_from=None), dataset=digits,
                       device=torch.device("cpu"), optimizer=opt, total_steps=24)
    hook.setup(ctx)
    seen = []
    for step in range(1, 25):
        loss = F.cross_entropy(model(digits.train_images[:64]), digits.train_labels[:64])
        opt.zero_grad(), loss.backward(), opt.step()
        ctx.step = step
        hook.after_step(ctx)
        seen.append(hook.n_now)
        for name, w in ((n, dict(model.named_parameters())[n]) for n in hook.names):
            assert follows_n_m(w.detach() != 0, hook.n_now, 4), (step, name)
    assert seen[0] == 4 and seen[-1] == 1 and sorted(set(seen), reverse=True) == [4, 3, 2, 1]
    assert all(a >= b for a, b in zip(seen, seen[1:]))
    assert hook.metrics(ctx)["sparsity"] == pytest.approx(0.75)
    resumed = build_hook(n_m_hook(1, 4, "gradual", start_step=2, end_step=20, frequency=2))
    resumed.load_state_dict(hook.state_dict())
    resumed.setup(ctx)
    assert resumed.n_now == 1 and torch.equal(resumed.masks["fc1.weight"], hook.masks["fc1.weight"])


def test_one_shot_against_unstructured_through_the_engine(tmp_path):
    base = base_config("digits", str(tmp_path), model="lenet300", epochs=2, train_subset=320, evals=2)
    plan = n_m_plan(base, 2, 4, fine_tune_epochs=1)
    with job_manager(2) as manager:
        exp = n_m_experiment(plan, manager, "test")
        wait_for(lambda: not exp.poll() and not exp.pending and all(
            j.status().state in ("finished", "failed") for j in exp.jobs.values()), 120, "the N:M comparison")
    assert {n: j.status().state for n, j in exp.jobs.items()} == dict.fromkeys([DENSE, NM_RUN, UNSTRUCTURED_RUN], "finished")
    start = load_checkpoint(exp.jobs[DENSE].path / "checkpoints" / "last.pt")["model"]
    state = load_checkpoint(exp.jobs[NM_RUN].path / "checkpoints" / "last.pt")
    for name in ("fc1.weight", "fc2.weight", "fc3.weight"):
        mask = state["hooks"]["n_m"][f"mask/{name}"]
        assert torch.equal(mask, n_m_mask(start[name], 2, 4))  # chosen on the dense weights, one shot
        assert torch.all(state["model"][name][~mask] == 0)
    rows = n_m_results(plan, exp.jobs)
    assert [r.label for r in rows] == ["dense", "2:4", "unstructured 50%"]
    assert rows[1].sparsity == pytest.approx(0.5) and rows[2].sparsity == pytest.approx(0.5, abs=1e-3)
    snaps, _ = open_run(exp.jobs[NM_RUN].path).snapshots_since(0)
    snap = N_M.read_snapshot(snaps[-1].arrays, exp.jobs[NM_RUN].config)
    weights, mask = snap.block("fc1")
    assert mask.shape == (8, 16) and (mask.reshape(8, 4, 4).sum(axis=2) == 2).all()
    assert np.all(weights[~mask] == 0) and snap.n_now == 2 and snap.m == 4 and snap.skipped == []
    assert N_M.run_label(exp.jobs[NM_RUN].config) == "2:4 sparse"


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="1 <= N < M"):
        n_m_hook(4, 2)
    with pytest.raises(ValueError, match="schedule must be one of"):
        n_m_hook(2, 4, "agp")
    with pytest.raises(ValueError, match="option 'n' must be int"):
        n_m_hook("2", 4)
    with pytest.raises(ValueError, match="no N:M arrays"):
        read_n_m_snapshot({})
    model = build_model("lenet5", input_shape=(1, 28, 28), num_classes=10)
    hook = build_hook(n_m_hook(2, 4, layers=["conv1"]))
    ctx = TrainContext(model=model, teacher=None, config=None, dataset=None, device=torch.device("cpu"), total_steps=5)
    with pytest.raises(ValueError, match="cannot hold a 2:4 pattern"):
        hook.setup(ctx)
