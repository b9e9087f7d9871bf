"""``kdviz.models.wrapped``: any nn.Module as a FeatureModel (issue 19, "your own model").

Features are checked against a forward pass computed by hand from the same weights; a small CNN that
is not in the zoo then goes through FSP, hints and attention (feature taps), KD, magnitude pruning
and k-means quantization through the engine."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import kdviz.methods  # noqa: F401  (registers the hooks)
from kdviz.distill.attention import attention_map
from kdviz.distill.fsp import fsp_matrix
from kdviz.engine import TrainConfig, load_trained_model, start
from kdviz.models import build_model
from kdviz.models.wrapped import WrappedModel, register_wrapped, wrap
from kdviz.prune import magnitude_masks
from kdviz.quant.kmeans import kmeans_quantize_model


class TinyCNN(nn.Module):
    """A user's own model with its own forward (functional ReLU, a dropout module)."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(1, 3, 3, padding=1)
        self.conv_b = nn.Conv2d(3, 4, 3, padding=1)
        self.drop = nn.Dropout(0.25)
        self.head = nn.Linear(4 * 4 * 4, classes)

    def forward(self, x):
        a = F.relu(self.conv_a(x))
        b = F.relu(self.conv_b(a))
        return self.head(self.drop(F.max_pool2d(b, 2).flatten(1)))


def user_sequential() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(6 * 4 * 4, 24), nn.ReLU(), nn.Linear(24, 10))


def test_features_equal_a_forward_pass_by_hand():
    torch.manual_seed(3)
    net = TinyCNN()
    model = wrap(net, input_shape=(1, 8, 8))
    x = torch.rand(5, 1, 8, 8)
    logits, features = model.forward_with_features(x)
    assert model.feature_names == ("conv_a", "conv_b")  # every Conv/Linear output but the logits
    a = F.conv2d(x, net.conv_a.weight, net.conv_a.bias, padding=1)
    b = F.conv2d(F.relu(a), net.conv_b.weight, net.conv_b.bias, padding=1)
    head = F.max_pool2d(F.relu(b), 2).flatten(1) @ net.head.weight.T + net.head.bias
    model.eval()
    torch.testing.assert_close(features["conv_a"], a)
    torch.testing.assert_close(features["conv_b"], b)
    torch.testing.assert_close(model(x), head)
    assert logits.shape == (5, 10) and model.num_classes == 10 and model.input_shape == (1, 8, 8)
    # the user's names, so a state dict of the bare model loads into the wrapper
    assert list(model.state_dict()) == list(net.state_dict())
    assert model.prunable_layers() == ["conv_a.weight", "conv_b.weight", "head.weight"]
    assert model.quantizable_layers() == ["conv_a", "conv_b", "head"]


def test_chosen_layers_and_train_mode_reach_the_model():
    model = wrap(user_sequential(), layers=["1", "3", "7"], input_shape=(1, 8, 8))
    x = torch.rand(2, 1, 8, 8)
    _, features = model.forward_with_features(x)
    assert [tuple(f.shape) for f in features.values()] == [(2, 6, 8, 8), (2, 6, 8, 8), (2, 24)]
    assert (features["1"] >= 0).all()  # post-ReLU outputs, as asked
    model.eval()
    assert not model.inner.training
    model.train()
    assert model.inner.training
    # dropout modules become seeded ones (same p), so engine runs stay reproducible
    net = TinyCNN()
    wrap(net, input_shape=(1, 8, 8))
    assert type(net.drop).__name__ == "SeededDropout" and net.drop.p == 0.25


def test_feature_taps_fsp_and_attention_use_the_wrapped_features():
    torch.manual_seed(0)
    net = user_sequential()
    model = wrap(net, input_shape=(1, 8, 8)).eval()
    x = torch.rand(4, 1, 8, 8)
    _, features = model.forward_with_features(x)
    first = net[0](x)
    second = net[2](net[1](first))
    torch.testing.assert_close(fsp_matrix(features["0"], features["2"]), fsp_matrix(first, second))
    torch.testing.assert_close(attention_map(features["2"]), attention_map(second))


