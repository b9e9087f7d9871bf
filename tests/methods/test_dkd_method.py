"""The "dkd" hook and method (Zhao et al., CVPR 2022, eqs. 7-8) through the real engine.

A small MLP teacher is trained on digits, then DKD students through ``start()``; the expected values are
recomputed here from the run folders' checkpoints and from ``kdviz.distill.dkd``'s functions.
"""
from __future__ import annotations

import types

import numpy as np
import pytest
import torch

import kdviz.methods.dkd  # noqa: F401  (registers the hook until kdviz.methods imports it)
from kdviz.distill.dkd import dkd_parts, nckd, tckd
from kdviz.engine import TrainConfig, load_trained_model, open_run, start
from kdviz.engine.hooks import StepBatch, TrainContext, build_hook
from kdviz.methods import get_method, method_of
from kdviz.methods.dkd import DKD, DKDHook, dkd_config, read_dkd_snapshot
from kdviz.models import build_model
from kdviz.present import as_run_view

COMMON = dict(dataset="digits", model="mlp", device="cpu", eval_train_samples=100, batch_size=64)
STUDENT = {"hidden": [16]}
PROBE = 48


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    job = start(TrainConfig(model_options={"hidden": [64]}, max_steps=60, lr=0.1, snapshot_every=0,
                            runs_root=str(tmp_path_factory.mktemp("dkd-runs")), name="teacher", **COMMON))
    assert job.wait(120).state == "finished"
    return job


def dkd_run(teacher, name: str, **options):
    config = TrainConfig(model_options=STUDENT, teacher=str(teacher.path), lr=0.02, max_steps=30, eval_every=10,
                         snapshot_every=10, seed=3, runs_root=str(teacher.path.parent), name=name,
                         hooks=[{"name": "dkd", "probe_size": PROBE, **options}], **COMMON)
    job = start(config)
    assert job.wait(120).state == "finished", job.status().message
    return job


@pytest.fixture(scope="module")
def tuned(teacher):  # every option away from its default
    return dkd_run(teacher, "dkd-tuned", alpha=2.0, beta=0.5, T=2.0, warmup_epochs=3)


@pytest.fixture(scope="module")
def default(teacher):
    return dkd_run(teacher, "dkd-default")


def probe_parts(run, teacher, digits, T: float):
    student, model = load_trained_model(run.path).eval(), load_trained_model(teacher.path).eval()
    x, y = digits.test_images[:PROBE], digits.test_labels[:PROBE]
    with torch.no_grad():
        return dkd_parts(student(x), model(x), y, T)


def test_terms_are_logged_and_add_up_to_the_loss(tuned, default):
    for run in (tuned, default):
        steps = open_run(run.path).metrics("step")
        assert len(steps) == 30
        for r in steps:  # eq. 8: CE + alpha TCKD + beta NCKD, nothing else
            assert r["loss"] == pytest.approx(r["hard"] + r["dkd/tckd"] + r["dkd/nckd"], rel=1e-5)
            assert r["soft"] == 0.0 and r["dkd/tckd"] > 0 and r["dkd/nckd"] > 0


def test_alpha_beta_warmup_and_T_each_change_the_logged_terms(tuned, default, teacher):
    """Same seed, same first batch, same initial student: step 1's terms differ only by the weights
    (alpha 2 vs 1, beta 0.5 vs 8, warm-up weight 1/3 vs 1) and, for ``tuned``, the temperature."""
    weights_only = dkd_run(teacher, "dkd-weights", alpha=2.0, beta=0.5, warmup_epochs=3)  # T = 4, the default's
    first = {name: open_run(run.path).metrics("step")[0]
             for name, run in (("tuned", tuned), ("default", default), ("weights", weights_only))}
    assert first["weights"]["hard"] == pytest.approx(first["default"]["hard"], rel=1e-6)
    assert first["weights"]["dkd/tckd"] == pytest.approx(2.0 / 3.0 * first["default"]["dkd/tckd"], rel=1e-5)
    assert first["weights"]["dkd/nckd"] == pytest.approx(0.5 / 8.0 / 3.0 * first["default"]["dkd/nckd"], rel=1e-5)
    for key in ("dkd/tckd", "dkd/nckd"):  # T = 2 instead of 4 changes both parts
        assert first["tuned"][key] != pytest.approx(first["weights"][key], rel=1e-2)


