"""The "logit_matching" hook and method (Ba & Caruana 2014; Hinton et al. 2015, section 2.1) through the
real engine: a tiny MLP teacher on digits, then logit-matching students through ``start()``.

Expected values are recomputed here with numpy from the run folders (metrics.jsonl, snapshot .npz)
and from the teacher's checkpoint, never through the code under test.
"""
from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
import torch

from kdviz.engine import TrainConfig, load_trained_model, open_run, start, train_teacher_cached
from kdviz.engine.hooks import StepBatch, TrainContext, build_hook
from kdviz.methods import all_methods, get_method, method_of
from kdviz.methods.logit_matching import LOGIT_MATCHING, LogitMatchingHook, read_logit_matching_snapshot
from kdviz.models import build_model

from _support.run_files import metric_lines, snapshot_array

COMMON = dict(dataset="digits", model="mlp", batch_size=64, eval_train_samples=200, device="cpu")
STUDENT = {"hidden": [16]}


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    job = train_teacher_cached(model_options={"hidden": [48]}, max_steps=40, lr=0.05, snapshot_every=0,
                               runs_root=str(tmp_path_factory.mktemp("lm-runs")), name="teacher-mlp48",
                               **{k: v for k, v in COMMON.items() if k not in ("dataset", "model")})
    assert job.wait(120).state == "finished", job.status().message
    return job


def student_config(teacher, name: str, **hook) -> TrainConfig:
    return TrainConfig(model_options=STUDENT, teacher=str(teacher.path), lr=0.05, epochs=3, max_steps=45, eval_every=15,
                       snapshot_every=15, runs_root=str(Path(teacher.path).parent), name=name,
                       hooks=[{"name": "logit_matching", **hook}], **COMMON)


@pytest.fixture(scope="module")
def lm_run(teacher):
    job = start(student_config(teacher, "lm-student", weight=0.2, probe_size=40, temperatures=[1, 4, 100]))
    assert job.wait(120).state == "finished", job.status().message
    return job


def ba_caruana(student: np.ndarray, teacher: np.ndarray) -> float:
    return float(((student - teacher) ** 2).sum() / (2 * len(student)))


def kl_times_t2(student: np.ndarray, teacher: np.ndarray, T: float) -> float:
    def log_softmax(z):
        z = z / T - (z / T).max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    log_p, log_q = log_softmax(teacher), log_softmax(student)
    return float(T * T * (np.exp(log_p) * (log_p - log_q)).sum(axis=1).mean())


def test_the_students_logits_approach_the_teachers(lm_run, teacher, digits):
    evals = metric_lines(lm_run.path, "eval")
    key = LOGIT_MATCHING.metric_key(lm_run.config, "probe_l2")
    assert key == "logit_matching/probe_l2" and len(evals) >= 3
    distances = [r[key] for r in evals]
    assert distances[-1] < 0.5 * distances[0], distances
    model = load_trained_model(teacher.path).eval()
    with torch.no_grad():
        teacher_probe = model(digits.test_images[:40]).numpy().astype(np.float64)
    last = evals[-1]
    student_probe = snapshot_array(lm_run.path, last["step"], "logit_matching/student_logits").astype(np.float64)
    np.testing.assert_allclose(snapshot_array(lm_run.path, last["step"], "logit_matching/teacher_logits"),
                               teacher_probe, rtol=1e-5, atol=1e-5)
    assert last[key] == pytest.approx(ba_caruana(student_probe, teacher_probe), rel=1e-4)
    centred = lambda z: z - z.mean(axis=1, keepdims=True)  # noqa: E731
    limit = ba_caruana(centred(student_probe), centred(teacher_probe)) / 10  # over K = 10 classes
    assert last["logit_matching/probe_limit"] == pytest.approx(limit, rel=1e-4)
    for T in (1, 4, 100):
        t2kl = kl_times_t2(student_probe, teacher_probe, T)
        assert last[f"logit_matching/t2kl_T{T}"] == pytest.approx(t2kl, rel=1e-3)
        assert last[f"logit_matching/ratio_T{T}"] == pytest.approx(t2kl / limit, rel=1e-3)
    assert all(abs(r["logit_matching/ratio_T100"] - 1) < 0.02 for r in evals)  # live, at every evaluation
    assert "logit_matching/ratio_T20" not in last  # only the temperatures the config asked for
    for r in open_run(lm_run.path).metrics("step"):  # CE + the weighted term, nothing else
        assert r["loss"] == pytest.approx(r["hard"] + r["logit_matching/logit_l2"], rel=1e-5)


def test_snapshot_read_through_the_spec(lm_run, digits):
    snapshot = open_run(lm_run.path).latest_snapshot()
    snap = LOGIT_MATCHING.read_snapshot(snapshot.arrays, lm_run.config)
    assert snap.student.shape == snap.teacher.shape == (40, 10)
    np.testing.assert_array_equal(snap.labels, digits.test_labels[:40].numpy())
    np.testing.assert_allclose(snap.temperatures, [1.0, 4.0, 100.0])
    assert snap.l2() == pytest.approx(ba_caruana(snap.student, snap.teacher), rel=1e-12)
    with pytest.raises(ValueError, match="no probe logits under 'attention/'"):
        read_logit_matching_snapshot(snapshot.arrays, "attention")


