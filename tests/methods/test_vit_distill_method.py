"""The "vit_distill" hook (TinyBERT, Jiao et al. 2020, eqs. 7-11): every option at a non-default value
changes the loss it should (recomputed here from the models' own attentions and hidden states), the
projections train and travel in checkpoints, and a real short run on digits logs every loss per step
and snapshots attention maps that move."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import kdviz.methods.vit_distill as vd
from kdviz.data import load_dataset
from kdviz.engine import TrainConfig, load_checkpoint, open_run, start
from kdviz.engine.hooks import StepBatch, TrainContext
from kdviz.methods import method_of
from kdviz.models import build_model
from kdviz.present.vit_configs import student_config, teacher_config

TEACHER = {"patch": 2, "dim": 32, "depth": 4, "heads": 4}
STUDENT = {"patch": 2, "dim": 16, "depth": 2, "heads": 2}


@pytest.fixture(scope="module")
def parts():
    data = load_dataset("digits")
    torch.manual_seed(0)
    teacher = build_model("vit", data.input_shape, 10, **TEACHER).eval()
    student = build_model("vit", data.input_shape, 10, **STUDENT)
    return data, teacher, student


def built(parts, **options):
    data, teacher, student = parts
    hook = vd.ViTDistillHook(probe_size=8, **options)
    ctx = TrainContext(model=student, teacher=teacher, config=None, dataset=data, device=torch.device("cpu"))
    torch.manual_seed(1)
    hook.setup(ctx)
    return hook, ctx


def step(parts, hook, ctx):
    data, teacher, student = parts
    images = torch.as_tensor(data.train_images[:16])
    logits, feats = student.forward_with_features(images)
    with torch.no_grad():
        t_logits, t_feats = teacher.forward_with_features(images)
    batch = StepBatch(images, torch.as_tensor(data.train_labels[:16]), torch.arange(16), logits, feats, t_logits, t_feats)
    terms = hook.loss_terms(ctx, batch)
    assert all(t.requires_grad for t in terms.values())  # they train the student
    detached = {k: v.detach() for k, v in feats.items()}
    return {k: v.detach() for k, v in terms.items()}, (logits.detach(), detached, t_logits, t_feats)


@torch.no_grad()
def by_hand(student, teacher, feats, t_feats, pairs, kind="probs", grouping="group"):
    """Eq. 7 summed over ``pairs``, from forward_detailed's own attentions (probs) or recomputed scores."""
    s_h = [feats[n] for n in student.feature_names]
    t_h = [t_feats[n] for n in teacher.feature_names]
    s_att, t_att = student.attention_from_hidden(s_h, kind), teacher.attention_from_hidden(t_h, kind)
    total = 0.0
    for s, t in pairs:
        a_s, a_t = s_att[s - 1], t_att[t - 1]
        if grouping == "group":
            a_t = torch.stack([a_t[:, :2].mean(1), a_t[:, 2:].mean(1)], 1)  # 4 teacher heads in 2 groups
        else:
            a_s, a_t = a_s.mean(1, keepdim=True), a_t.mean(1, keepdim=True)
        total += float(((a_s - a_t) ** 2).mean())
    return total


def test_each_weight_scales_its_own_term_and_zero_switches_it_off(parts):
    hook, ctx = built(parts, prediction_weight=0.5, hidden_weight=2.0, attention_weight=3.0, embedding_weight=4.0, T=3.0)
    terms, (logits, feats, t_logits, t_feats) = step(parts, hook, ctx)
    _, teacher, student = parts
    p, log_q = torch.softmax(t_logits / 3, 1), torch.log_softmax(logits.detach() / 3, 1)
    kl = float((p * (p.log() - log_q)).sum(1).mean()) * 9
    assert float(terms["prediction"]) == pytest.approx(0.5 * kl, rel=1e-4)
    w_h, w_e = hook.projections.hidden.weight.detach(), hook.projections.embedding.weight.detach()
    hidden = sum(float(((feats[f"block{s}"] @ w_h.T - t_feats[f"block{t}"]) ** 2).mean()) for s, t in [(1, 2), (2, 4)])
    assert float(terms["hidden"]) == pytest.approx(2.0 * hidden, rel=1e-4)
    assert float(terms["embedding"]) == pytest.approx(4.0 * float(((feats["embed"] @ w_e.T - t_feats["embed"]) ** 2).mean()),
                                                      rel=1e-4)
    assert float(terms["attention"]) == pytest.approx(3.0 * by_hand(student, teacher, feats, t_feats, [(1, 2), (2, 4)]), rel=1e-4)
    off, _ = step(parts, *built(parts, hidden_weight=0.0, embedding_weight=0.0))
    assert sorted(off) == ["attention", "prediction"]