def test_evaluation_metrics_follow_eq7_at_the_runs_temperature(tuned, default, teacher, digits):
    for run, T in ((tuned, 2.0), (default, 4.0)):
        last = open_run(run.path).metrics("eval")[-1]
        assert last["step"] == 30
        parts = probe_parts(run, teacher, digits, T)
        assert last["dkd/tckd"] == pytest.approx(float(parts.tckd.mean()), rel=1e-4)
        assert last["dkd/nckd"] == pytest.approx(float(parts.nckd.mean()), rel=1e-4)
        assert last["dkd/hinton_kd"] == pytest.approx(float(parts.kd.mean()), rel=1e-4)
        assert last["dkd/teacher_target_prob"] == pytest.approx(float(parts.teacher_target.mean()), rel=1e-5)
        assert last["dkd/nckd_weight"] == pytest.approx(1.0 - last["dkd/teacher_target_prob"], rel=1e-5)
        assert last["dkd/hinton_kd"] == pytest.approx(last["dkd/tckd"] + last["dkd/nckd_in_kd"], rel=1e-5)  # eq. 7
    other_T = probe_parts(tuned, teacher, digits, 4.0)  # T = 2 was used, not the default 4
    logged_kd = open_run(tuned.path).metrics("eval")[-1]["dkd/hinton_kd"]
    assert logged_kd != pytest.approx(float(other_T.kd.mean()), rel=1e-2)
    # a softer teacher (T 4) puts less on the target class than at T 2
    t_soft = open_run(default.path).metrics("eval")[-1]["dkd/teacher_target_prob"]
    assert t_soft < open_run(tuned.path).metrics("eval")[-1]["dkd/teacher_target_prob"]


def test_warmup_ramps_the_terms_per_epoch(tuned, default):
    evals = open_run(tuned.path).metrics("eval")  # 22 steps per epoch: steps 0, 10, 20 in epoch 1, 30 in epoch 2
    assert [r["dkd/warmup"] for r in evals] == pytest.approx([1 / 3, 1 / 3, 1 / 3, 2 / 3])
    assert {r["dkd/warmup"] for r in open_run(default.path).metrics("eval")} == {1.0}


def test_training_lowers_the_probe_distillation_loss(default):
    evals = open_run(default.path).metrics("eval")
    assert evals[-1]["dkd/hinton_kd"] < 0.8 * evals[0]["dkd/hinton_kd"], [r["dkd/hinton_kd"] for r in evals]
    assert evals[-1]["test_acc"] > evals[0]["test_acc"] + 0.2


