"""The GPU when there is one (issue 19): ``device="auto"`` resolves to CUDA when a GPU is present, and
the resolved device reaches the model, its batches, the teacher, the teacher's cached logits and the
hooks' own networks. Each check runs on every device this machine has: the CPU always, CUDA where
present (the CUDA cases skip with a reason elsewhere); those compare a short CUDA run with the same
run on the CPU, which must agree within float noise."""
from __future__ import annotations

import time

import pytest
import torch

import kdviz.methods  # noqa: F401  (registers the KD loss and the DML hook)
from kdviz.engine import TrainConfig, load_checkpoint, load_trained_model, open_run, resume, start
from kdviz.engine.run_folder import RunFolder
from kdviz.engine.store import LiveStore
from kdviz.engine.trainer import Trainer
from kdviz.models.device import module_device, resolve_device
from kdviz.reproduce import REPRODUCTIONS, with_device

NO_GPU = "needs a CUDA GPU; this machine has none (bench/gpu_check.py measures one where there is)"
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
DEVICES = ["cpu", pytest.param("cuda", marks=needs_gpu)]
MAX_CONCURRENT = 2


def test_auto_means_the_gpu_when_there_is_one(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="device 'cuda' was requested but no CUDA GPU is available; use 'cpu' or 'auto'"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="device 'tpu9' is not a device torch knows"):
        resolve_device("tpu9")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # what a GPU machine reports
    assert resolve_device("auto") == torch.device("cuda") and resolve_device("cuda:1") == torch.device("cuda:1")


def test_reproductions_train_where_their_configs_say():
    plan = REPRODUCTIONS.get("hinton-mnist").plan([0, 1], quick=True)
    assert {run.config.device for run in plan} == {"auto"}  # every plan: the GPU when there is one
    assert {run.config.device for run in with_device(plan, "cpu")} == {"cpu"}
    with pytest.raises(ValueError, match="device must be one of auto, cpu, cuda, got 'gpu'"):
        with_device(plan, "gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU is available"):
            with_device(plan, "cuda")


def small(root, name: str, device: str, **options) -> TrainConfig:
    return TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [24]}, train_subset=256, batch_size=64,
                       epochs=2, lr=0.05, eval_train_samples=100, snapshot_every=4, seed=5, device=device,
                       runs_root=str(root), name=f"{name}-{device}", **options)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, manager):
    job = start(small(tmp_path_factory.mktemp("gpu-runs"), "teacher", "cpu"), manager)
    assert job.wait(60).state == "finished", job.status().message
    return job.path


@pytest.mark.parametrize("device", DEVICES)
def test_the_resolved_device_reaches_model_batches_teacher_and_hooks(teacher, tmp_path, device):
    config = small(tmp_path, "kd-dml", device, method="kd", teacher=str(teacher), hooks=[{"name": "dml", "probe_size": 8}])
    folder = RunFolder.create(config)
    trainer = Trainer(config, folder, LiveStore())
    try:
        trainer._setup()
        want = torch.device(device)
        assert trainer.device.type == want.type
        assert module_device(trainer.model).type == want.type and module_device(trainer.teacher).type == want.type
        batch = next(trainer.feed.epoch(0))
        assert {batch.images.device.type, batch.labels.device.type, batch.indices.device.type} == {want.type}
        assert trainer.cache is not None and trainer.cache.logits.device.type == want.type
        assert trainer.cache[batch.indices].device.type == want.type
        hook_params = [p for _, hook in trainer.hooks for p in hook.extra_parameters()]
        assert hook_params and {p.device.type for p in hook_params} == {want.type}  # DML's peer network
        trainer._t0, trainer._paused = time.perf_counter(), 0.0  # what Trainer.run sets before its loop
        trainer._train_step(batch)  # one real step: every tensor of the step on one device, or torch raises
        assert trainer.step == 1
    finally:
        folder.release()


@pytest.mark.parametrize("device", DEVICES)
def test_a_teacher_loads_on_the_device_asked_for(teacher, device):
    model = load_trained_model(teacher, device=device)
    assert module_device(model).type == device
    assert module_device(load_trained_model(teacher, device="auto")).type == resolve_device("auto").type


@needs_gpu
def test_a_short_run_on_cuda_matches_the_same_run_on_the_cpu(teacher, tmp_path, manager):
    runs = {}
    for device in ("cpu", "cuda"):
        job = start(small(tmp_path, "kd", device, method="kd", teacher=str(teacher)), manager)
        assert job.wait(120).state == "finished", job.status().message
        runs[device] = open_run(job.path)
    cpu, cuda = (runs[d].metrics("step") for d in ("cpu", "cuda"))
    assert cpu[0]["loss"] == pytest.approx(cuda[0]["loss"], rel=1e-4)  # same weights, same batch: same first loss
    final_cpu, final_cuda = (runs[d].metrics("eval")[-1] for d in ("cpu", "cuda"))
    assert final_cuda["test_acc"] == pytest.approx(final_cpu["test_acc"], abs=0.03)  # within noise after 8 steps
    for (name, a), b in zip(load_checkpoint(runs["cpu"].path)["model"].items(),
                            load_checkpoint(runs["cuda"].path)["model"].values()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4, msg=name)


@needs_gpu
def test_a_run_trained_on_cuda_resumes_on_the_cpu(tmp_path, manager):
    job = start(small(tmp_path, "moved", "cuda", epochs=1), manager)
    assert job.wait(120).state == "finished", job.status().message
    config = open_run(job.path).config
    (job.path / "config.json").write_text(type(config).from_dict({**config.to_dict(), "device": "cpu"}).to_json())
    again = resume(job.path, epochs=2, manager=manager)
    assert again.wait(120).state == "finished", again.status().message
    assert load_checkpoint(job.path)["step"] == 8