@pytest.mark.parametrize("options, pairs, kind, grouping", [
    ({"layer_mapping": "last"}, [(2, 4)], "probs", "group"),
    ({"layer_mapping": [[1, 1]]}, [(1, 1)], "probs", "group"),
    ({"layer_mapping": [3, 4], "attention_kind": "scores"}, [(1, 3), (2, 4)], "scores", "group"),
    ({"head_matching": "mean"}, [(1, 2), (2, 4)], "probs", "mean"),
])
def test_mapping_kind_and_head_matching_reach_the_attention_loss(parts, options, pairs, kind, grouping):
    hook, ctx = built(parts, prediction_weight=0.0, hidden_weight=0.0, **options)
    terms, (_, feats, _, t_feats) = step(parts, hook, ctx)
    assert hook.pairs == pairs
    assert float(terms["attention"]) == pytest.approx(by_hand(parts[2], parts[1], feats, t_feats, pairs, kind, grouping), rel=1e-4)


def test_probe_and_snapshot_options_and_the_typed_reader(parts):
    data, teacher, student = parts
    hook, ctx = built(parts, probe_index=5)
    arrays = hook.snapshot(ctx)
    snap = vd.read_vit_distill_snapshot({f"vit_distill/{k}": v for k, v in arrays.items()}, "vit_distill")
    np.testing.assert_allclose(snap.image, data.test_images[5, 0])
    assert snap.grid == (4, 4) and snap.pairs == [(1, 2), (2, 4)]
    assert [a.shape for a in snap.teacher] == [(4, 17, 17)] * 4 and [a.shape for a in snap.student] == [(2, 17, 17)] * 2
    with torch.no_grad():
        expected = teacher.forward_detailed(torch.as_tensor(data.test_images[5:6])).attentions[2][0].numpy()
    np.testing.assert_allclose(snap.teacher[2], expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(snap.student_rollout.sum(-1), np.ones(17), rtol=1e-5)
    assert set(snap.losses) == set(vd.LOSSES)
    metrics = hook.metrics(ctx)
    assert metrics["probe/attention"] == pytest.approx(hook.losses(ctx, torch.as_tensor(data.test_images[:8]))["attention"])
    with pytest.raises(ValueError, match="no transformer attention maps"):
        vd.read_vit_distill_snapshot({}, "vit_distill")


def test_projections_train_and_travel_in_the_hook_state(parts):
    hook, ctx = built(parts)
    assert {id(p) for p in hook.extra_parameters()} == {id(hook.projections.hidden.weight), id(hook.projections.embedding.weight)}
    state = hook.state_dict()
    assert set(state) == {"projections/hidden.weight", "projections/embedding.weight"}
    fresh = vd.ViTDistillHook()
    fresh.load_state_dict({k: v + 1 for k, v in state.items()})  # before setup: applied in setup
    torch.manual_seed(9)
    fresh.setup(ctx)
    torch.testing.assert_close(fresh.projections.hidden.weight, state["projections/hidden.weight"] + 1)
    with pytest.raises(ValueError, match="holds no projections"):
        vd.ViTDistillHook().load_state_dict({})


@pytest.mark.parametrize("options, message", [
    ({"attention_weight": -1.0}, "attention_weight must be finite and non-negative"),
    ({"attention_kind": "logits"}, "attention_kind must be one of"),
    ({"head_matching": "max"}, "head_matching must be one of"),
    ({"layer_mapping": "middle"}, "layer_mapping must be one of"),
    ({"T": 0.0}, "vit_distill"),
    ({"hidden_weight": "1"}, "option 'hidden_weight' must be float"),
    ({"heads": 2}, "no option"),
])
def test_bad_options_are_refused_by_validate(options, message):
    config = student_config("digits", teacher="x", hooks=[{"name": "vit_distill", **options}])
    with pytest.raises(ValueError, match=message):
        config.validate()


def test_models_that_cannot_be_matched_are_refused_at_setup(parts):
    data, teacher, student = parts
    hook = vd.ViTDistillHook()
    mlp = build_model("mlp", data.input_shape, 10, hidden=[8])
    with pytest.raises(ValueError, match="needs a vision transformer .* as the student, got MLP"):
        hook.setup(TrainContext(model=mlp, teacher=teacher, config=None, dataset=data, device=torch.device("cpu")))
    three = build_model("vit", data.input_shape, 10, patch=2, dim=24, depth=2, heads=3)
    with pytest.raises(ValueError, match="student has 3 heads and the teacher 4"):
        hook.setup(TrainContext(model=three, teacher=teacher, config=None, dataset=data, device=torch.device("cpu")))
    coarse = build_model("vit", data.input_shape, 10, patch=4, dim=16, depth=2, heads=2)
    with pytest.raises(ValueError, match="same patch grid"):
        hook.setup(TrainContext(model=coarse, teacher=teacher, config=None, dataset=data, device=torch.device("cpu")))


def test_a_real_short_run_logs_every_loss_and_its_attention_maps_move(tmp_path, one_thread):
    tiny = dict(runs_root=str(tmp_path), train_subset=200, batch_size=32, eval_train_samples=100, device="cpu")
    teacher = start(teacher_config("digits", epochs=1, max_steps=14, model_options=TEACHER, **tiny))
    assert teacher.wait(120).state == "finished", teacher.status().message
    student = student_config("digits", epochs=3, max_steps=18, eval_every=9, snapshot_every=9,
                             model_options=STUDENT, **tiny)
    configs = vd.vit_distill_configs(student, str(teacher.path), embedding_weight=0.5, T=2.0, layer_mapping="top")
    assert [method_of(c).name for c in configs.values()] == ["vit_distill", "scratch"]
    job = start(configs[vd.VIT_DISTILL.label])
    assert job.wait(120).state == "finished", job.status().message
    run = open_run(job.path)
    steps = [r for r in run.metrics() if r["kind"] == "step"]
    assert len(steps) == 18
    keys = vd.loss_keys(run.config)
    assert sorted(keys) == sorted(vd.LOSSES)
    assert all(np.isfinite(r[key]) for r in steps for key in keys.values())
    total = steps[-1]
    assert total["loss"] == pytest.approx(total["hard"] + sum(total[k] for k in keys.values()), rel=1e-5)
    evals = [r for r in run.metrics() if r["kind"] == "eval"]
    assert "vit_distill/probe/attention" in evals[-1]
    snaps = run.snapshots_since(0)[0]
    first, last = (vd.VIT_DISTILL.read_snapshot(s.arrays, run.config) for s in (snaps[0], snaps[-1]))
    assert first.pairs == [(1, 3), (2, 4)]  # "top": g(m) = m + 4 - 2
    assert np.abs(last.student[1] - first.student[1]).max() > 1e-3  # the student's maps moved
    np.testing.assert_allclose(last.teacher[3], first.teacher[3], rtol=1e-6)  # the teacher's did not
    state = load_checkpoint(job.path)["hooks"]["vit_distill"]
    assert state["projections/hidden.weight"].shape == (32, 16)


def test_the_run_label_names_the_losses_switched_on():
    config = TrainConfig(hooks=[{"name": "vit_distill", "prediction_weight": 0.0, "embedding_weight": 2.0}])
    assert vd.VIT_DISTILL.run_label(config) == "TinyBERT (hidn+attn+embd)"
    assert method_of(config).name == "vit_distill"
    assert sorted(vd.loss_keys(config)) == ["attention", "embedding", "hidden"]
