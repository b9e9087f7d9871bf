"""Uniform affine quantization (Jacob et al. 2018), checked against a numpy re-derivation."""
import numpy as np
import pytest
import torch

from kdviz.quant import dequantize, fake_quantize, quant_params, quantize, quantize_dequantize


def _numpy_qdq(x, bits, symmetric):
    """Jacob et al. 2018 eq. 1 in numpy, per tensor: the reference."""
    lo, hi = min(x.min(), 0.0), max(x.max(), 0.0)
    if symmetric:
        qmax = 2 ** (bits - 1) - 1
        s = max(-lo, hi) / qmax
        q = np.clip(np.round(x / s), -qmax, qmax)
        return q * s
    qmax = 2**bits - 1
    s = (hi - lo) / qmax
    z = np.clip(np.round(-lo / s), 0, qmax)
    return (np.clip(np.round(x / s) + z, 0, qmax) - z) * s


def _x(shape=(16, 40), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g) * torch.linspace(0.1, 2.0, shape[0]).unsqueeze(1) + 0.3


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_per_tensor_matches_numpy(bits, symmetric):
    x = _x()
    got = quantize_dequantize(x, bits, symmetric=symmetric).double().numpy()
    np.testing.assert_allclose(got, _numpy_qdq(x.double().numpy(), bits, symmetric), rtol=0, atol=1e-5)


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("bits", [2, 3, 8])
def test_error_is_at_most_half_a_step_and_levels_are_few(bits, symmetric, per_channel):
    x = _x()
    p = quant_params(x, bits, symmetric=symmetric, per_channel=per_channel)
    err = (dequantize(quantize(x, p), p) - x).abs()
    assert (err <= p.scale / 2 + 1e-6).all()
    q = quantize(x, p)
    assert q.min() >= p.qmin and q.max() <= p.qmax and p.levels <= 2**bits


@pytest.mark.parametrize("symmetric", [True, False])
def test_representable_values_are_exact_and_zero_stays_zero(symmetric):
    x = _x()
    x[0, :5] = 0.0
    p = quant_params(x, 5, symmetric=symmetric)
    grid = dequantize(torch.arange(p.qmin, p.qmax + 1), p)
    torch.testing.assert_close(dequantize(quantize(grid, p), p), grid, rtol=0, atol=0)
    assert (quantize_dequantize(x, 5, symmetric=symmetric)[0, :5] == 0).all()


def test_per_channel_is_per_tensor_on_each_row_alone():
    x = _x()
    per_channel = quantize_dequantize(x, 4, symmetric=False, per_channel=True)
    for i in range(x.shape[0]):
        torch.testing.assert_close(per_channel[i], quantize_dequantize(x[i], 4, symmetric=False), rtol=0, atol=1e-6)
    per_tensor = quantize_dequantize(x, 4, symmetric=False)
    assert (per_channel - x).pow(2).sum() < (per_tensor - x).pow(2).sum()  # rows of very different ranges


def test_per_channel_conv_weight_scales_each_filter():
    w = torch.randn(6, 3, 3, 3)
    p = quant_params(w, 8, symmetric=True, per_channel=True)
    assert p.scale.shape == (6, 1, 1, 1)
    np.testing.assert_allclose(p.scale.ravel().numpy(), w.abs().amax(dim=(1, 2, 3)).numpy() / 127, rtol=1e-6)


def test_fake_quantize_forward_value_and_straight_through_gradient():
    x = _x().requires_grad_(True)
    y = fake_quantize(x, 3, symmetric=False, per_channel=True)
    torch.testing.assert_close(y.detach(), quantize_dequantize(x.detach(), 3, symmetric=False, per_channel=True),
                               rtol=0, atol=0)
    g = torch.randn_like(x)
    y.backward(g)
    # straight through inside the representable range, zero where the value was clamped
    p = quant_params(x, 3, symmetric=False, per_channel=True)
    xn, s, z = x.detach().numpy(), p.scale.numpy(), p.zero_point.numpy()
    inside = (np.round(xn / s) + z >= 0) & (np.round(xn / s) + z <= 7)
    np.testing.assert_array_equal(x.grad.numpy(), np.where(inside, g.numpy(), 0.0))
    x2 = _x().requires_grad_(True)
    fake_quantize(x2, 4, symmetric=True).backward(g)
    torch.testing.assert_close(x2.grad, g)  # symmetric: the range covers max |x|, nothing clamped


def test_all_zero_tensor_and_bad_inputs():
    assert (quantize_dequantize(torch.zeros(3, 3), 4) == 0).all()
    with pytest.raises(ValueError, match="bits"):
        quant_params(_x(), 0)
    with pytest.raises(ValueError, match="bits"):
        quant_params(_x(), 17)
    with pytest.raises(ValueError, match="at least 2 bits"):
        quant_params(_x(), 1, symmetric=True)
    assert len(torch.unique(quantize_dequantize(_x(), 1, symmetric=False))) <= 2
    with pytest.raises(ValueError, match="empty"):
        quant_params(torch.zeros(0), 4)
    with pytest.raises(ValueError, match="output-channel"):
        quant_params(torch.ones(5), 4, per_channel=True)