def test_the_weight_and_the_base_loss_are_wired(teacher):
    """Identical runs but for the weight: their first step (same model, same batch) logs terms in the
    ratio of the weights; without labels (base loss "none") the loss is the term alone."""
    firsts = {}
    for weight in (0.05, 0.6):
        config = student_config(teacher, f"lm-w{weight}", weight=weight)
        job = start(TrainConfig(**{**config.__dict__, "max_steps": 3, "eval_every": 3, "snapshot_every": 0}))
        assert job.wait(60).state == "finished", job.status().message
        firsts[weight] = open_run(job.path).metrics("step")[0]
    assert firsts[0.6]["logit_matching/logit_l2"] == pytest.approx(12 * firsts[0.05]["logit_matching/logit_l2"], rel=1e-5)
    assert firsts[0.6]["hard"] == pytest.approx(firsts[0.05]["hard"], rel=1e-6)
    config = student_config(teacher, "lm-no-labels", weight=0.1, center=True)
    job = start(TrainConfig(**{**config.__dict__, "method": "none", "max_steps": 20, "eval_every": 10,
                               "snapshot_every": 0}))
    assert job.wait(60).state == "finished", job.status().message
    steps = open_run(job.path).metrics("step")
    assert all(r["hard"] == 0 and r["loss"] == pytest.approx(r["logit_matching/logit_l2"], rel=1e-6) for r in steps)
    assert LOGIT_MATCHING.run_label(job.config) == "logits w=0.1 centred no labels"


def test_hook_loss_term_against_numpy(digits, teacher):
    torch.manual_seed(0)
    student = build_model("mlp", input_shape=(1, 8, 8), **STUDENT)
    model = load_trained_model(teacher.path).eval()
    ctx = TrainContext(student, model, types.SimpleNamespace(), digits, torch.device("cpu"))
    hook = build_hook({"name": "logit_matching", "weight": 0.7, "center": True, "probe_size": 8})
    assert isinstance(hook, LogitMatchingHook) and not hook.needs_features
    hook.setup(ctx)
    x = digits.train_images[:16]
    logits = student(x)
    with torch.no_grad():
        t = model(x)
    term = hook.loss_terms(ctx, StepBatch(x, digits.train_labels[:16], torch.arange(16), logits, None, t))["logit_l2"]
    s_np, t_np = logits.detach().numpy().astype(np.float64), t.numpy().astype(np.float64)
    c = lambda z: z - z.mean(axis=1, keepdims=True)  # noqa: E731
    assert float(term.detach()) == pytest.approx(0.7 * ba_caruana(c(s_np), c(t_np)), rel=1e-5)
    term.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    assert all(p.grad is None for p in model.parameters())
    assert set(hook.metrics(ctx)) == {"probe_l2", "probe_l2_centered", "probe_limit",
                                      *(f"{k}_T{T}" for k in ("t2kl", "ratio") for T in (1, 4, 20, 100))}


def test_bad_input_gives_clear_value_errors(teacher, digits, tmp_path):
    config = {**COMMON, "model_options": STUDENT, "teacher": str(teacher.path), "runs_root": str(tmp_path)}
    cases = [({"weight": -1.0}, "weight must be a positive finite number"),
             ({"weight": 0}, "a zero weight trains a scratch student"),
             ({"center": "yes"}, "option 'center' must be bool"),
             ({"temperatures": []}, "give 1 to 8 temperatures, got 0"),
             ({"temperatures": [4, 0]}, "logit_matching: temperature T must be a positive"),
             ({"probe_size": 0}, "probe_size must be at least 1"),
             ({"wieght": 0.1}, "hook 'logit_matching' has no option.*'wieght'.*known: weight, center")]
    for options, message in cases:
        with pytest.raises(ValueError, match=message):
            start({**config, "hooks": [{"name": "logit_matching", **options}]})
    assert list(tmp_path.iterdir()) == []  # refused before any run folder
    student = build_model("mlp", input_shape=(1, 8, 8), **STUDENT)
    with pytest.raises(ValueError, match="needs a teacher"):
        LogitMatchingHook().setup(TrainContext(student, None, None, digits, torch.device("cpu")))
    x = digits.train_images[:4]
    with pytest.raises(ValueError, match="got no teacher logits"):
        LogitMatchingHook().loss_terms(None, StepBatch(x, digits.train_labels[:4], torch.arange(4), student(x)))


def test_method_of_labels_and_options(lm_run):
    assert method_of(lm_run.config) is LOGIT_MATCHING is get_method("logit_matching")
    assert LOGIT_MATCHING.run_label(lm_run.config) == "logits w=0.2"
    assert method_of(TrainConfig(method="kd", teacher="t", hooks=[{"name": "logit_matching"}])) is LOGIT_MATCHING
    assert set(LOGIT_MATCHING.options()) == {"weight", "center", "probe_size", "temperatures"}
    others = {spec.colour for spec in all_methods() if spec is not LOGIT_MATCHING}
    assert LOGIT_MATCHING.colour not in others
