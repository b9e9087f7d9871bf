"""N:M masks (Mishra et al. 2021; Zhou et al. 2021) against an independent loop and torch.ao's sparsifier."""
import numpy as np
import pytest
import torch
from torch import nn

from kdviz.prune.n_m import follows_n_m, n_at, n_m_mask, n_m_masks, n_m_sparsity


def loop_mask(w: np.ndarray, n: int, m: int) -> np.ndarray:
    """Independent: walk every row, every group of m inputs, keep the n largest |w| (earlier wins ties)."""
    keep = np.zeros(w.shape, dtype=bool)
    for row in range(w.shape[0]):
        for start in range(0, w.shape[1], m):
            group = [(-abs(w[row, start + j]), j) for j in range(m)]
            for _, j in sorted(group)[:n]:
                keep[row, start + j] = True
    return keep


@pytest.mark.parametrize("n,m", [(2, 4), (1, 4), (3, 8)])
def test_linear_mask_matches_loop_and_has_exact_sparsity(n, m):
    w = torch.randn(12, 3 * m * 2, generator=torch.Generator().manual_seed(n * 10 + m))
    mask = n_m_mask(w, n, m)
    assert np.array_equal(mask.numpy(), loop_mask(w.numpy(), n, m))
    assert 1 - mask.float().mean().item() == pytest.approx(n_m_sparsity(n, m))
    assert follows_n_m(mask, n, m) and not follows_n_m(torch.ones_like(mask), n, m)


def test_ties_keep_the_earlier_weight_and_conv_groups_run_over_input_channels():
    w = torch.tensor([[1.0, -1.0, 1.0, 0.5, 0.0, 0.0, 0.0, 0.0]])
    assert n_m_mask(w, 2, 4).tolist() == [[True, True, False, False, True, True, False, False]]
    conv = torch.randn(3, 8, 2, 2, generator=torch.Generator().manual_seed(1))
    mask = n_m_mask(conv, 2, 4)
    for o in range(3):
        for i in range(2):
            for j in range(2):
                assert np.array_equal(mask[o, :, i, j].numpy()[None], loop_mask(conv[o, :, i, j].numpy()[None], 2, 4))


def test_equals_torch_ao_weight_norm_sparsifier_2_of_4():
    from torch.ao.pruning import WeightNormSparsifier
    model = nn.Sequential(nn.Linear(16, 8))
    torch.manual_seed(0)
    nn.init.normal_(model[0].weight)
    ours = n_m_mask(model[0].weight, 2, 4)
    sparsifier = WeightNormSparsifier(sparsity_level=1.0, sparse_block_shape=(1, 4), zeros_per_block=2)
    sparsifier.prepare(model, [{"tensor_fqn": "0.weight"}])
    sparsifier.step()
    peer = model[0].parametrizations.weight[0].mask.bool()
    assert torch.equal(ours, peer)


def test_model_masks_skip_layers_that_cannot_hold_the_pattern_and_previous_stays_pruned():
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.Flatten(), nn.Linear(8 * 4, 6), nn.Linear(6, 2))
    masks, skipped = n_m_masks(model, 2, 4)
    assert set(skipped) == {"0.weight", "3.weight"} and "not a multiple of 4" in skipped["0.weight"]
    assert bool(masks["0.weight"].all()) and masks.sparsity()["2.weight"] == 0.5
    three, _ = n_m_masks(model, 3, 4, names=["2.weight"])
    two, _ = n_m_masks(model, 2, 4, names=["2.weight"], previous=three)
    assert bool((two["2.weight"] <= three["2.weight"]).all())
    with pytest.raises(ValueError, match="cannot hold a 2:4"):
        n_m_masks(model, 2, 4, names=["0.weight"])
    with pytest.raises(ValueError, match="1 <= N < M"):
        n_m_mask(torch.ones(2, 4), 4, 4)


def test_gradual_path_steps_from_m_down_to_n():
    assert [n_at(s, 2, 4) for s in (0.0, 0.1, 0.25, 0.3, 0.5, 0.9)] == [4, 4, 3, 3, 2, 2]
