"""Structured pruning removes filters and neurons: a smaller dense model that computes the same
function as the original with those units zeroed, and the same activations for the units it keeps."""
import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from kdviz.models import build_model, count_parameters
from kdviz.prune import count_flops, prune_structured, unit_norms, units_to_keep, zero_removed_units

BUILDS = {
    "mlp": dict(name="mlp", input_shape=(1, 8, 8), hidden=(40, 24), dropout=0.3),
    "lenet300": dict(name="lenet300", input_shape=(1, 28, 28)),
    "lenet5": dict(name="lenet5", input_shape=(1, 12, 12)),
    "cnn": dict(name="cnn", input_shape=(1, 8, 8), channels=(8, 12), hidden=32),
}


def make(key, seed=0):
    torch.manual_seed(seed)
    opts = dict(BUILDS[key])
    model = build_model(opts.pop("name"), input_shape=opts.pop("input_shape"), num_classes=10, **opts)
    with torch.no_grad():  # nonzero biases, so a removed unit would matter if it were not zeroed
        for m in model.modules():
            if getattr(m, "bias", None) is not None:
                m.bias.uniform_(-0.2, 0.2)
    return model.eval()


def inputs(model, n=6, seed=1):
    return torch.rand((n, *model.input_shape), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("key", list(BUILDS))
@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_smaller_model_equals_original_with_removed_units_zeroed(key, norm):
    model = make(key)
    result = prune_structured(model, 0.4, norm=norm)
    small = result.model
    assert type(small) is type(model) and not small.training
    assert count_parameters(small) < count_parameters(model)
    assert count_flops(small)["flops"] < count_flops(model)["flops"]

    twin = zero_removed_units(copy.deepcopy(model), result.kept)
    x = inputs(model)
    with torch.no_grad():
        logits_small, feats_small = small.forward_with_features(x)
        logits_twin, feats_twin = twin.forward_with_features(x)
    torch.testing.assert_close(logits_small, logits_twin, rtol=1e-5, atol=1e-5)
    for layer, feat in feats_small.items():
        kept = result.kept[layer]
        torch.testing.assert_close(feat, feats_twin[layer][:, kept], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("key,layer", [("mlp", "fc1"), ("lenet5", "conv1"), ("cnn", "conv2"), ("lenet5", "fc1")])
def test_kept_units_give_the_original_activations(key, layer):
    """Prune one layer only: its kept units' activations equal the original model's, unchanged."""
    model = make(key)
    result = prune_structured(model, {layer: 0.5})
    x = inputs(model)
    with torch.no_grad():
        _, original = model.forward_with_features(x)
        _, pruned = result.model.forward_with_features(x)
    torch.testing.assert_close(pruned[layer], original[layer][:, result.kept[layer]])
    first = list(result.kept)[0]
    if layer != first:  # layers before the pruned one are untouched
        torch.testing.assert_close(pruned[first], original[first])


def test_units_ranked_by_l1_and_l2_norm_like_numpy():
    model = make("lenet5")
    w = model.conv2.weight.detach().numpy()
    l1 = np.abs(w).sum(axis=(1, 2, 3))
    l2 = np.sqrt((w.astype(np.float64) ** 2).sum(axis=(1, 2, 3)))
    np.testing.assert_allclose(unit_norms(model, "l1")["conv2"], l1, rtol=1e-5)
    np.testing.assert_allclose(unit_norms(model, "l2")["conv2"], l2, rtol=1e-5)
    result = prune_structured(model, {"conv2": 0.3}, norm="l1")
    n_keep = 50 - math.floor(0.3 * 50 + 0.5)
    assert result.kept["conv2"].tolist() == sorted(np.argsort(-l1, kind="stable")[:n_keep].tolist())
    assert result.model.conv2.out_channels == n_keep and result.model.conv1.out_channels == 20


def test_parameter_count_of_pruned_mlp_matches_hand_count():
    model = make("lenet300")
    small = prune_structured(model, {"fc1": 0.5, "fc2": 0.2}).model
    assert small.hidden == (150, 80)
    assert count_parameters(small) == 784 * 150 + 150 + 150 * 80 + 80 + 80 * 10 + 10
    assert count_flops(small)["macs"] == 784 * 150 + 150 * 80 + 80 * 10


def test_units_to_keep_ties_and_minimum():
    assert units_to_keep(np.array([1.0, 1.0, 1.0, 1.0]), 0.5).tolist() == [0, 1]
    assert units_to_keep(np.array([3.0, 1.0, 2.0]), 0.99).tolist() == [0]  # one unit always stays


def test_bad_structured_inputs():
    with pytest.raises(ValueError, match="No structured-pruning layout 'Sequential'.*LeNet5, MLP, SmallCNN"):
        prune_structured(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), 0.5)
    model = make("mlp")
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        prune_structured(model, 1.0)
    with pytest.raises(ValueError, match=r"cannot prune units of \['fc3'\]"):
        prune_structured(model, {"fc3": 0.5})
    with pytest.raises(ValueError, match="No unit norm 'l3'"):
        prune_structured(model, 0.5, norm="l3")
