"""The "rkd" hook and method (Park et al. 2019, eqs. 3-6) through the real engine.

An MLP teacher (64 hidden units) is trained on digits, then MLP students of another width and depth
through ``start()``. The first step's terms are recomputed here from the seeded student, the run's
first batch and the teacher's checkpoint; the snapshot's teacher matrix is recomputed with numpy.
"""
from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from kdviz.data import load_dataset
from kdviz.distill.rkd import rkd_angle_loss, rkd_distance_loss
from kdviz.engine import TrainConfig, load_trained_model, open_run, start
from kdviz.engine.data_feed import BatchFeed
from kdviz.engine.hooks import TrainContext, build_hook
from kdviz.methods import all_methods, method_of
from kdviz.methods.rkd import RKD, RKDHook, read_rkd_snapshot, resolve_feature
from kdviz.models import build_model

from _support.jobs import finished_job

STUDENT = {"hidden": [24, 16]}  # two hidden layers of other widths than the teacher's one
MAX_CONCURRENT = 1


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, manager):
    cfg = TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [64]}, epochs=3, lr=0.1,
                      runs_root=str(tmp_path_factory.mktemp("rkd-runs")), name="teacher-rkd-test", snapshot_every=0)
    return finished_job(cfg, manager)


def student_config(teacher, hooks, **changes) -> TrainConfig:
    fields = dict(dataset="digits", model="mlp", model_options=STUDENT, teacher=str(teacher.path), lr=0.1,
                  batch_size=32, seed=3, hooks=hooks, runs_root=str(teacher.path.parent), eval_train_samples=100)
    return TrainConfig(**{**fields, **changes})


@pytest.fixture(scope="module")
def rkd_run(teacher, manager):
    hooks = [{"name": "rkd", "distance_weight": 10.0, "angle_weight": 20.0, "probe_size": 40}]
    config = student_config(teacher, hooks, max_steps=60, eval_every=20, snapshot_every=20, name="rkd-student")
    return finished_job(config, manager)


def numpy_psi_d(e: np.ndarray) -> np.ndarray:
    d = np.sqrt(((e[:, None, :] - e[None, :, :]) ** 2).sum(-1))
    return d / d[~np.eye(len(e), dtype=bool)].mean()


def test_training_pulls_the_students_geometry_to_the_teachers(rkd_run):
    evals = open_run(rkd_run.path).metrics("eval")
    key = lambda k: RKD.metric_key(rkd_run.config, k)  # noqa: E731
    assert key("probe_distance") == "rkd/probe_distance" and len(evals) >= 3
    first, last = evals[0], evals[-1]
    assert last[key("probe_distance")] < 0.5 * first[key("probe_distance")]
    assert last[key("probe_angle")] < 0.5 * first[key("probe_angle")]
    assert last[key("distance_corr")] > first[key("distance_corr")] + 0.1
    assert last[key("probe_loss")] == pytest.approx(10 * last[key("probe_distance")] + 20 * last[key("probe_angle")])
    steps = open_run(rkd_run.path).metrics("step")
    for r in steps:  # cross-entropy plus the two weighted terms, logged under the hook's label
        assert r["loss"] == pytest.approx(r["hard"] + r["rkd/distance"] + r["rkd/angle"], rel=1e-5)
    assert steps[-1]["rkd/distance"] < steps[0]["rkd/distance"]


