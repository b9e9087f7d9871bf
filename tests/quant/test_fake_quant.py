"""Fake quantization (Jacob et al. 2018 eq. 1-2, straight-through estimator) against torch's own
``torch.fake_quantize_per_tensor_affine`` / ``torch.fake_quantize_per_channel_affine``: value and
gradient with respect to the input on the same data, int8 / int4 / int2, symmetric and asymmetric."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kdviz.quant.fake_quant import (
    ActivationFakeQuantizer, WeightFakeQuantizer, check_quant_bits, fake_quantize, integer_range, range_params,
    tensor_range,
)

CASES = [(bits, symmetric) for bits in (8, 4, 2) for symmetric in (True, False)]


def _input(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g) * 0.7 + 0.1)


def _ours_and_torch(x, params, per_channel):
    a = x.clone().requires_grad_(True)
    b = x.clone().requires_grad_(True)
    ours = fake_quantize(a, params)
    if per_channel:
        ref = torch.fake_quantize_per_channel_affine(b, params.scale, params.zero_point, 0, params.qmin, params.qmax)
    else:
        ref = torch.fake_quantize_per_tensor_affine(b, float(params.scale), int(params.zero_point), params.qmin,
                                                    params.qmax)
    upstream = torch.linspace(-1.0, 2.0, x.numel()).reshape(x.shape)
    (ours * upstream).sum().backward()
    (ref * upstream).sum().backward()
    return ours.detach(), ref.detach(), a.grad, b.grad


@pytest.mark.parametrize("bits,symmetric", CASES)
def test_per_tensor_matches_torch_value_and_gradient(bits, symmetric):
    x = _input((64, 33), seed=bits + 10 * symmetric)
    # a range narrower than the data, so some values are clamped and get a zero gradient
    params = range_params(torch.tensor([-0.8]), torch.tensor([0.9]), bits, symmetric)
    ours, ref, g_ours, g_ref = _ours_and_torch(x, params, per_channel=False)
    assert (ours - ref).abs().max() < 1e-6
    assert (g_ours - g_ref).abs().max() < 1e-6
    s, z = float(params.scale), int(params.zero_point)
    clamped = (x < (params.qmin - z - 0.5) * s - 1e-5) | (x > (params.qmax - z + 0.5) * s + 1e-5)
    assert clamped.any() and (g_ours[clamped] == 0).all()


@pytest.mark.parametrize("bits,symmetric", CASES)
def test_per_channel_matches_torch_value_and_gradient(bits, symmetric):
    w = _input((6, 4, 3, 3), seed=100 + bits)
    w[2] *= 5.0  # channels of very different ranges
    params = range_params(*tensor_range(w, per_channel=True), bits, symmetric)
    assert params.scale.shape == (6,)
    ours, ref, g_ours, g_ref = _ours_and_torch(w, params, per_channel=True)
    assert (ours - ref).abs().max() < 1e-6
    assert (g_ours - g_ref).abs().max() < 1e-6
    # every channel's values lie on its own grid of 2^b levels
    for c in range(6):
        assert len(torch.unique(ours[c])) <= 2**bits
        assert torch.isin(ours[c].reshape(-1), params.grid(c)).all() or (
            (ours[c].reshape(-1, 1) - params.grid(c)).abs().min(dim=1).values.max() < 1e-6)


def test_ranges_follow_torch_minmax_observer():
    from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver

    x = _input((8, 20), seed=3)
    for symmetric, scheme, dtype, (qmin, qmax) in ((True, torch.per_tensor_symmetric, torch.qint8, (-128, 127)),
                                                  (False, torch.per_tensor_affine, torch.quint8, (0, 255))):
        obs = MinMaxObserver(dtype=dtype, qscheme=scheme, quant_min=qmin, quant_max=qmax)
        obs(x)
        scale, zp = obs.calculate_qparams()
        ours = range_params(*tensor_range(x, False), 8, symmetric)
        assert abs(float(ours.scale) - float(scale)) < 1e-7 and int(ours.zero_point) == int(zp)
    obs = PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8, qscheme=torch.per_channel_symmetric,
                                   quant_min=-8, quant_max=7)
    obs(x)
    scale, _ = obs.calculate_qparams()
    ours = range_params(*tensor_range(x, True), 4, True)
    assert torch.allclose(ours.scale, scale.float(), atol=1e-7)


def test_integer_ranges_and_bad_bits():
    assert integer_range(8, True) == (-128, 127)
    assert integer_range(4, False) == (0, 15)
    assert integer_range(2, True) == (-2, 1)
    for bad in (1, 9, 4.0, True, "4"):
        with pytest.raises(ValueError, match="bits must be a whole number from 2 to 8"):
            check_quant_bits(bad)


def test_asymmetric_grid_holds_zero_exactly():
    x = torch.tensor([0.0, 0.13, 0.5, 1.7, -0.2])
    params = range_params(*tensor_range(x, False), 3, symmetric=False)
    assert float(fake_quantize(x, params)[0]) == 0.0
    assert len(params.grid()) == 8


def test_weight_quantizer_error_shrinks_with_bits():
    w = _input((50, 40), seed=7)
    errors = [float((WeightFakeQuantizer(b, per_channel=True)(w) - w).abs().mean()) for b in (2, 4, 8)]
    assert errors[0] > errors[1] > errors[2]
    # 8 bits, per tensor symmetric: error at most half a step
    q = WeightFakeQuantizer(8)
    step = float(q.params(w).scale)
    assert float((q(w) - w).abs().max()) <= step / 2 + 1e-6


def test_activation_quantizer_tracks_a_moving_average_and_freezes_in_eval():
    q = ActivationFakeQuantizer(4, momentum=0.5)
    x = torch.rand(10, 5)
    assert torch.equal(q.eval()(x), x)  # not yet observed: unchanged
    q.train()
    q(torch.full((3,), 2.0))
    assert float(q.hi) == 2.0
    q(torch.full((3,), 4.0))
    assert float(q.hi) == pytest.approx(3.0)  # 0.5 * 2 + 0.5 * 4
    q.eval()
    out = q(torch.full((3,), 10.0))
    assert float(q.hi) == pytest.approx(3.0) and float(out.max()) == pytest.approx(3.0)
    assert len(np.unique(q(torch.linspace(0, 3, 200)).numpy())) == 16


def test_scale_count_must_fit_the_tensor():
    params = range_params(torch.zeros(3) - 1, torch.ones(3), 8, True)
    with pytest.raises(ValueError, match="3 scales do not fit"):
        fake_quantize(torch.zeros(4, 2), params)
