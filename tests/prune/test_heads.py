"""Head importance (Michel et al. 2019, eq. 4) against finite differences and a plain autograd loop;
the layer-wise normalisation of their section 4.2; iterative pruning (section 4.1); gates against
zeroed projections and physical removal."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdviz.models import build_model
from kdviz.prune.heads import (
    check_removed, gate_rows, gated_accuracy, head_importance, heads_to_remove, iterative_head_pruning,
    normalize_by_layer, removal_dict, shrink, zero_removed_heads,
)


@pytest.fixture(scope="module")
def vit64():
    torch.manual_seed(5)
    return build_model("vit", (1, 8, 8), 10, patch=2, dim=24, depth=3, heads=4).double().eval()


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(11)
    return torch.rand(12, 1, 8, 8, generator=g, dtype=torch.float64), torch.randint(0, 10, (12,), generator=g)


def _loss(model, gates, x, y):
    with torch.no_grad():
        return float(F.cross_entropy(model.forward_detailed(x, gates).logits, y, reduction="sum"))


def test_importance_is_the_mean_absolute_per_example_gate_derivative_by_finite_differences(vit64, data):
    x, y = data[0][:6], data[1][:6]
    removed = torch.zeros(3, 4, dtype=torch.bool)
    removed[1, 2] = True
    got = head_importance(vit64, x, y, removed=removed, batch_size=4).double()
    eps, expected = 1e-5, torch.zeros(3, 4, dtype=torch.float64)
    base = gate_rows(removed).double()
    for i in range(len(x)):
        for layer in range(3):
            for h in range(4):
                up, down = base.clone(), base.clone()
                up[layer, h] += eps
                down[layer, h] -= eps
                d = (_loss(vit64, up, x[i:i + 1], y[i:i + 1]) - _loss(vit64, down, x[i:i + 1], y[i:i + 1])) / (2 * eps)
                expected[layer, h] += abs(d) / len(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)
    assert got[1, 2] > 0  # a gated-off head still has an importance: the loss change if it came back


def test_batch_convention_matches_a_plain_autograd_loop_and_per_example_with_batches_of_one(vit64, data):
    x, y = data
    batched = head_importance(vit64, x, y, batch_size=4, per_example=False).double()
    total = torch.zeros(3, 4, dtype=torch.float64)
    for start in range(0, 12, 4):  # the released code's way: |d(batch loss)/dxi| summed over batches
        gates = torch.ones(3, 4, dtype=torch.float64, requires_grad=True)
        loss = F.cross_entropy(vit64.forward_detailed(x[start:start + 4], gates).logits, y[start:start + 4], reduction="sum")
        loss.backward()
        total += gates.grad.abs()
    torch.testing.assert_close(batched, total / 12, rtol=1e-5, atol=1e-7)
    per_example = head_importance(vit64, x, y).double()
    ones = head_importance(vit64, x, y, batch_size=1, per_example=False).double()
    torch.testing.assert_close(ones, per_example, rtol=1e-5, atol=1e-7)
    assert bool((per_example >= batched - 1e-9).all()) and float((per_example - batched).max()) > 1e-4  # |sum| <= sum |.|


def test_layer_normalisation_gives_unit_l2_rows_and_keeps_each_layers_order(vit64, data):
    x, y = data
    raw = head_importance(vit64, x, y)
    normed = head_importance(vit64, x, y, normalize_layers=True)
    torch.testing.assert_close(normed.pow(2).sum(1), torch.ones(3), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(normed, raw / raw.norm(dim=1, keepdim=True), rtol=1e-5, atol=1e-7)
    assert torch.equal(normed.argsort(1), raw.argsort(1))
    torch.testing.assert_close(normalize_by_layer(torch.tensor([[3.0, 4.0]])), torch.tensor([[0.6, 0.8]]))


def test_heads_to_remove_takes_the_least_important_keeps_a_head_per_layer_and_breaks_ties_row_major():
    importance = torch.tensor([[0.5, 0.1, 0.2], [0.05, 0.04, 0.9], [0.3, 0.3, 0.3]])
    removed = heads_to_remove(importance, torch.zeros(3, 3, dtype=torch.bool), 3)
    assert removed.nonzero().tolist() == [[0, 1], [1, 0], [1, 1]]
    removed = heads_to_remove(importance, removed, 2)  # layer 1 keeps head 2; layer 0 loses head 2 then ties in layer 2
    assert removed.nonzero().tolist() == [[0, 1], [0, 2], [1, 0], [1, 1], [2, 0]]
    full = heads_to_remove(importance, removed, 50)
    assert full.sum(1).tolist() == [2, 2, 2]  # one head left in each layer, however many are asked for
    drawn = heads_to_remove(importance, torch.zeros(3, 3, dtype=torch.bool), 4, torch.Generator().manual_seed(3))
    again = heads_to_remove(importance, torch.zeros(3, 3, dtype=torch.bool), 4, torch.Generator().manual_seed(3))
    assert torch.equal(drawn, again) and int(drawn.sum()) == 4


def test_iterative_pruning_removes_a_fraction_per_step_by_the_previous_importance(vit64, data):
    x, y = data
    steps = iterative_head_pruning(vit64, (x, y), (x, y), fraction=0.25, max_removed=7, normalize_layers=True)
    assert [s.heads_removed for s in steps] == [0, 3, 6, 7]  # 25 % of 12 heads = 3 per step, the last capped
    assert steps[0].accuracy == gated_accuracy(vit64, x, y, torch.zeros(3, 4, dtype=torch.bool))
    for before, after in zip(steps, steps[1:]):
        assert not (before.removed & ~after.removed).any()  # heads never come back
        expected = heads_to_remove(torch.from_numpy(before.importance), torch.from_numpy(before.removed),
                                   after.heads_removed - before.heads_removed)
        assert np.array_equal(after.removed, expected.numpy())
        torch.testing.assert_close(torch.from_numpy(after.importance),
                                   head_importance(vit64, x, y, removed=torch.from_numpy(after.removed), normalize_layers=True))
        assert after.accuracy == gated_accuracy(vit64, x, y, torch.from_numpy(after.removed))
    raw = iterative_head_pruning(vit64, (x, y), (x, y), fraction=0.25, max_removed=7)  # the default: raw eq. 4 scores
    torch.testing.assert_close(torch.from_numpy(raw[0].importance), head_importance(vit64, x, y))
    shuffled = iterative_head_pruning(vit64, (x, y), (x, y), fraction=0.25, max_removed=7, order="random", seed=4)
    assert [s.heads_removed for s in shuffled] == [0, 3, 6, 7]
    assert any(not np.array_equal(a.removed, b.removed) for a, b in zip(steps, shuffled))
    with pytest.raises(ValueError, match="max_removed must be 0..9"):
        iterative_head_pruning(vit64, (x, y), (x, y), max_removed=10)
    with pytest.raises(ValueError, match="order must be one of"):
        iterative_head_pruning(vit64, (x, y), (x, y), order="magnitude")


def test_gates_zeroed_projection_columns_and_physical_removal_compute_the_same(vit64, data):
    vit64, x = copy.deepcopy(vit64).float(), data[0].float()  # prune() rebuilds its Linear layers in float32
    removed = torch.zeros(3, 4, dtype=torch.bool)
    removed[0, 1] = removed[2, 0] = removed[2, 3] = True
    assert removal_dict(removed) == {0: [1], 2: [0, 3]}
    with torch.no_grad():
        gated = vit64.forward_detailed(x, gate_rows(removed)).logits
        zeroed_model = zero_removed_heads(shrink(vit64, torch.zeros(3, 4, dtype=torch.bool)), removed)
        zeroed = zeroed_model(x)
        smaller = shrink(vit64, removed)
        physical = smaller(x)
    torch.testing.assert_close(zeroed, gated)
    torch.testing.assert_close(physical, gated)
    assert smaller.heads_per_layer == [3, 4, 2] and vit64.heads_per_layer == [4, 4, 4]
    assert sum(p.numel() for p in smaller.parameters()) < sum(p.numel() for p in vit64.parameters())


def test_bad_removed_matrices_and_non_vits_are_named():
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        check_removed(np.zeros((3, 2), dtype=bool), (2, 3))
    with pytest.raises(ValueError, match=r"layers \[1\] would lose every head"):
        check_removed(np.array([[False, False], [True, True]]), (2, 2))
    mlp = build_model("mlp", (1, 8, 8), 10)
    with pytest.raises(ValueError, match="no attention heads"):
        head_importance(mlp, torch.rand(2, 1, 8, 8), torch.zeros(2, dtype=torch.long))
