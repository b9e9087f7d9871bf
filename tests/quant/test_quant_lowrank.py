"""Truncated SVD low rank (Denton et al. 2014), checked against numpy's SVD."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdviz.models import build_model
from kdviz.quant import energy_kept, low_rank_layer, low_rank_model, singular_values, truncated_svd
from kdviz.quant.lowrank import low_rank_parameters


def _numpy_rank_r(w, r):
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    return (u[:, :r] * s[:r]) @ vt[:r], s


@pytest.mark.parametrize("r", [1, 5, 17, 30])
def test_frobenius_error_equals_the_discarded_singular_values(r):
    w = torch.randn(30, 45, dtype=torch.float64)
    a, b = truncated_svd(w, r)
    s = np.linalg.svd(w.numpy(), compute_uv=False)
    err = np.linalg.norm(w.numpy() - (a.double() @ b.double()).numpy())
    assert err == pytest.approx(np.sqrt((s[r:] ** 2).sum()), abs=1e-4)
    np.testing.assert_allclose(singular_values(w).numpy(), s, rtol=1e-10)
    assert energy_kept(singular_values(w), r) == pytest.approx((s[:r] ** 2).sum() / (s**2).sum())


def test_linear_pair_gives_the_rank_r_outputs():
    torch.manual_seed(0)
    layer = nn.Linear(20, 12)
    pair = low_rank_layer(layer, 4)
    assert [m.weight.shape for m in pair] == [(4, 20), (12, 4)] and pair[0].bias is None
    w_r, _ = _numpy_rank_r(layer.weight.detach().double().numpy(), 4)
    x = torch.randn(7, 20)
    expected = x.double().numpy() @ w_r.T + layer.bias.detach().double().numpy()
    np.testing.assert_allclose(pair(x).detach().double().numpy(), expected, atol=1e-5)
    assert sum(m.weight.numel() for m in pair) == low_rank_parameters((12, 20), 4) == 4 * 32


def test_conv_pair_gives_the_rank_r_conv():
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
    pair = low_rank_layer(conv, 5)
    assert pair[0].weight.shape == (5, 3, 3, 3) and pair[1].weight.shape == (8, 5, 1, 1)
    w_r, _ = _numpy_rank_r(conv.weight.detach().double().reshape(8, -1).numpy(), 5)
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    expected = F.conv2d(x, torch.from_numpy(w_r).reshape(8, 3, 3, 3), conv.bias.detach().double(), stride=2, padding=1)
    torch.testing.assert_close(pair.double()(x), expected, atol=1e-5, rtol=1e-5)


def test_full_rank_model_matches_the_original():
    torch.manual_seed(2)
    model = build_model("lenet300", input_shape=(1, 8, 8), num_classes=10).eval()
    smaller = low_rank_model(model, {"fc1": 64, "fc2": 100})  # full rank: exact up to float error
    x = torch.rand(5, 1, 8, 8)
    torch.testing.assert_close(smaller(x), model(x), atol=1e-4, rtol=1e-4)
    assert isinstance(model.fc1, nn.Linear) and isinstance(smaller.fc1, nn.Sequential)
    reduced = low_rank_model(model, {"fc1": 8})
    assert sum(p.numel() for p in reduced.fc1.parameters()) == 8 * (64 + 300) + 300


def test_rank_errors():
    w = torch.randn(6, 9)
    with pytest.raises(ValueError, match="rank must be in 1..6"):
        truncated_svd(w, 7)
    with pytest.raises(ValueError, match="rank"):
        truncated_svd(w, 0)
    with pytest.raises(ValueError, match="empty"):
        singular_values(torch.zeros(0, 3))
    with pytest.raises(ValueError, match="no layer"):
        low_rank_model(nn.Sequential(nn.Linear(3, 3)), {"fc9": 1})
    with pytest.raises(ValueError, match="grouped"):
        low_rank_layer(nn.Conv2d(4, 4, 3, groups=2), 1)