def test_snapshot_holds_the_teachers_matrix_sorted_by_class(rkd_run, teacher, digits):
    snapshot = open_run(rkd_run.path).latest_snapshot()
    snap = RKD.read_snapshot(snapshot.arrays, rkd_run.config)
    labels = digits.test_labels[:40].numpy()
    order = np.argsort(labels, kind="stable")
    np.testing.assert_array_equal(snap.labels, labels[order])
    assert (snap.student_feature, snap.teacher_feature) == ("fc2", "fc1")  # auto: each model's classifier input
    model = load_trained_model(teacher.path).eval()
    with torch.no_grad():
        embedding = model.forward_with_features(digits.test_images[:40])[1]["fc1"].numpy().astype(np.float64)
    np.testing.assert_allclose(snap.teacher, numpy_psi_d(embedding[order]), rtol=1e-4, atol=1e-5)
    assert snap.student.shape == (40, 40) and np.allclose(np.diag(snap.student), 0)
    off = ~np.eye(40, dtype=bool)
    assert snap.student[off].mean() == pytest.approx(1.0, rel=1e-5)  # psi_D has mean 1 by eq. 3
    last_eval = open_run(rkd_run.path).metrics("eval")[-1]
    assert snap.correlation == pytest.approx(last_eval["rkd/distance_corr"], abs=1e-4)
    assert snap.distance_loss == pytest.approx(last_eval["rkd/probe_distance"], rel=1e-4)
    with pytest.raises(ValueError, match="no RKD distance matrices under 'prune/'"):
        read_rkd_snapshot(snapshot.arrays, "prune")


def first_step_terms(teacher, seed: int = 3) -> tuple[float, float]:
    """L_RKD-D and L_RKD-A of step 1 recomputed: seeded student, the run's first batch, the teacher."""
    data = load_dataset("digits")
    torch.manual_seed(seed)
    student = build_model("mlp", input_shape=data.input_shape, num_classes=data.num_classes, **STUDENT).train()
    batch = next(BatchFeed(data.train_images, data.train_labels, 32, seed, 0, torch.device("cpu")).epoch(0))
    model = load_trained_model(teacher.path).eval()
    with torch.no_grad():
        s = student.forward_with_features(batch.images)[1]["fc2"]
        t = model.forward_with_features(batch.images)[1]["fc1"]
        return float(rkd_distance_loss(s, t)), float(rkd_angle_loss(s, t))


def test_the_logged_terms_follow_the_configured_weights(teacher, manager):
    l_d, l_a = first_step_terms(teacher)
    logged = {}
    for w_d, w_a in ((3.0, 7.0), (3.0, 0.0), (0.0, 0.5)):
        hooks = [{"name": "rkd", "distance_weight": w_d, "angle_weight": w_a}]
        job = finished_job(student_config(teacher, hooks, max_steps=1, snapshot_every=0, name=f"rkd-{w_d}-{w_a}"), manager)
        logged[w_d, w_a] = job.store.metrics("step")[0]
    both = logged[3.0, 7.0]
    assert both["rkd/distance"] == pytest.approx(3.0 * l_d, rel=1e-4)
    assert both["rkd/angle"] == pytest.approx(7.0 * l_a, rel=1e-4)
    assert both["loss"] == pytest.approx(both["hard"] + 3.0 * l_d + 7.0 * l_a, rel=1e-4)
    assert "rkd/angle" not in logged[3.0, 0.0] and logged[3.0, 0.0]["rkd/distance"] == pytest.approx(both["rkd/distance"])
    assert logged[3.0, 0.0]["loss"] == pytest.approx(logged[3.0, 0.0]["hard"] + 3.0 * l_d, rel=1e-4)
    assert "rkd/distance" not in logged[0.0, 0.5] and logged[0.0, 0.5]["rkd/angle"] == pytest.approx(0.5 * l_a, rel=1e-4)
    assert abs(both["rkd/distance"] - 25.0 * l_d) > 1e-3 and abs(both["rkd/angle"] - 50.0 * l_a) > 1e-3  # not the defaults


