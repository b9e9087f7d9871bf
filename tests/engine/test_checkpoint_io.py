"""Checkpoints as safetensors (issue 19, ``kdviz/models/checkpoint_io.py``): a nested state goes in and
comes back with the same types, shared tensors are stored, bad values and bad files get messages
naming the entry or the file, and nothing in a file runs. No training here (tests/engine/
test_checkpoint_resume.py trains and resumes)."""
from __future__ import annotations

import json
import math
import pickle

import pytest
import safetensors.torch
import torch
from torch import nn

from kdviz.engine.run_folder import CHECKPOINT_FORMAT, RunFolder, checkpoint_file, load_checkpoint
from kdviz.models.checkpoint_io import (STRUCTURE_KEY, CheckpointUnreadable, flatten_state, read_state, state_to_bytes,
                                        write_state)


def new_folder(path) -> RunFolder:
    (path / "checkpoints").mkdir(parents=True)
    return RunFolder(path)


def nested_state() -> dict:
    return {
        "format": 1,
        "model": {"fc.weight": torch.arange(6.0).reshape(2, 3), "fc.bias": torch.tensor([0.5, -0.5], dtype=torch.float64)},
        "optimizer": {"state": {0: {"momentum_buffer": torch.full((2, 3), 0.25)}, 1: {"step": torch.tensor(3.0)}},
                      "param_groups": [{"lr": 0.05, "betas": (0.9, 0.999), "params": [0, 1], "foreach": None}]},
        "hooks": {"prune": {"mask/fc.weight": torch.tensor([[True, False, True]] * 2)}, "empty": {}},
        "counts": torch.tensor([7, 8], dtype=torch.int64), "nothing": torch.zeros(0, 4),
        "step": 12, "epoch": 1.5, "elapsed_s": float("nan"), "name": "run/1", "done": False, "input_shape": [1, 8, 8],
    }


def assert_same(a, b, path="state"):
    assert type(a) is type(b), f"{path}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), path
    elif isinstance(a, dict):
        assert list(a) == list(b), path
        for key in a:
            assert_same(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), path
    else:
        assert a == b, path


def test_a_nested_state_round_trips_with_its_types(tmp_path):
    state = nested_state()
    path = write_state(tmp_path / "state.safetensors", state)
    back = read_state(path)
    assert_same(state, back)
    assert list(back["optimizer"]["state"]) == [0, 1]  # integer keys stay integers (optimizer.load_state_dict needs them)
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    # an ordinary safetensors file: any reader sees the tensors by path, the rest in the metadata
    plain = safetensors.torch.load_file(path)
    assert torch.equal(plain["model/fc.weight"], state["model"]["fc.weight"])
    assert torch.equal(plain["optimizer/state/0/momentum_buffer"], torch.full((2, 3), 0.25))
    assert "step" not in plain and len(plain) == 7


def test_tied_and_shared_tensors_are_stored_and_tie_again_on_load(tmp_path):
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed, self.out = nn.Linear(4, 3, bias=False), nn.Linear(4, 3, bias=False)
            self.out.weight = self.embed.weight  # tied, as language models tie input and output embeddings

    model = Tied()
    with torch.no_grad():
        model.embed.weight.copy_(torch.arange(12.0).reshape(3, 4))
    with pytest.raises(RuntimeError, match="share memory"):  # what safetensors alone does
        safetensors.torch.save(model.state_dict())
    row_view = model.embed.weight.detach()[1]  # a view into the same storage
    state = {"model": model.state_dict(), "view": row_view}
    path = write_state(tmp_path / "tied.safetensors", state)
    back = read_state(path)
    assert torch.equal(back["model"]["embed.weight"], back["model"]["out.weight"])
    assert torch.equal(back["view"], torch.tensor([4.0, 5.0, 6.0, 7.0]))
    fresh = Tied()
    fresh.load_state_dict(back["model"])
    assert fresh.out.weight is fresh.embed.weight and torch.equal(fresh.out.weight, model.embed.weight)
    # through a run folder too
    folder = new_folder(tmp_path / "run")
    saved = load_checkpoint(folder.save_checkpoint({"model": model.state_dict(), "step": 1}))
    assert torch.equal(saved["model"]["out.weight"], model.embed.weight.detach())
    folder.release()


def test_values_that_cannot_be_stored_are_named_and_the_old_file_is_kept(tmp_path):
    path = write_state(tmp_path / "keep.safetensors", {"step": 1})
    before = path.read_bytes()
    for bad, where in (({"hooks": {"x": {1, 2}}}, "'hooks/x' holds a set"),
                       ({"hooks": {(1, 2): torch.ones(1)}}, "key \\(1, 2\\) of type tuple"),
                       ({"model": {"w": torch.ones(2, 2).to_sparse()}}, "'model/w'.*dense")):
        with pytest.raises(TypeError, match=where):
            write_state(path, bad)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.safetensors"]  # no temp file left behind


