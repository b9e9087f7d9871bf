"""``kdviz.present.labs``: the labs' settings come from the environment (bad values named), the teacher
and baseline configs are exactly the ones the labs wrote out by hand before (so runs cached by an
earlier lab are still reused), the ResNet teacher and LeNet baseline agree with the app's, and the
cached runs are really found again on disk."""
from __future__ import annotations

from pathlib import Path

import pytest

import kdviz
import torch

from kdviz.engine import TrainConfig
from kdviz.present.labs import (
    EPOCHS_ENV, RESNET20, RUNS_ENV, baseline_config, lab_baseline, lab_resnet_teacher, lab_settings, lab_teacher,
    probe_features, resnet_teacher_config, teacher_config, untrained_student,
)

MNIST_ROOT = "/data/mnist-idx"


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A clean environment: runs under ``tmp_path/lab-runs``, no epochs override."""
    monkeypatch.setenv(RUNS_ENV, str(tmp_path / "lab-runs"))
    monkeypatch.delenv(EPOCHS_ENV, raising=False)
    return monkeypatch


def test_settings_come_from_the_arguments_and_the_environment(env, tmp_path):
    lab = lab_settings(dataset="mnist", mnist_root=Path(MNIST_ROOT))
    assert (lab.dataset, lab.data_root, lab.runs, lab.epochs) == ("mnist", MNIST_ROOT, str(tmp_path / "lab-runs"), None)
    env.setenv(EPOCHS_ENV, " 3 ")
    env.setenv(RUNS_ENV, "  ")
    lab = lab_settings()
    checkout_runs = str(Path(kdviz.__file__).resolve().parents[1] / "runs")  # one root with the app
    assert (lab.dataset, lab.data_root, lab.runs, lab.epochs) == ("digits", None, checkout_runs, 3)
    env.delenv(RUNS_ENV)
    assert lab_settings().runs == checkout_runs


@pytest.mark.parametrize("raw", ["0", "-2", "two", "2.5"])
def test_a_bad_epochs_override_is_named(env, raw):
    env.setenv(EPOCHS_ENV, raw)
    with pytest.raises(ValueError, match=rf"\$KDVIZ_LAB_EPOCHS must be a positive whole number.*{raw!r}"):
        lab_settings()


def test_a_bad_dataset_or_root_is_named(env):
    with pytest.raises(ValueError, match=r"dataset 'mnsit' is not registered \(known: .*digits"):
        lab_settings(dataset="mnsit")
    with pytest.raises(ValueError, match="mnist_root must be a folder path"):
        lab_settings(dataset="mnist", mnist_root=7)


def test_pick_and_epochs_follow_the_dataset_and_the_override(env):
    digits, mnist = lab_settings(), lab_settings("mnist", MNIST_ROOT)
    assert (digits.pick(6, 1), mnist.pick(6, 1)) == (6, 1)
    assert (digits.epochs_for(digits=8, other=4), mnist.epochs_for(digits=8, other=4), digits.epochs_or(10)) == (8, 4, 10)
    env.setenv(EPOCHS_ENV, "3")
    short = lab_settings("mnist", MNIST_ROOT)
    assert (short.epochs_for(digits=8, other=4), short.epochs_or(10), short.pick(6, 1)) == (3, 3, 1)


def test_config_fills_the_dataset_and_runs_folder_and_is_checked(env, tmp_path):
    lab = lab_settings("mnist", MNIST_ROOT)
    config = lab.config(model="mlp", epochs=7, name="student")
    assert config == TrainConfig(dataset="mnist", data_root=MNIST_ROOT, runs_root=str(tmp_path / "lab-runs"),
                                 model="mlp", epochs=7, name="student")
    with pytest.raises(ValueError, match="model 'mpl' is not registered"):
        lab.config(model="mpl")


# The settings cells of labs 1 and 2 (MLP teacher), 3 and 7 (ResNet teacher), 5 and 6 (LeNet baseline)
# as they were written out by hand, with DATASET, MNIST_ROOT, RUNS and $KDVIZ_LAB_EPOCHS (None: unset).
def old_mlp_teacher(dataset, root, runs, lab_epochs):
    teacher = dict(model_options={"hidden": [256, 256], "dropout": 0.2}, epochs=20) if dataset == "digits" else \
        dict(model_options={"hidden": [1200, 1200], "dropout": 0.2}, jitter_px=2, epochs=5)
    if lab_epochs:
        teacher["epochs"] = lab_epochs
    return TrainConfig(dataset=dataset, model="mlp", method="ce", data_root=root, runs_root=runs,
                       name=f"teacher-mlp-{dataset}", **teacher)


def old_resnet_teacher(dataset, root, runs, lab_epochs):
    teacher = dict(model_options={"blocks_per_stage": [3, 3, 3], "channels": [8, 16, 32]})
    teacher.update(epochs=30 if dataset == "digits" else 1, lr=0.05, lr_schedule="cosine" if dataset == "digits" else "constant")
    if lab_epochs:
        teacher["epochs"] = lab_epochs
    return TrainConfig(dataset=dataset, model="resnet", method="ce", data_root=root, runs_root=runs,
                       name="teacher-resnet20", **teacher)


def old_baseline(dataset, root, runs, lab_epochs):
    baseline = dict(epochs=20 if dataset == "digits" else 3, lr=0.05)
    if lab_epochs:
        baseline["epochs"] = lab_epochs
    return TrainConfig(dataset=dataset, model="lenet300", method="ce", data_root=root, runs_root=runs,
                       name=f"baseline-lenet300-{dataset}", **baseline)


@pytest.mark.parametrize("new, old", [(teacher_config, old_mlp_teacher), (resnet_teacher_config, old_resnet_teacher),
                                      (baseline_config, old_baseline)], ids=["mlp teacher", "resnet teacher", "baseline"])
@pytest.mark.parametrize("dataset, root", [("digits", None), ("mnist", MNIST_ROOT)])
@pytest.mark.parametrize("lab_epochs", [None, 3])
def test_configs_are_the_ones_the_labs_wrote_by_hand(env, new, old, dataset, root, lab_epochs):
    if lab_epochs:
        env.setenv(EPOCHS_ENV, str(lab_epochs))
    lab = lab_settings(dataset, root)
    assert new(lab) == old(dataset, root, lab.runs, lab_epochs)


def test_resnet20_cannot_be_changed_by_a_lab():
    with pytest.raises(TypeError):
        RESNET20["channels"] = [4, 8, 16]  # type: ignore[index]
    assert tuple(RESNET20["channels"]) == (8, 16, 32)


@pytest.mark.parametrize("dataset", ["digits", "mnist"])
def test_resnet_teacher_and_baseline_are_the_apps_so_the_cache_is_shared(env, dataset):
    pytest.importorskip("streamlit")
    from kdviz.app.fsp_view import teacher_options
    from kdviz.app.pruning_view import baseline_options
    from kdviz.app.sidebar import LabSettings as AppSettings

    env.delenv("KDVIZ_TEACHER_EPOCHS", raising=False)
    lab, app = lab_settings(dataset, MNIST_ROOT), AppSettings(dataset=dataset, data_root=MNIST_ROOT)
    app_baseline = TrainConfig(**baseline_options(app, "LeNet-300-100 (Han et al. 2015)"))
    assert baseline_config(lab) == app_baseline  # name and runs folder included
    app_teacher = TrainConfig(**teacher_options(app, (3, 3, 3), (8, 16, 32)))
    if dataset == "digits":
        assert resnet_teacher_config(lab).identity() == app_teacher.identity()
    else:  # the labs train the ResNet teacher 1 epoch on MNIST, the app 3: separate runs
        assert resnet_teacher_config(lab).identity() == {**app_teacher.identity(), "epochs": 1}


@pytest.fixture(scope="module")
def short_runs(tmp_path_factory):
    """Lab runs of 1 epoch in a temporary runs folder, for the whole module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(RUNS_ENV, str(tmp_path_factory.mktemp("cached-lab-runs")))
        patch.setenv(EPOCHS_ENV, "1")
        yield lab_settings()