def test_snapshot_read_through_the_spec(tuned, teacher, digits):
    snapshot = open_run(tuned.path).latest_snapshot()
    assert snapshot.step == 30
    snap = DKD.read_snapshot(snapshot.arrays, tuned.config)
    parts = probe_parts(tuned, teacher, digits, 2.0)
    assert snap.T == 2.0 and snap.teacher_target_prob.shape == (PROBE,)
    np.testing.assert_array_equal(snap.labels, digits.test_labels[:PROBE].numpy())
    np.testing.assert_allclose(snap.teacher_target_prob, parts.teacher_target.numpy(), rtol=1e-5)
    np.testing.assert_allclose(snap.nckd, parts.nckd.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(snap.kd, snap.tckd + snap.nckd_in_kd, rtol=1e-4, atol=1e-6)
    expected = 1 - float((parts.nckd_weight * parts.nckd).sum() / parts.nckd.sum())
    assert snap.suppressed_fraction == pytest.approx(expected, rel=1e-4) and 0 < snap.suppressed_fraction < 1
    with pytest.raises(ValueError, match="no decoupled-KD parts under 'prune/'"):
        read_dkd_snapshot(snapshot.arrays, "prune")


def test_hook_weights_and_warmup_scale_the_terms(digits, teacher):
    torch.manual_seed(0)
    student = build_model("mlp", input_shape=(1, 8, 8), **STUDENT)
    model = load_trained_model(teacher.path).eval()
    x, y = digits.train_images[:16], digits.train_labels[:16]
    logits, t_logits = student(x), model(x).detach()
    batch = StepBatch(x, y, torch.arange(16), logits, None, t_logits, None)
    ctx = TrainContext(model=student, teacher=model, config=types.SimpleNamespace(), dataset=digits,
                       device=torch.device("cpu"), epoch=1)
    hook = build_hook({"name": "dkd", "alpha": 3.0, "beta": 0.25, "T": 6.0, "warmup_epochs": 4})
    terms = hook.loss_terms(ctx, batch)  # epoch 2 of a 4-epoch warm-up: weight 1/2
    expected_t = float(tckd(logits, t_logits, y, 6.0).detach())
    expected_n = float(nckd(logits, t_logits, y, 6.0).detach())
    assert float(terms["tckd"].detach()) == pytest.approx(3.0 * 0.5 * expected_t, rel=1e-6)
    assert float(terms["nckd"].detach()) == pytest.approx(0.25 * 0.5 * expected_n, rel=1e-6)
    assert [hook.warmup_weight(e) for e in (0, 3, 9)] == [0.25, 1.0, 1.0]
    (terms["tckd"] + terms["nckd"]).backward()
    assert student.fc1.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="needs a teacher"):
        DKDHook().setup(TrainContext(student, None, None, digits, torch.device("cpu")))
    with pytest.raises(ValueError, match="got no teacher logits"):
        hook.loss_terms(ctx, StepBatch(x, y, torch.arange(16), logits))


def test_bad_options_are_rejected_by_start_before_any_folder(teacher, tmp_path):
    config = {**COMMON, "model_options": STUDENT, "teacher": str(teacher.path), "runs_root": str(tmp_path)}
    cases = [({"betta": 2.0}, "hook 'dkd' has no option.*'betta'.*known: alpha, beta, T, warmup_epochs, probe_size"),
             ({"beta": -1.0}, "dkd: beta must be finite and >= 0, got -1.0"),
             ({"alpha": float("nan")}, "dkd: alpha must be finite and >= 0"),
             ({"T": 0.0}, "dkd: temperature T must be a positive finite number"),
             ({"T": "hot"}, "option 'T' must be float"),
             ({"warmup_epochs": -2}, "warmup_epochs must be a whole number of epochs >= 0"),
             ({"warmup_epochs": 1.5}, "option 'warmup_epochs' must be int"),
             ({"probe_size": 0}, "probe_size .* must be at least 1, got 0")]
    for options, message in cases:
        with pytest.raises(ValueError, match=message):
            start({**config, "hooks": [{"name": "dkd", **options}]})
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="decoupled KD needs a teacher"):
        dkd_config(TrainConfig())


def test_method_of_labels_and_config(tuned, teacher):
    assert method_of(tuned.config) is DKD is get_method("dkd")
    assert DKD.run_label(tuned.config) == "DKD α=2 β=0.5"
    view = as_run_view(tuned)
    assert view.method is DKD and view.colour == DKD.colour and view.role == "DKD student"
    assert DKD.colour not in {m.colour for m in (get_method(n) for n in ("kd", "scratch", "teacher", "attention"))}
    assert set(DKD.options()) == {"alpha", "beta", "T", "warmup_epochs", "probe_size"}
    base = TrainConfig(teacher=str(teacher.path), model_options=STUDENT, seed=5)
    config = dkd_config(base, alpha=0.5, beta=4.0, T=3.0, warmup_epochs=2).validate()
    assert config.method == "ce" and config.hooks == [{"name": "dkd", "alpha": 0.5, "beta": 4.0, "T": 3.0,
                                                       "warmup_epochs": 2}]
    assert method_of(config) is DKD and DKD.run_label(config) == "DKD α=0.5 β=4"
    assert method_of(TrainConfig(method="kd", teacher="t", hooks=[{"name": "dkd"}])) is DKD
