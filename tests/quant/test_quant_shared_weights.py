"""Centroid fine-tuning (Han et al. 2016, sec. 3.3, eq. 3) through shared-weight parametrizations."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdviz.quant import (attach_shared_model, attach_shared_weights, bake_shared_weights, centroid_parameters,
                         kmeans_quantize)


def _pruned_linear(seed=0, sparsity=0.6):
    torch.manual_seed(seed)
    layer = nn.Linear(12, 7)
    with torch.no_grad():
        layer.weight[torch.rand_like(layer.weight) < sparsity] = 0.0
    return layer


def test_centroid_gradient_is_the_sum_of_weight_gradients_per_cluster():
    layer = _pruned_linear()
    sw = kmeans_quantize(layer.weight, 2)
    x, y = torch.randn(9, 12), torch.randint(0, 7, (9,))

    # reference: the gradient with respect to each (plain, leaf) shared weight
    w = sw.weight().clone().requires_grad_(True)
    F.cross_entropy(F.linear(x, w, layer.bias.detach()), y).backward()
    expected = torch.zeros(sw.num_clusters)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            if sw.mask[i, j]:
                expected[sw.indices[i, j]] += w.grad[i, j]

    p = attach_shared_weights(layer, sw)
    F.cross_entropy(layer(x), y).backward()
    torch.testing.assert_close(p.centroids.grad, expected, rtol=1e-5, atol=1e-7)
    assert layer.parametrizations.weight.original.grad is None  # the old float weight is frozen


def test_pruned_weights_stay_zero_and_indices_fixed_through_fine_tuning():
    layer = _pruned_linear(seed=1)
    zero = layer.weight.detach() == 0
    sw = kmeans_quantize(layer.weight, 3)
    p = attach_shared_weights(layer, sw)
    indices = p.indices.clone()
    start = p.centroids.detach().clone()
    opt = torch.optim.Adam(layer.parameters(), lr=0.05, weight_decay=1e-3)
    for _ in range(20):
        opt.zero_grad()
        loss = F.cross_entropy(layer(torch.randn(16, 12)), torch.randint(0, 7, (16,)))
        loss.backward()
        opt.step()
    assert not torch.equal(p.centroids.detach(), start)  # the codebook trained
    assert (layer.weight[zero] == 0).all()
    assert torch.equal(p.indices, indices)
    assert len(torch.unique(layer.weight.detach()[~zero])) <= 8


def test_bake_gives_a_plain_layer_with_the_same_outputs():
    layer = _pruned_linear(seed=2)
    attach_shared_weights(layer, kmeans_quantize(layer.weight, 2))
    x = torch.randn(5, 12)
    before = layer(x).detach()
    model = nn.Sequential(layer)
    bake_shared_weights(model)
    assert isinstance(layer.weight, nn.Parameter) and layer.weight.requires_grad
    assert "0.weight" in model.state_dict()
    torch.testing.assert_close(layer(x), before)


def test_model_helpers_and_errors():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    shared = {"0": kmeans_quantize(model[0].weight, 2), "2": kmeans_quantize(model[2].weight, 1)}
    attach_shared_model(model, shared)
    assert len(centroid_parameters(model)) == 2
    with pytest.raises(ValueError, match="already has a parametrization"):
        attach_shared_weights(model[0], shared["0"])
    with pytest.raises(ValueError, match="no layers"):
        attach_shared_model(model, {"7": shared["0"]})
    with pytest.raises(ValueError, match="shape"):
        attach_shared_weights(nn.Linear(5, 5), shared["0"])