@pytest.mark.parametrize("train, config", [(lab_teacher, teacher_config), (lab_resnet_teacher, resnet_teacher_config),
                                           (lab_baseline, baseline_config)], ids=["mlp teacher", "resnet", "baseline"])
def test_a_finished_run_is_reused_from_disk(short_runs, train, config):
    job = train(short_runs)
    assert job.wait(300).state == "finished", job.status()
    assert TrainConfig.load(job.path) == config(short_runs)
    assert Path(job.path).parent == Path(short_runs.runs)
    again = train(short_runs)
    assert again is not job and Path(again.path) == Path(job.path), "the second call must reopen the first run"
    assert again.status().state == "finished"


def test_untrained_student_and_probe_features(short_runs):
    teacher = lab_resnet_teacher(short_runs)
    assert teacher.wait(300).state == "finished", teacher.status()
    student = untrained_student(teacher, blocks_per_stage=[1, 1, 1], channels=[4, 8, 16])
    assert not student.training
    assert sum(isinstance(m, torch.nn.Conv2d) for m in student.modules()) < 10  # ResNet-8, not the teacher's 20
    probe = short_runs.data().test_images[:5]
    features = probe_features(student, probe)
    assert [tuple(features[f"stage{i}_out"].shape[:2]) for i in (1, 2, 3)] == [(5, 4), (5, 8), (5, 16)]
    assert not any(f.requires_grad for f in features.values())
    _, expected = student.forward_with_features(probe)
    assert all(torch.equal(features[name], expected[name].detach()) for name in expected)
