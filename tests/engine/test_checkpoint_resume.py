"""Resuming from safetensors checkpoints, and from the ``torch.save`` checkpoints an older kdviz wrote
(issue 19): one epoch, then resumed to two, ends where the uninterrupted two-epoch run ends, weights,
optimizer state (SGD momentum, Adam moments and steps) and hook state (pruning masks, DML's peer
network, LSQ's learned steps) included; the old ``last.pt`` is left as it was."""
from __future__ import annotations

import shutil

import pytest
import safetensors.torch
import torch

import kdviz.methods  # noqa: F401  (registers the hooks)
from kdviz.engine import TrainConfig, load_checkpoint, open_run, resume, start
from kdviz.engine.run_folder import checkpoint_file

MAX_CONCURRENT = 3
CASES = {
    "sgd momentum": dict(optimizer="sgd", momentum=0.9),
    "adam and pruning masks": dict(optimizer="adam", lr=0.01, hooks=[{"name": "prune", "sparsity": 0.6, "schedule": "agp",
                                                                      "start_step": 1, "end_step": 6, "frequency": 1}]),
    "dml peer network": dict(hooks=[{"name": "dml", "probe_size": 16}]),
    "lsq steps": dict(lr=0.01, hooks=[{"name": "lsq", "bits": 3, "calibration": 32}]),
}


def config(root, case: str, name: str, epochs: int) -> TrainConfig:
    options = {"lr": 0.05, **CASES[case]}
    return TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [16]}, train_subset=256, batch_size=64,
                       epochs=epochs, eval_train_samples=100, snapshot_every=0, seed=3, runs_root=str(root),
                       name=f"{name}-{case.replace(' ', '-')}", **options)


def finished(job):
    status = job.wait(120)
    assert status.state == "finished", status.message
    return job.path


def as_old_kdviz_wrote_it(path) -> bytes:
    """Turn the run's checkpoint into what kdviz wrote before safetensors: ``torch.save`` to last.pt."""
    state = load_checkpoint(path)
    (path / "checkpoints" / "last.safetensors").unlink()
    torch.save(state, path / "checkpoints" / "last.pt")
    return (path / "checkpoints" / "last.pt").read_bytes()


def assert_states_equal(a, b, where):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.shape == b.shape, where
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=where)
    elif isinstance(a, dict):
        assert set(a) == set(b), f"{where}: {sorted(map(str, a))} vs {sorted(map(str, b))}"
        for key in a:
            assert_states_equal(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_states_equal(x, y, f"{where}/{i}")
    else:
        assert a == pytest.approx(b), where


@pytest.fixture(scope="module", params=list(CASES))
def runs(request, tmp_path_factory, manager):
    root, case = tmp_path_factory.mktemp("resume"), request.param
    jobs = {kind: start(config(root, case, kind, 2 if kind == "whole" else 1), manager) for kind in ("whole", "new", "old")}
    paths = {kind: finished(job) for kind, job in jobs.items()}
    old_bytes = as_old_kdviz_wrote_it(paths["old"])
    resumed = {kind: resume(paths[kind], epochs=2, manager=manager) for kind in ("new", "old")}
    for job in resumed.values():
        finished(job)
    return case, paths, old_bytes


def test_a_run_writes_a_safetensors_checkpoint_any_reader_can_open(runs):
    case, paths, _ = runs
    ckpt = checkpoint_file(paths["whole"])
    assert ckpt.name == "last.safetensors" and not (paths["whole"] / "checkpoints" / "last.pt").exists()
    tensors = safetensors.torch.load_file(ckpt)
    assert all(any(name.startswith(f"model/{layer}.") for name in tensors) for layer in ("fc1", "fc2"))
    assert any(name.startswith("optimizer/state/") for name in tensors)
    if CASES[case].get("hooks"):
        assert any(name.startswith(f"hooks/{CASES[case]['hooks'][0]['name']}/") for name in tensors)


@pytest.mark.parametrize("kind", ["new", "old"])
def test_resumed_runs_end_where_the_uninterrupted_run_ends(runs, kind):
    case, paths, _ = runs
    whole, resumed = load_checkpoint(paths["whole"]), load_checkpoint(paths[kind])
    assert resumed["step"] == whole["step"] == 8
    for part in ("model", "optimizer", "hooks"):
        assert_states_equal(whole[part], resumed[part], f"{case} ({kind} format) {part}")
    note = open_run(paths[kind]).status()["message"]
    assert "resumed from the checkpoint at step 4" in note
    last_whole, last_resumed = (open_run(paths[k]).metrics("eval")[-1] for k in ("whole", kind))
    assert last_resumed["test_acc"] == pytest.approx(last_whole["test_acc"])


def test_the_old_checkpoint_is_kept_byte_for_byte_beside_the_new_one(runs):
    _, paths, old_bytes = runs
    folder = paths["old"] / "checkpoints"
    assert (folder / "last.pt").read_bytes() == old_bytes
    assert checkpoint_file(paths["old"]) == folder / "last.safetensors"
    assert load_checkpoint(folder / "last.pt")["step"] == 4 and load_checkpoint(paths["old"])["step"] == 8


def test_an_old_run_folder_still_loads_as_a_model(runs, tmp_path):
    """A run folder copied from an older kdviz (last.pt only) is still a teacher and a model."""
    from kdviz.engine import load_trained_model

    _, paths, _ = runs
    copy = shutil.copytree(paths["whole"], tmp_path / "old-run")
    as_old_kdviz_wrote_it(copy)
    a, b = load_trained_model(copy), load_trained_model(paths["whole"])
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name
