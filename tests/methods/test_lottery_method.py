"""The "lottery" hook: one IMP round inside the engine (Frankle & Carbin 2019; Frankle et al. 2020).

Round 0 captures theta_k; round r+1 prunes the previous round's trained weights, rewinds the
survivors to theta_k (or re-initialises them: the control) and keeps them pruned while it trains."""
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdviz.engine import TrainConfig, load_checkpoint, load_trained_model, open_run
from kdviz.engine.hooks import TrainContext, build_hook
from kdviz.methods.lottery import LOTTERY, LotteryHook, lottery_hook, read_lottery_snapshot
from kdviz.models import build_model
from kdviz.prune.lottery import next_ticket_masks
from kdviz.prune.masks import PruningMasks
from kdviz.present.lottery import base_config, control_name, lottery_experiment, lottery_plan, lottery_results, ticket_name
from _support.jobs import job_manager
from _support.polling import wait_for

SHAPE = dict(input_shape=(1, 8, 8), num_classes=10, hidden=[32, 16])


def small_base(tmp_path):
    base = base_config("digits", str(tmp_path), model="mlp", epochs=3, train_subset=640, evals=3, lr=0.05)
    return TrainConfig.from_dict({**base.to_dict(), "model_options": {"hidden": [32, 16]}})


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    """A real two-round search on digits with the control at round 2 (about 3 s on one thread)."""
    root = tmp_path_factory.mktemp("lottery")
    plan = lottery_plan(small_base(root), rounds=2, prune_fraction=0.5, control_rounds=[2])
    with job_manager(2) as manager:
        exp = lottery_experiment(plan, manager, "test")
        wait_for(lambda: not exp.poll() and not exp.pending and all(j.status().state in ("finished", "failed") for j in exp.jobs.values()),
                 120, "the ticket search")
        yield plan, exp


def test_every_round_finishes_and_rounds_chain_by_init_from(search):
    plan, exp = search
    assert {n: j.status().state for n, j in exp.jobs.items()} == dict.fromkeys(
        ["dense", ticket_name(1), ticket_name(2), control_name(2)], "finished")
    assert exp.jobs[ticket_name(2)].config.init_from == str(exp.jobs[ticket_name(1)].path)
    assert exp.jobs[control_name(2)].config.init_from == str(exp.jobs[ticket_name(1)].path)
    dense, rows = lottery_results(plan, exp.jobs)
    assert dense is not None and [r.round for r in rows] == [1, 2]
    assert rows[0].kept == pytest.approx((1024 + 256 + 120) / 2720)  # fc1, fc2 at p = 0.5; fc3 (160) at p/2
    assert rows[1].control is not None and rows[0].control is None
    assert LOTTERY.run_label(exp.jobs[control_name(2)].config) == "random re-init"


def test_round_mask_is_the_magnitude_mask_of_the_previous_trained_weights(search):
    _, exp = search
    previous = load_trained_model(exp.jobs[ticket_name(1)].path)
    prev_state = load_checkpoint(exp.jobs[ticket_name(1)].path / "checkpoints" / "last.pt")["hooks"]["lottery"]
    prev_masks = PruningMasks({k[5:]: v for k, v in prev_state.items() if k.startswith("mask/")})
    expected = next_ticket_masks(previous, prev_masks, 0.5)
    state = load_checkpoint(exp.jobs[ticket_name(2)].path / "checkpoints" / "last.pt")
    for name in expected.names():
        assert torch.equal(state["hooks"]["lottery"][f"mask/{name}"], expected[name])
        assert torch.all(state["model"][name][~expected[name]] == 0)  # stayed pruned while it trained
    # the control has exactly the ticket's mask
    control = load_checkpoint(exp.jobs[control_name(2)].path / "checkpoints" / "last.pt")["hooks"]["lottery"]
    assert all(torch.equal(control[f"mask/{n}"], expected[n]) for n in expected.names())


