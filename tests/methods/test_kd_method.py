"""The "kd" base loss is wired to the run's T and alpha (Hinton et al. 2015, section 2).

Each value is checked away from the defaults (T=4, alpha=0.9): the first logged step of a real run
is recomputed from the same initial student, the same first batch and the teacher, so a loss that
ignored ``config.T`` or ``config.alpha`` (or dropped the T^2 factor) fails here.
"""
from __future__ import annotations

import pytest
import torch

from kdviz.data import load_dataset
from kdviz.distill import kd_loss
from kdviz.engine import TrainConfig, load_teacher, start
from kdviz.engine.data_feed import BatchFeed
from kdviz.methods import get_method, method_of
from kdviz.models import build_model

from _support.jobs import finished_job

STUDENT = {"hidden": [32]}
MAX_CONCURRENT = 1  # jobs the `manager` fixture (tests/conftest.py) runs at once


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, manager):
    cfg = TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [64]}, epochs=2, lr=0.1,
                      runs_root=str(tmp_path_factory.mktemp("runs")), name="teacher-kd-test", snapshot_every=0)
    return finished_job(cfg, manager)


def first_step_loss(teacher, T: float, alpha: float, seed: int = 3):
    """The loss of step 1 recomputed by hand: seeded student, first batch of the run's feed, teacher logits."""
    data = load_dataset("digits")
    torch.manual_seed(seed)
    student = build_model("mlp", input_shape=data.input_shape, num_classes=data.num_classes, **STUDENT).train()
    batch = next(BatchFeed(data.train_images, data.train_labels, 32, seed, 0, torch.device("cpu")).epoch(0))
    with torch.no_grad():
        t_logits = load_teacher(teacher.path)(batch.images)
        return kd_loss(student(batch.images), t_logits, batch.labels, T=T, alpha=alpha)


@pytest.mark.parametrize("T, alpha", [(2.5, 0.3), (7.0, 0.65)])
def test_the_logged_kd_loss_uses_the_configs_T_and_alpha(teacher, manager, T, alpha):
    cfg = TrainConfig(dataset="digits", model="mlp", model_options=STUDENT, method="kd", teacher=str(teacher.path),
                      T=T, alpha=alpha, batch_size=32, max_steps=1, seed=3, snapshot_every=0,
                      runs_root=str(teacher.path.parent), name=f"kd-{T}-{alpha}")
    job = start(cfg, manager)
    assert job.wait(60).state == "finished"
    logged = job.store.metrics("step")[0]
    expected = first_step_loss(teacher, T, alpha)
    for key, value in (("loss", expected.total), ("soft", expected.soft), ("hard", expected.hard)):
        assert logged[key] == pytest.approx(float(value), rel=1e-4), key
    default = first_step_loss(teacher, 4.0, 0.9)
    assert abs(float(default.total) - logged["loss"]) > 1e-3  # the defaults would give another loss


def test_a_kd_run_is_labelled_by_its_temperature(teacher):
    cfg = TrainConfig(method="kd", teacher=str(teacher.path), T=2.5)
    spec = method_of(cfg)
    assert spec is get_method("kd") and spec.run_label(cfg) == "KD T=2.5"
