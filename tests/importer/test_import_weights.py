"""``kdviz.importer``: .safetensors weights imported as a finished run (issue 19, "your own model")."""
import argparse
import json

import pytest
import torch
from safetensors.torch import save_file

from kdviz.engine import TrainConfig, load_trained_model, open_run, start
from kdviz.engine.evaluation import accuracy_and_loss, predict_logits
from kdviz.engine.run_reader import list_runs, read_status
from kdviz.importer import cli as import_cli
from kdviz.importer import import_weights
from kdviz.models import build_model

SPEC = [{"conv": 4}, {"pool": 2}, {"linear": 16}]


@pytest.fixture(scope="module")
def trained_lenet(tmp_path_factory, manager):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("runs")
    job = start(TrainConfig(dataset="digits", model="lenet5", model_options={"channels": [4, 8], "hidden": 32},
                            max_steps=120, lr=0.1, runs_root=str(root), device="cpu", name="zoo-teacher"), manager)
    assert job.wait(60).state == "finished"
    return load_trained_model(job.path)


def test_a_zoo_model_round_trips_and_its_evaluation_is_the_direct_one(trained_lenet, digits, tmp_path, manager):
    weights = tmp_path / "lenet.safetensors"
    save_file(trained_lenet.state_dict(), str(weights))
    run = import_weights(weights, "lenet5", {"channels": [4, 8], "hidden": 32}, dataset="digits", runs_root=tmp_path / "r")
    direct, _ = accuracy_and_loss(predict_logits(trained_lenet, digits.test_images, torch.device("cpu")), digits.test_labels)
    assert run.test_acc == pytest.approx(direct, abs=1e-9) and direct > 0.3
    reader = open_run(run.path)
    assert reader.metrics("eval")[-1]["test_acc"] == pytest.approx(direct, abs=1e-9)
    assert read_status(run.path)["state"] == "finished" and "imported from lenet.safetensors" in read_status(run.path)["message"]
    reloaded = load_trained_model(run.path)
    for key, value in trained_lenet.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value)
    assert [r["name"] for r in list_runs(tmp_path / "r")] == [run.path.name]
    # a finished run like any other: it teaches a student
    kd = start(TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [16]}, method="kd",
                           teacher=str(run.path), max_steps=10, runs_root=str(tmp_path / "r"), device="cpu"), manager)
    status = kd.wait(60)
    assert status.state == "finished", status.message
    assert kd.store.metrics("eval")[-1]["agreement_test"] > 0


def test_a_json_spec_model_round_trips_through_the_cli(tmp_path, digits, capsys):
    torch.manual_seed(5)
    model = build_model("spec", (1, 8, 8), 10, layers=SPEC)
    weights, spec = tmp_path / "w.safetensors", tmp_path / "spec.json"
    save_file(model.state_dict(), str(weights))
    spec.write_text(json.dumps(SPEC))
    parser = argparse.ArgumentParser()
    import_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["import-model", str(weights), "--spec", str(spec), "--dataset", "digits",
                              "--runs-root", str(tmp_path / "runs"), "--name", "my-spec"])
    assert import_cli.command(args) == 0
    out = capsys.readouterr().out
    (row,) = list_runs(tmp_path / "runs")
    assert row["name"].endswith("my-spec") and row["model"] == "spec" and row["path"] in out
    direct, _ = accuracy_and_loss(predict_logits(model, digits.test_images, torch.device("cpu")), digits.test_labels)
    assert f"test accuracy {direct:.2%}" in out
    assert TrainConfig.load(row["path"]).model_options == {"layers": SPEC}


def test_mismatched_weights_are_listed_and_nothing_is_written(trained_lenet, tmp_path):
    weights = tmp_path / "lenet.safetensors"
    state = dict(trained_lenet.state_dict())
    state.pop("fc2.bias")
    state["extra.weight"] = torch.zeros(3)
    save_file(state, str(weights))
    with pytest.raises(ValueError) as err:
        import_weights(weights, "lenet5", {"channels": [4, 8], "hidden": 64}, runs_root=tmp_path / "r")
    text = str(err.value)
    assert "missing from the file: fc2.bias (10)" in text
    assert "not in the model: extra.weight (3)" in text
    assert "wrong shape: fc1.weight (file 32x32, model 64x32)" in text
    assert not (tmp_path / "r").exists()


def test_a_pickle_is_refused_and_a_broken_file_named(trained_lenet, tmp_path):
    pickled = tmp_path / "model.safetensors"
    torch.save(trained_lenet.state_dict(), pickled)
    with pytest.raises(ValueError, match="is a torch.save / pickle file, not safetensors"):
        import_weights(pickled, "lenet5", runs_root=tmp_path / "r")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(ValueError, match="broken.safetensors is not a readable .safetensors file"):
        import_weights(broken, "lenet5", runs_root=tmp_path / "r")
    with pytest.raises(ValueError, match="does not exist"):
        import_weights(tmp_path / "none.safetensors", "lenet5", runs_root=tmp_path / "r")
    assert not (tmp_path / "r").exists()
