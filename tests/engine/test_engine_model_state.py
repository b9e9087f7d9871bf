"""A run whose hook reparametrises its weights (k-means codebooks here) loads as a plain model of its
architecture, with the weights it computed with: as a teacher, for the speed report, for comparison."""
from pathlib import Path

import pytest
import torch

import kdviz.methods  # noqa: F401  (registers the k-means hook)
from kdviz.engine import JobManager, TrainConfig, load_trained_model, start
from kdviz.engine.run_folder import checkpoint_file, load_checkpoint
from kdviz.engine.teacher_cache import load_teacher

BITS = 3


@pytest.fixture(scope="module")
def kmeans_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    manager = JobManager(max_concurrent=1, cpu_threads=1)
    base = start(TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [16]}, max_steps=30, runs_root=str(root)),
                 manager)
    assert base.wait(60).state == "finished"
    quantized = start(TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [16]}, max_steps=10,
                                  runs_root=str(root), init_from=str(base.path), hooks=[{"name": "kmeans", "bits": BITS}]),
                      manager)
    assert quantized.wait(60).state == "finished", quantized.status()
    return Path(quantized.path)


def test_a_codebook_run_loads_as_a_plain_model_with_its_shared_weights(kmeans_run):
    checkpoint = load_checkpoint(checkpoint_file(kmeans_run))
    assert any(".parametrizations." in key for key in checkpoint["model"])  # the run really was parametrised
    model = load_trained_model(kmeans_run)
    for name in ("fc1.weight", "fc2.weight"):
        weight = dict(model.named_parameters())[name]
        assert len(torch.unique(weight)) <= 2 ** BITS  # the codebook's values, not the float weights
        assert torch.equal(weight.detach(), checkpoint["effective_model"][name])
    teacher = load_teacher(kmeans_run)  # and it can teach
    assert not any(p.requires_grad for p in teacher.parameters())


def test_an_old_parametrised_checkpoint_gets_a_message_that_says_what_is_missing(kmeans_run, tmp_path):
    import shutil

    old = tmp_path / kmeans_run.name
    shutil.copytree(kmeans_run, old)
    checkpoint = load_checkpoint(old)
    checkpoint.pop("effective_model")
    (old / "checkpoints" / "last.safetensors").unlink()  # an older kdviz wrote torch.save files
    torch.save(checkpoint, old / "checkpoints" / "last.pt")
    with pytest.raises(ValueError, match="reparametrised weights .* saved without their effective values"):
        load_trained_model(old)