def test_setup_rewinds_to_theta_0_or_reinitialises(search):
    _, exp = search
    dense_run = exp.jobs["dense"]
    torch.manual_seed(dense_run.config.seed)  # theta_0 rebuilt independently, as the engine seeds it
    theta0 = build_model("mlp", **SHAPE).state_dict()
    for reinit in (False, True):
        model = load_trained_model(dense_run.path)
        hook = build_hook(lottery_hook(0.5, reinit=reinit, reinit_seed=3))
        config = types.SimpleNamespace(init_from=str(dense_run.path))
        hook.setup(TrainContext(model=model, teacher=None, config=config, dataset=None, device=torch.device("cpu")))
        mask = hook.masks["fc1.weight"]
        w = model.state_dict()["fc1.weight"]
        assert torch.all(w[~mask] == 0) and hook.round == 1
        same = torch.equal(w[mask], theta0["fc1.weight"][mask])
        assert same is not reinit
        assert torch.equal(model.state_dict()["fc1.bias"], theta0["fc1.bias"]) is not reinit


def test_live_overlap_and_snapshot_reader(search):
    _, exp = search
    reader = open_run(exp.jobs[ticket_name(2)].path)
    evals = [r for r in reader.metrics() if r.get("kind") == "eval"]
    overlaps = [r["lottery/candidate_overlap"] for r in evals if "lottery/candidate_overlap" in r]
    assert overlaps and all(0.0 < o <= 1.0 for o in overlaps)
    assert evals[-1]["lottery/round_overlap"] == pytest.approx(0.5, abs=0.05)  # nested masks: (1 - p)
    snaps, _ = reader.snapshots_since(0)
    snap = LOTTERY.read_snapshot(snaps[-1].arrays, exp.jobs[ticket_name(2)].config)
    assert snap.layers == ["fc1", "fc2", "fc3"] and snap.round == 2 and not snap.reinit
    assert snap.kept_fraction() == pytest.approx(1 - evals[-1]["lottery/sparsity"])
    assert snap.mask("fc1").dtype == np.uint8
    with pytest.raises(ValueError, match="no lottery-ticket arrays"):
        read_lottery_snapshot({}, "lottery")


def test_rewind_step_k_captures_the_weights_after_k_steps(digits, one_thread):
    torch.manual_seed(0)
    model = build_model("mlp", **SHAPE)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    hook = LotteryHook(rewind_step=3)
    ctx = TrainContext(model=model, teacher=None, config=types.SimpleNamespace(init_from=None), dataset=digits,
                       device=torch.device("cpu"), optimizer=opt)
    hook.setup(ctx)
    assert hook.rewind_weights is None
    for step in range(1, 6):
        loss = F.cross_entropy(model(digits.train_images[:64]), digits.train_labels[:64])
        opt.zero_grad(), loss.backward(), opt.step()
        ctx.step = step
        hook.after_step(ctx)
        if step == 3:
            at_k = {k: v.clone() for k, v in model.state_dict().items()}
    assert all(torch.equal(hook.rewind_weights[k], at_k[k]) for k in at_k)
    resumed = LotteryHook(rewind_step=3)
    resumed.load_state_dict(hook.state_dict())
    resumed.setup(ctx)
    assert torch.equal(resumed.rewind_weights["fc1.weight"], at_k["fc1.weight"]) and resumed.round == 0


def test_bad_options_and_starts_are_named(tmp_path):
    with pytest.raises(ValueError, match="prune_fraction"):
        lottery_hook(0.0)
    with pytest.raises(ValueError, match="scope"):
        lottery_hook(scope="row")
    with pytest.raises(ValueError, match="rewind_step"):
        lottery_hook(rewind_step=-1)
    model = build_model("mlp", **SHAPE)
    ctx = TrainContext(model=model, teacher=None, config=types.SimpleNamespace(init_from=None), dataset=None,
                       device=torch.device("cpu"))
    with pytest.raises(ValueError, match="needs init_from"):
        LotteryHook(reinit=True).setup(ctx)
    plain = tmp_path / "plain-run"
    plain.mkdir()
    (plain / "config.json").write_text(TrainConfig(dataset="digits").to_json())
    ctx.config = types.SimpleNamespace(init_from=str(plain))
    with pytest.raises(ValueError, match="is not a round of a lottery-ticket search"):
        LotteryHook().setup(ctx)
    with pytest.raises(ValueError, match="rounds must be"):
        lottery_plan(small_base(tmp_path), rounds=0)
    with pytest.raises(ValueError, match="control rounds"):
        lottery_plan(small_base(tmp_path), rounds=2, control_rounds=[3])
    with pytest.raises(ValueError, match=r"rewind step k must be a whole number from 0 to 29 \(a round trains 30"):
        lottery_plan(small_base(tmp_path), rounds=2, rewind_step=30)  # 3 epochs of 10 batches of 64
