"""The model zoo: shapes, named features, parameter counts computed by hand."""
import pytest
import torch

from kdviz.models import FeatureModel, build_model, count_parameters, list_models, model_summary


def fc(n_in, n_out):
    return n_in * n_out + n_out


@pytest.mark.parametrize("name", ["mlp", "lenet300", "lenet5", "cnn"])
@pytest.mark.parametrize("shape,classes", [((1, 8, 8), 10), ((1, 28, 28), 10), ((3, 12, 12), 4)])
def test_models_adapt_to_input_and_classes(name, shape, classes):
    model = build_model(name, input_shape=shape, num_classes=classes)
    assert isinstance(model, FeatureModel)
    x = torch.rand(3, *shape)
    logits, feats = model.forward_with_features(x)
    assert logits.shape == (3, classes)
    assert tuple(feats) == model.feature_names and len(feats) >= 2
    for f in feats.values():
        assert f.shape[0] == 3 and f.ndim in (2, 4)
    assert torch.equal(model.eval()(x), model.eval().forward_with_features(x)[0])


def test_parameter_counts_match_hand_arithmetic():
    assert count_parameters(build_model("lenet300", input_shape=(1, 28, 28))) == fc(784, 300) + fc(300, 100) + fc(100, 10)
    assert count_parameters(build_model("mlp", input_shape=(1, 28, 28), hidden=(800, 800))) == (
        fc(784, 800) + fc(800, 800) + fc(800, 10)
    )
    assert count_parameters(build_model("mlp", input_shape=(1, 28, 28), hidden=(1200, 1200))) == (
        fc(784, 1200) + fc(1200, 1200) + fc(1200, 10)
    )
    lenet5 = build_model("lenet5", input_shape=(1, 28, 28))
    assert count_parameters(lenet5) == (1 * 20 * 25 + 20) + (20 * 50 * 25 + 50) + fc(50 * 7 * 7, 500) + fc(500, 10)


def test_mlp_features_are_post_relu_hidden_activations():
    model = build_model("mlp", input_shape=(1, 8, 8), hidden=(16, 12)).eval()
    x = torch.rand(5, 1, 8, 8)
    _, feats = model.forward_with_features(x)
    h1 = torch.relu(x.flatten(1) @ model.fc1.weight.T + model.fc1.bias)
    torch.testing.assert_close(feats["fc1"], h1)
    assert feats["fc2"].shape == (5, 12) and (feats["fc2"] >= 0).all()


def test_dropout_only_in_training():
    model = build_model("mlp", input_shape=(1, 8, 8), hidden=(64,), dropout=0.5)
    x = torch.rand(4, 1, 8, 8)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))


def test_summary_and_registry_errors():
    text = model_summary(build_model("lenet300", input_shape=(1, 28, 28)))
    assert "fc1" in text and "266,610" in text
    assert {"mlp", "lenet300", "lenet5", "cnn"} <= set(list_models())
    with pytest.raises(ValueError, match="No model 'vgg'"):
        build_model("vgg")
    with pytest.raises(ValueError, match="hidden"):
        build_model("mlp", hidden=(0,))
    with pytest.raises(ValueError, match="dropout"):
        build_model("mlp", dropout=1.0)
    with pytest.raises(ValueError, match="input_shape"):
        build_model("mlp", input_shape=(8, 8))
