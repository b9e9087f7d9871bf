"""``kdviz.models.spec``: a model from a JSON layer list, named by a TrainConfig (issue 19)."""
import json

import pytest
import torch

from kdviz.engine import TrainConfig, start
from kdviz.models import build_model
from kdviz.models.spec import read_spec

SPEC = [{"conv": 6, "kernel": 3}, {"pool": 2}, {"conv": 8, "kernel": 3, "batchnorm": True, "activation": "tanh"},
        {"linear": 20}, {"dropout": 0.1}]


def test_a_spec_builds_the_layers_it_lists_with_their_features():
    model = build_model("spec", input_shape=(1, 8, 8), num_classes=5, layers=SPEC).eval()
    assert model.feature_names == ("conv1", "conv2", "fc1")
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items() if k.endswith("weight")}
    assert shapes == {"conv1.weight": (6, 1, 3, 3), "conv2.weight": (8, 6, 3, 3), "conv2_bn.weight": (8,),
                      "fc1.weight": (20, 8 * 4 * 4), "fc2.weight": (5, 20)}
    x = torch.rand(3, 1, 8, 8)
    logits, features = model.forward_with_features(x)
    a = torch.relu(model.conv1(x))
    b = torch.tanh(model.conv2_bn(model.conv2(torch.nn.functional.max_pool2d(a, 2))))
    h = torch.relu(model.fc1(b.flatten(1)))
    torch.testing.assert_close(features["conv1"], a)
    torch.testing.assert_close(features["conv2"], b)
    torch.testing.assert_close(logits, model.fc2(h))


@pytest.mark.parametrize("layers, words", [
    ([], "non-empty list"),
    ([{"conv": 4, "kernal": 3}], "layer 1: unknown key(s) ['kernal']"),
    ([{"linear": 8}, {"conv": 4}], "layer 2: a conv layer cannot follow a linear layer"),
    ([{"conv": 4}, {"pool": 16}], "layer 2: a 16x16 pool does not fit the 4x8x8 input"),
    ([{"conv": 4, "kernel": 11, "padding": 0}], "layer 1: a 11x11 conv"),
    ([{"conv": "16"}], "layer 1: 'conv' must be an integer"),
    ([{"linear": 8, "activation": "swish"}], "activation 'swish' is unknown"),
    ([{"dropout": 1.5}], "dropout must be a number in [0, 1)"),
    ([{"conv": 4, "pool": 2}], "name exactly one of"),
])
def test_bad_specs_are_named(layers, words):
    with pytest.raises(ValueError) as err:
        build_model("spec", input_shape=(1, 8, 8), num_classes=10, layers=layers)
    assert words in str(err.value)


def test_read_spec_from_a_file_and_its_errors(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"layers": SPEC}))
    assert read_spec(path) == SPEC
    assert read_spec(json.dumps(SPEC)) == SPEC
    path.write_text("[{\"conv\": 4},")
    with pytest.raises(ValueError, match="spec file spec.json is not valid JSON"):
        read_spec(path)
    with pytest.raises(ValueError, match="layer 2: unknown key"):
        read_spec([{"conv": 4}, {"linear": 3, "units": 2}])
    with pytest.raises(ValueError, match="does not exist"):
        read_spec(tmp_path / "none.json")


def test_a_trainconfig_names_the_spec_model_and_trains_it(tmp_path, manager, one_thread):
    config = TrainConfig(dataset="digits", model="spec", model_options={"layers": SPEC}, max_steps=40, lr=0.05,
                         runs_root=str(tmp_path), device="cpu", eval_every=20)
    job = start(config, manager)
    status = job.wait(60)
    assert status.state == "finished", status.message
    evals = job.store.metrics("eval")
    assert evals[-1]["test_acc"] > evals[0]["test_acc"] + 0.2  # it learned, from about chance
    bad = start(TrainConfig(dataset="digits", model="spec", model_options={"layers": [{"cnv": 3}]},
                            runs_root=str(tmp_path), device="cpu"), manager).wait(30)
    assert bad.state == "failed" and "layer 1: name exactly one of conv, pool, linear, dropout" in bad.message
