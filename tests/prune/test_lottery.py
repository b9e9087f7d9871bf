"""Lottery-ticket maths (Frankle & Carbin 2019; Frankle et al. 2020) against torch.nn.utils.prune."""
import pytest
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from kdviz.prune.lottery import (
    capture_weights, mask_overlap, next_ticket_masks, prune_count, random_reinit, rewind, ticket_sparsity,
)
from kdviz.prune.masks import PruningMasks


def lenet(seed=0, sizes=(40, 30, 20, 10)):
    torch.manual_seed(seed)
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def test_layerwise_rounds_equal_torch_l1_unstructured_and_output_at_half_rate():
    model, peer = lenet(1), lenet(1)
    names = ["0.weight", "2.weight", "4.weight"]
    masks = None
    for r in range(1, 4):
        with torch.no_grad():  # a "trained" model: weights change between rounds
            for i in (0, 2, 4):
                noise = torch.randn_like(model[i].weight) * 0.05
                model[i].weight.add_(noise)
                getattr(peer[i], "weight_orig", peer[i].weight).add_(noise)
        peer(torch.zeros(1, 40))  # torch ranks module.weight, recomputed as orig * mask by a forward
        masks = next_ticket_masks(model, masks, prune_fraction=0.3)
        for i, name in enumerate(names):
            module = peer[int(name.split(".")[0])]
            torch_prune.l1_unstructured(module, "weight", amount=0.15 if i == 2 else 0.3)
            assert torch.equal(masks[name], module.weight_mask.bool()), (r, name)
    # cumulative survivors follow (1 - p)^r with torch's rounding, round after round
    kept = 40 * 30
    for _ in range(3):
        kept -= prune_count(kept, 0.3)
    assert masks.kept()["0.weight"] == kept
    assert abs(ticket_sparsity(0.3, 3) - (1 - 0.7 ** 3)) < 1e-12


def test_global_rounds_equal_torch_global_unstructured_with_output_ignored():
    model, peer = lenet(2), lenet(2)
    hidden = [(peer[0], "weight"), (peer[2], "weight")]
    masks = None
    for _ in range(3):
        masks = next_ticket_masks(model, masks, prune_fraction=0.2, output_fraction=0.0, scope="global")
        torch_prune.global_unstructured(hidden, pruning_method=torch_prune.L1Unstructured, amount=0.2)
        assert torch.equal(masks["0.weight"], peer[0].weight_mask.bool())
        assert torch.equal(masks["2.weight"], peer[2].weight_mask.bool())
        assert bool(masks["4.weight"].all())  # open_lth's convention: output layer dense
    assert masks.kept()["0.weight"] != masks.kept()["2.weight"] * 40 / 30  # global: layers differ in rate


def test_masks_nest_and_overlap_is_one_minus_p():
    model = lenet(3)
    first = next_ticket_masks(model, None, 0.25)
    second = next_ticket_masks(model, first, 0.25)
    assert all(bool((second[n] <= first[n]).all()) for n in first)
    overlap = mask_overlap(first, second)
    assert overlap.jaccard == pytest.approx(sum(second.kept().values()) / sum(first.kept().values()))
    assert overlap.kept_of_first == pytest.approx(overlap.jaccard)
    assert 0.70 < overlap.jaccard < 0.80
    # an independent count on disjoint halves
    a = PruningMasks({"w": torch.tensor([True, True, False, False])})
    b = PruningMasks({"w": torch.tensor([False, True, True, False])})
    o = mask_overlap(a, b)
    assert (o.jaccard, o.kept_of_first) == (pytest.approx(1 / 3), 0.5)


def test_rewind_restores_theta_k_with_mask_and_reinit_is_fresh_and_seeded():
    model = lenet(4)
    theta0 = capture_weights(model)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    masks = next_ticket_masks(model, None, 0.5)
    rewind(model, theta0, masks)
    w = model[0].weight
    assert torch.equal(w[masks["0.weight"]], theta0["0.weight"][masks["0.weight"]])
    assert bool((w[~masks["0.weight"]] == 0).all())
    assert torch.equal(model[0].bias, theta0["0.bias"])
    state = torch.random.get_rng_state()
    random_reinit(model, 7, masks)
    assert torch.equal(state, torch.random.get_rng_state())  # the global generator is left as it was
    a = model[0].weight.clone()
    assert not torch.equal(a[masks["0.weight"]], theta0["0.weight"][masks["0.weight"]])
    assert bool((a[~masks["0.weight"]] == 0).all())
    random_reinit(model, 7, masks)
    assert torch.equal(a, model[0].weight)


def test_bad_input_is_named():
    model = lenet(5)
    with pytest.raises(ValueError, match="prune fraction"):
        next_ticket_masks(model, None, 1.0)
    with pytest.raises(ValueError, match="scope"):
        next_ticket_masks(model, None, 0.2, scope="row")
    with pytest.raises(ValueError, match="rewind weights lack"):
        rewind(model, {}, None)
    other = PruningMasks({"0.weight": torch.ones(30, 40, dtype=torch.bool)})
    with pytest.raises(ValueError, match="no entry"):
        next_ticket_masks(model, other, 0.2)