def test_pruning_and_quantization_act_on_the_users_layers():
    torch.manual_seed(1)
    net = user_sequential()
    model = wrap(net, input_shape=(1, 8, 8))
    masks = magnitude_masks(model, 0.75, scope="layer")
    assert sorted(masks.names()) == ["0.weight", "2.weight", "6.weight", "8.weight"]
    masks.apply(model)
    assert float((net[6].weight == 0).float().mean()) == pytest.approx(0.75, abs=0.01)  # the user's module is pruned
    shared = kmeans_quantize_model(model, bits=2, layers=["6"])
    assert shared["6"].num_clusters <= 4 and len(torch.unique(shared["6"].weight())) <= 5  # 4 centroids and the zeros


@pytest.mark.parametrize("kwargs, words", [
    ({}, "input_shape"),
    ({"input_shape": (1, 8, 8), "layers": ["nope"]}, "no layer named ['nope']"),
    ({"input_shape": (1, 8, 8), "num_classes": 7}, "outputs 10 logits"),
    ({"input_shape": (3, 8, 8)}, "Is input_shape (C, H, W) right"),
])
def test_bad_wrap_arguments_are_named(kwargs, words):
    with pytest.raises(ValueError) as err:
        wrap(user_sequential(), **kwargs)
    assert words in str(err.value)


def test_a_user_cnn_distils_prunes_and_quantizes_through_the_engine(tmp_path, manager, one_thread):
    """A CNN defined here (not in the zoo), registered by name: a teacher, then a KD student with FSP,
    hints and attention taps, then magnitude pruning and k-means quantization of the teacher."""
    register_wrapped("test-user-cnn", lambda shape, classes: user_sequential())
    register_wrapped("test-user-cnn", lambda shape, classes: user_sequential())  # a cell run twice: replaced
    assert isinstance(build_model("test-user-cnn", (1, 8, 8), 10), WrappedModel)
    common = dict(dataset="digits", model="test-user-cnn", runs_root=str(tmp_path), batch_size=32, seed=1,
                  eval_every=10, snapshot_every=10, device="cpu")
    teacher = start(TrainConfig(epochs=2, lr=0.1, name="teacher", **common), manager)
    assert teacher.wait(120).state == "finished"
    hooks = [{"name": "fsp", "pairs": [["0", "2"]]}, {"name": "hints", "student_layer": "6", "teacher_layer": "6", "weight": 0.1},
             {"name": "attention", "pairs": [["2", "2"]]}]
    jobs = [start(TrainConfig(method="kd", teacher=str(teacher.path), max_steps=20, hooks=hooks, name="kd", lr=0.005,
                              **common), manager),
            start(TrainConfig(init_from=str(teacher.path), max_steps=20, name="pruned", lr=0.01,
                              hooks=[{"name": "prune", "sparsity": 0.8, "schedule": "one-shot"}], **common), manager),
            start(TrainConfig(init_from=str(teacher.path), max_steps=10, name="kmeans", lr=0.001,
                              hooks=[{"name": "kmeans", "bits": 3}], **common), manager)]
    states = [job.wait(120) for job in jobs]
    assert [s.state for s in states] == ["finished"] * 3, [s.message for s in states]
    kd_eval = jobs[0].store.metrics("eval")[-1]
    for hook in ("fsp", "hints", "attention"):
        assert any(k.startswith(f"{hook}/") for k in kd_eval), sorted(kd_eval)
    pruned = load_trained_model(jobs[1].path)
    assert float((pruned.get_submodule("6").weight == 0).float().mean()) >= 0.79
    quantized = load_trained_model(jobs[2].path)
    assert len(torch.unique(quantized.get_submodule("6").weight)) <= 8
