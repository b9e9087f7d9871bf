"""AppTest fixtures for the Streamlit pages: each test module gets its own runs folder and teacher."""
from __future__ import annotations

import pytest
import torch

from kdviz.data import load_dataset
from kdviz.engine import load_trained_model

from _support.apptest import lab_environment


@pytest.fixture(scope="module", autouse=True)
def lab_env(request, tmp_path_factory):
    """Run folders in a temp dir for this module, a teacher/baseline of the module's ``TEACHER_EPOCHS``
    epochs (3 when it sets none); every job stopped at the end."""
    epochs = getattr(request.module, "TEACHER_EPOCHS", 3)
    with lab_environment(tmp_path_factory.mktemp(f"{request.path.stem}-runs"), epochs) as root:
        yield root


@pytest.fixture(scope="module")
def baseline(lab_env):
    """The pruning/quantization pages' first baseline, trained in this module's runs folder."""
    from kdviz.app.pruning_view import BASELINES, baseline_job
    from kdviz.app.sidebar import LabSettings

    job = baseline_job(LabSettings(), next(iter(BASELINES)))
    assert job.wait(120).state == "finished", job.status()
    return job


@pytest.fixture(scope="module")
def teacher(lab_env):
    from kdviz.app.sidebar import LabSettings
    from kdviz.app.teacher import teacher_job

    job = teacher_job(LabSettings())
    assert job.wait(120).state == "finished", job.status()
    return job


@pytest.fixture(scope="module")
def teacher_logits(teacher):
    """The teacher's test-set logits, computed here from its checkpoint."""
    model = load_trained_model(teacher.path).eval()
    with torch.no_grad():
        return model(load_dataset("digits").test_images).double().numpy()


@pytest.fixture(scope="module")
def finished_runs(teacher, lab_env):
    """A finished KD student and scratch student (1 epoch each) in the runs folder."""
    from kdviz.engine import TrainConfig, start

    common = dict(dataset="digits", model="mlp", model_options={"hidden": [8]}, epochs=1, runs_root=str(lab_env))
    jobs = [start(TrainConfig(method="kd", teacher=str(teacher.path), name="kd-student", **common)),
            start(TrainConfig(method="ce", name="scratch-student", **common))]
    assert [j.wait(120).state for j in jobs] == ["finished", "finished"]
    return [str(j.path) for j in jobs]


@pytest.fixture(scope="module")
def pruned_run(teacher, lab_env):
    """A finished cross-entropy run with a prune hook (digits, tiny MLP, a few steps): a pruned fine-tune."""
    from kdviz.engine import TrainConfig, start

    job = start(TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [8]}, epochs=1, max_steps=20,
                            eval_every=5, method="ce", hooks=[{"name": "prune", "sparsity": 0.5}], runs_root=str(lab_env)))
    assert job.wait(120).state == "finished"
    return job