def test_bad_files_get_a_message_naming_the_file_and_never_run(tmp_path):
    good = write_state(tmp_path / "good.safetensors", nested_state()).read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good[: len(good) // 2])
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01 not a checkpoint at all")
    for path in (cut, garbage):
        with pytest.raises(CheckpointUnreadable, match=f"{path}.*corrupt or truncated.*not loaded") as info:
            read_state(path)
        assert info.value.kind == "corrupt" and info.value.path == path
    # the metadata names a tensor the file does not hold
    tensors, structure = flatten_state({"w": torch.ones(2)})
    structure["dict"][0][1] = {"tensor": "missing"}
    odd = tmp_path / "odd.safetensors"
    odd.write_bytes(safetensors.torch.save(tensors, metadata={STRUCTURE_KEY: json.dumps(structure)}))
    with pytest.raises(CheckpointUnreadable, match=f"{odd}: its kdviz structure does not match"):
        read_state(odd)
    # a torch archive holding code: refused by the weights-only loader, and the code never runs
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pt"
    torch.save({"model": {}, "x": _Trap(str(marker))}, evil)
    with pytest.raises(CheckpointUnreadable, match=f"{evil} is not a plain-tensor checkpoint") as info:
        read_state(evil)
    assert info.value.kind == "code" and not marker.exists()
    with pytest.raises(CheckpointUnreadable, match="does not exist"):
        read_state(tmp_path / "nowhere.safetensors")


class _Trap:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_plain_safetensors_file_reads_as_its_tensor_map_and_is_no_kdviz_checkpoint(tmp_path):
    path = tmp_path / "weights.safetensors"
    safetensors.torch.save_file({"fc.weight": torch.ones(2, 2)}, path)
    assert list(read_state(path)) == ["fc.weight"]
    with pytest.raises(ValueError, match=f"checkpoint {path} is not a kdviz checkpoint"):
        load_checkpoint(path)


def test_old_torch_save_checkpoints_still_load_and_a_run_prefers_the_safetensors_one(tmp_path):
    folder = new_folder(tmp_path / "run")
    old = folder.checkpoint_dir / "last.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "model": {"w": torch.ones(2)}, "step": 3}, old)  # as kdviz wrote before
    torch.save({"format": CHECKPOINT_FORMAT, "model": {"w": torch.ones(2)}, "step": 4}, tmp_path / "legacy.pt",
               _use_new_zipfile_serialization=False)  # a raw pickle, as torch wrote before 1.6
    assert checkpoint_file(folder.path) == old
    assert load_checkpoint(folder.path)["step"] == 3 and load_checkpoint(tmp_path / "legacy.pt")["step"] == 4
    new = folder.save_checkpoint({"model": {"w": torch.zeros(2)}, "step": 5})
    assert new.name == "last.safetensors" and checkpoint_file(folder.path) == new
    assert load_checkpoint(folder.path)["step"] == 5
    assert load_checkpoint(old)["step"] == 3  # the old file is kept as it was
    folder.release()


def test_the_bytes_hold_no_pickle_and_a_safetensors_header(tmp_path):
    data = state_to_bytes(nested_state())
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    assert header["__metadata__"]["kdviz.format"] == "kdviz-state-1"
    assert data[:1] != b"\x80" and data[:2] != b"PK"  # neither a pickle nor a torch zip archive


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (this machine has none)")
def test_cuda_tensors_are_saved_from_the_gpu_and_loaded_where_asked(tmp_path):
    state = {"model": {"w": torch.arange(4.0, device="cuda")}, "step": 1}
    path = write_state(tmp_path / "gpu.safetensors", state)
    assert read_state(path)["model"]["w"].device.type == "cpu"
    assert read_state(path, map_location="cuda")["model"]["w"].device.type == "cuda"


def test_a_safetensors_checkpoint_loads_without_unpickling_anything(tmp_path, monkeypatch):
    folder = new_folder(tmp_path / "run")
    folder.save_checkpoint(nested_state())
    folder.release()

    def refuse(*args, **kwargs):
        raise AssertionError("a safetensors checkpoint must load without torch.load or pickle")

    for owner, name in ((torch, "load"), (pickle, "loads"), (pickle, "load"), (pickle, "Unpickler")):
        monkeypatch.setattr(owner, name, refuse)
    state = load_checkpoint(folder.path)
    assert state["step"] == 12 and torch.equal(state["hooks"]["prune"]["mask/fc.weight"], nested_state()["hooks"]["prune"]["mask/fc.weight"])
