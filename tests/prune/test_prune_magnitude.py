"""Magnitude pruning reaches the exact target sparsity; Han's threshold rule matches numpy."""
import math

import numpy as np
import pytest
import torch

from kdviz.models import build_model
from kdviz.prune import (
    PruningMasks,
    han_thresholds,
    kept_magnitude_threshold,
    l1_penalty,
    magnitude_masks,
    prunable_weights,
    threshold_masks,
)


def lenet300(seed=0):
    torch.manual_seed(seed)
    return build_model("lenet300", input_shape=(1, 28, 28), num_classes=10)


def weights_np(model):
    return {n: p.detach().numpy().copy() for n, p in prunable_weights(model).items()}


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 0.9, 0.92, 0.999])
def test_layerwise_sparsity_is_exact_and_prunes_the_smallest(sparsity):
    model = lenet300()
    w = weights_np(model)
    masks = magnitude_masks(model, sparsity, scope="layer")
    for name, arr in w.items():
        pruned = ~masks[name].numpy()
        assert pruned.sum() == math.floor(sparsity * arr.size + 0.5)
        if 0 < pruned.sum() < arr.size:
            assert np.abs(arr[pruned]).max() <= np.abs(arr[~pruned]).min()


@pytest.mark.parametrize("sparsity", [0.3, 0.9, 0.95])
def test_global_sparsity_is_exact_with_one_cut_over_all_layers(sparsity):
    model = lenet300()
    w = weights_np(model)
    masks = magnitude_masks(model, sparsity, scope="global")
    total = sum(a.size for a in w.values())
    pruned_total = sum(int((~masks[n]).sum()) for n in w)
    assert pruned_total == math.floor(sparsity * total + 0.5)
    all_w = np.concatenate([np.abs(a).ravel() for a in w.values()])
    keep = np.concatenate([masks[n].numpy().ravel() for n in w])
    assert all_w[~keep].max() <= all_w[keep].min()
    assert masks.overall_sparsity() == pytest.approx(pruned_total / total)


def test_ties_are_broken_by_position_so_the_count_is_exact():
    model = build_model("mlp", input_shape=(1, 2, 2), num_classes=2, hidden=(3,))
    with torch.no_grad():
        model.fc1.weight.fill_(0.5)  # 12 equal magnitudes
        model.fc1.weight[0, 0] = -2.0
        model.fc2.weight.copy_(torch.tensor([[1.0, -1.0, 1.0], [1.0, 1.0, 1.0]]))
    masks = magnitude_masks(model, 0.5)
    flat = masks["fc1.weight"].flatten().numpy()
    assert (~flat).sum() == 6
    expected = np.ones(12, bool)
    expected[np.argsort(np.abs(model.fc1.weight.detach().numpy().ravel()), kind="stable")[:6]] = False
    np.testing.assert_array_equal(flat, expected)  # the first six equal ones, by position
    assert (~masks["fc2.weight"]).sum() == 3
    assert list(masks["fc2.weight"].flatten().numpy()) == [False, False, False, True, True, True]


def test_per_layer_dict_targets():
    model = lenet300()
    targets = {"fc1.weight": 0.92, "fc2.weight": 0.91, "fc3.weight": 0.74}
    masks = magnitude_masks(model, targets)
    for name, s in targets.items():
        assert int((~masks[name]).sum()) == math.floor(s * masks[name].numel() + 0.5)


def test_previously_pruned_weights_stay_pruned():
    model = lenet300()
    first = magnitude_masks(model, 0.5)
    with torch.no_grad():  # retraining might make pruned weights large again if they were not masked
        for p in prunable_weights(model).values():
            p.copy_(torch.randn_like(p))
    second = magnitude_masks(model, 0.7, previous=first)
    for name in first:
        assert torch.all(~second[name][~first[name]])
        assert int((~second[name]).sum()) == math.floor(0.7 * second[name].numel() + 0.5)
    lower = magnitude_masks(model, 0.2, previous=first)  # a lower target never revives weights
    for name in first:
        assert torch.equal(lower[name], first[name])


def test_han_threshold_rule_matches_numpy():
    model = lenet300()
    w = weights_np(model)
    quality = {"fc1.weight": 1.2, "fc2.weight": 0.9, "fc3.weight": 0.5}
    masks, thresholds = threshold_masks(model, quality)
    for name, arr in w.items():
        t = quality[name] * np.std(arr.astype(np.float64))  # population std, ddof = 0
        assert thresholds[name] == pytest.approx(t, rel=1e-9)
        np.testing.assert_array_equal(masks[name].numpy(), np.abs(arr) > t)
    single = han_thresholds(model, 1.0)
    assert single["fc2.weight"] == pytest.approx(np.std(w["fc2.weight"].astype(np.float64)), rel=1e-9)


def test_threshold_of_a_magnitude_mask_is_the_smallest_survivor():
    model = lenet300()
    masks = magnitude_masks(model, 0.6)
    arr = np.abs(model.fc2.weight.detach().numpy())
    assert kept_magnitude_threshold(model.fc2.weight, masks["fc2.weight"]) == pytest.approx(
        arr[masks["fc2.weight"].numpy()].min())
    assert kept_magnitude_threshold(model.fc2.weight, PruningMasks.dense(model)["fc2.weight"]) == 0.0


@pytest.mark.parametrize("bad", [1.0, 1.5, -0.1, float("nan")])
def test_sparsity_outside_unit_interval_is_rejected(bad):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        magnitude_masks(lenet300(), bad)


def test_other_bad_inputs_are_clear():
    model = lenet300()
    with pytest.raises(TypeError, match="number"):
        magnitude_masks(model, "0.5")
    with pytest.raises(TypeError, match="number"):
        magnitude_masks(model, True)
    with pytest.raises(ValueError, match="No pruning scope 'row'"):
        magnitude_masks(model, 0.5, scope="row")
    with pytest.raises(TypeError, match="one overall sparsity"):
        magnitude_masks(model, {"fc1.weight": 0.5}, scope="global")
    with pytest.raises(ValueError, match="not prunable"):
        magnitude_masks(model, {"fc9.weight": 0.5})
    with pytest.raises(ValueError, match="quality"):
        threshold_masks(model, -1.0)
    with pytest.raises(ValueError, match=r"sparsity of 'fc2.weight'"):
        magnitude_masks(model, {"fc2.weight": 1.0})


def test_l1_penalty_matches_numpy_and_its_gradient_is_sign():
    model = lenet300()
    w = weights_np(model)
    value = l1_penalty(model, 1e-4)
    assert float(value.detach()) == pytest.approx(1e-4 * sum(np.abs(a).sum() for a in w.values()), rel=1e-5)
    value.backward()
    np.testing.assert_allclose(model.fc3.weight.grad.numpy(), 1e-4 * np.sign(w["fc3.weight"]), rtol=1e-6)
    assert model.fc3.bias.grad is None  # biases are not penalised
    with pytest.raises(ValueError, match="L1 penalty weight"):
        l1_penalty(model, -1.0)