def test_bad_options_are_rejected_by_start_before_any_folder(teacher, tmp_path):
    base = {"dataset": "digits", "model": "mlp", "model_options": STUDENT, "teacher": str(teacher.path),
            "runs_root": str(tmp_path)}
    cases = [({"distance_wieght": 2.0}, "hook 'rkd' has no option.*'distance_wieght'.*known: distance_weight, angle_weight"),
             ({"angle_weight": "lots"}, "option 'angle_weight' must be float"),
             ({"distance_weight": -1.0}, "distance_weight must be finite and non-negative, got -1.0"),
             ({"distance_weight": 0.0, "angle_weight": 0.0}, "both 0, so the hook would add nothing"),
             ({"probe_size": 2}, "probe_size must be 3 to 512 test images.*got 2"),
             ({"feature": ["fc1"]}, r"feature must be 'auto', a feature name, or \[student_feature, teacher_feature\]")]
    for options, message in cases:
        with pytest.raises(ValueError, match=message):
            start({**base, "hooks": [{"name": "rkd", **options}]})
    assert list(tmp_path.iterdir()) == []


def test_features_auto_named_or_paired_and_errors(digits, teacher):
    student = build_model("mlp", input_shape=(1, 8, 8), hidden=(24, 16))
    mlp_teacher = load_trained_model(teacher.path).eval()
    cnn = build_model("cnn", input_shape=(1, 8, 8), channels=(4, 8), hidden=32)
    x = digits.test_images[:5]
    s_f, t_f, c_f = (m.forward_with_features(x)[1] for m in (student, mlp_teacher, cnn))
    assert resolve_feature("auto", s_f, t_f) == ("fc2", "fc1")
    assert resolve_feature("auto", s_f, c_f) == ("fc2", "fc1")  # a CNN teacher's classifier input is fc1 too
    resnet = build_model("resnet", input_shape=(1, 8, 8), channels=(4, 8, 16))
    assert resolve_feature("auto", resnet.forward_with_features(x)[1], t_f) == ("pool", "fc1")  # its pooled embedding
    assert resolve_feature("fc1", s_f, t_f) == ("fc1", "fc1")
    assert resolve_feature(("fc1", "conv2"), s_f, c_f) == ("fc1", "conv2")
    with pytest.raises(ValueError, match="the teacher has no feature 'fc2'"):
        resolve_feature("fc2", s_f, t_f)
    ctx = TrainContext(student, mlp_teacher, types.SimpleNamespace(batch_size=32), digits, torch.device("cpu"))
    hook = build_hook({"name": "rkd", "feature": ["fc1", "fc1"], "probe_size": 16})
    assert isinstance(hook, RKDHook) and hook.needs_features
    hook.setup(ctx)
    assert hook.features == ("fc1", "fc1") and set(hook.metrics(ctx)) == {
        "probe_distance", "probe_angle", "probe_loss", "distance_corr"}
    with pytest.raises(ValueError, match="needs a teacher"):
        RKDHook().setup(TrainContext(student, None, None, digits, torch.device("cpu")))
    with pytest.raises(ValueError, match="batch_size 1024 is over 512"):
        RKDHook().setup(TrainContext(student, mlp_teacher, types.SimpleNamespace(batch_size=1024), digits,
                                     torch.device("cpu")))
    RKDHook(angle_weight=0.0).setup(TrainContext(student, mlp_teacher, types.SimpleNamespace(batch_size=1024), digits,
                                                 torch.device("cpu")))  # distances alone: no N^3 tensor


def test_method_of_labels_the_run(rkd_run):
    assert method_of(rkd_run.config) is RKD
    assert RKD.run_label(rkd_run.config) == "RKD D=10 A=20"
    assert RKD.run_label(TrainConfig(teacher="t", hooks=[{"name": "rkd"}])) == "RKD D=25 A=50"
    assert set(RKD.options()) == {"distance_weight", "angle_weight", "feature", "probe_size"}
    assert RKD.loss == "ce" and RKD.widgets == {"RKDMonitor": "rkd"} and RKD.pages == ()
    colours = {m.name: m.colour for m in all_methods()}
    beside = [colours[name] for name in ("kd", "scratch", "teacher", "attention")]
    assert RKD.colour not in beside  # no other distillation student, the teacher or scratch shares it
