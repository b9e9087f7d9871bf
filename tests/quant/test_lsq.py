"""LSQ (Esser et al., ICLR 2020): the step-size gradient against eq. 3 computed by hand in numpy, the
gradient scale g = 1/sqrt(N Q_P) (sec. 2.2) applied, the initial step 2<|v|>/sqrt(Q_P) (sec. 2.1),
and value and gradients against torch.ao's learnable fake quantizer (``_LearnableFakeQuantize``'s kernel)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kdviz.quant.fake_quant import WeightFakeQuantizer
from kdviz.quant.lsq import (
    MIN_STEP, LSQQuantizer, gradient_scale_factor, initial_step, initial_steps, lsq_quantize, lsq_range, step_gradient_eq3,
)


def _eq3_numpy(v: np.ndarray, s: float, q_n: int, q_p: int) -> np.ndarray:
    """Eq. 3 by hand, one element at a time."""
    out = np.empty_like(v, dtype=np.float64)
    for i, x in enumerate(v.ravel()):
        r = float(np.float32(x) / np.float32(s))
        if r <= -q_n:
            out.flat[i] = -q_n
        elif r >= q_p:
            out.flat[i] = q_p
        else:
            out.flat[i] = -r + float(np.round(r))
    return out


@pytest.mark.parametrize("bits,signed", [(2, True), (3, True), (4, False), (8, True)])
def test_step_gradient_is_eq3_times_g(bits, signed):
    rng = np.random.default_rng(bits)
    v = rng.normal(0.3, 1.0, size=(40, 7)).astype(np.float32)
    if not signed:
        v = np.abs(v)
    q_n, q_p = lsq_range(bits, signed)
    s = 0.37
    g = gradient_scale_factor(v.size, q_p)
    step = torch.tensor(s, requires_grad=True)
    v_t = torch.tensor(v, requires_grad=True)
    upstream = rng.normal(size=v.shape).astype(np.float32)
    (lsq_quantize(v_t, step, q_n, q_p, g) * torch.tensor(upstream)).sum().backward()
    expected = g * float((_eq3_numpy(v, s, q_n, q_p) * upstream).sum())
    assert abs(float(step.grad) - expected) < 1e-5 * max(1.0, abs(expected))
    # g is applied: the unscaled gradient is 1/g times larger
    step2 = torch.tensor(s, requires_grad=True)
    (lsq_quantize(torch.tensor(v), step2, q_n, q_p, 1.0) * torch.tensor(upstream)).sum().backward()
    assert float(step2.grad) == pytest.approx(float(step.grad) / g, rel=1e-5)
    assert g == pytest.approx(1.0 / math.sqrt(280 * q_p))
    # v's gradient: straight through inside the range, 0 where clipped
    r = v / s
    inside = (r > -q_n) & (r < q_p)
    assert np.allclose(v_t.grad.numpy(), upstream * inside, atol=1e-7)
    # the module's own eq. 3 helper agrees with the hand version
    assert np.allclose(step_gradient_eq3(torch.tensor(v), s, q_n, q_p).numpy(), _eq3_numpy(v, s, q_n, q_p), atol=1e-6)


def test_values_lie_on_the_grid():
    v = torch.linspace(-3, 3, 101)
    out = lsq_quantize(v, torch.tensor(0.5), 2, 1, 1.0)  # 2 bits signed: {-1, -0.5, 0, 0.5}
    assert set(np.round(out.numpy(), 6).tolist()) == {-1.0, -0.5, 0.0, 0.5}


@pytest.mark.parametrize("bits,signed", [(2, True), (3, True), (4, False), (8, False)])
def test_matches_torch_learnable_fake_quantize(bits, signed):
    """torch.ao's ``_LearnableFakeQuantize`` (per tensor, zero point 0, grad_factor = g) is LSQ."""
    q_n, q_p = lsq_range(bits, signed)
    g0 = torch.Generator().manual_seed(bits)
    v = torch.randn(64, 50, generator=g0) * 0.8 + (0.0 if signed else 1.0)
    v = v if signed else v.clamp(min=0)
    s = initial_step(v, q_p)
    # torch's kernel clips on round(v/s), LSQ's eq. 3 on v/s itself: they differ only where v/s lies within
    # half a step beyond the range (-Q_N - 1/2, -Q_N) or (Q_P, Q_P + 1/2); move those values out of the band
    r = v / s
    band = ((r > -q_n - 0.5) & (r < -q_n)) | ((r > q_p) & (r < q_p + 0.5))
    assert band.any() or bits >= 4  # at 4 and 8 bits few values reach the range's end
    v = torch.where(band, torch.sign(r) * (torch.abs(r) + 0.6) * s, v)
    g = gradient_scale_factor(v.numel(), q_p)
    upstream = torch.randn(v.shape, generator=g0)
    a, sa = v.clone().requires_grad_(True), torch.tensor(s, requires_grad=True)
    ours = lsq_quantize(a, sa, q_n, q_p, g)
    (ours * upstream).sum().backward()
    b, sb = v.clone().requires_grad_(True), torch.tensor([s], requires_grad=True)
    zp = torch.tensor([0.0], requires_grad=True)
    ref = torch._fake_quantize_learnable_per_tensor_affine(b, sb, zp, -q_n, q_p, g)
    (ref * upstream).sum().backward()
    assert (ours - ref).abs().max() < 1e-6
    assert (a.grad - b.grad).abs().max() < 1e-6
    assert abs(float(sa.grad) - float(sb.grad)) < 1e-6 * max(1.0, abs(float(sb.grad)))
    # torch.ao's module uses g = 1/sqrt(N Q_P) too (use_grad_scaling): the same N and Q_P give ours
    assert g == pytest.approx(1.0 / (v.numel() * q_p) ** 0.5)


def test_quantizer_module_matches_torch_ao_learnable_fake_quantize_module():
    """``LSQQuantizer`` (step from sec. 2.1, g = 1/sqrt(N Q_P)) against torch.ao's ``_LearnableFakeQuantize``
    module with ``use_grad_scaling=True`` and the same step: value, input gradient and step gradient."""
    from torch.ao.quantization._learnable_fake_quantize import _LearnableFakeQuantize
    from torch.ao.quantization.observer import MovingAverageMinMaxObserver

    g0 = torch.Generator().manual_seed(5)
    w = torch.randn(30, 20, generator=g0) * 0.3
    ours = LSQQuantizer(3, signed=True)
    ours.initialise(w)
    s = float(ours.step.detach())
    peer = _LearnableFakeQuantize(MovingAverageMinMaxObserver, quant_min=-4, quant_max=3, scale=s, zero_point=0.0,
                                  use_grad_scaling=True, dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
    peer.enable_param_learning()
    peer.zero_point.requires_grad_(False)
    r = w / s  # keep away from the half-step band where the two clip differently (see the next test)
    band = ((r > -4.5) & (r < -4)) | ((r > 3) & (r < 3.5))
    w = torch.where(band, torch.sign(r) * (torch.abs(r) + 0.6) * s, w)
    upstream = torch.randn(w.shape, generator=g0)
    a, b = w.clone().requires_grad_(True), w.clone().requires_grad_(True)
    out_ours, out_peer = ours(a), peer(b)
    (out_ours * upstream).sum().backward()
    (out_peer * upstream).sum().backward()
    assert (out_ours - out_peer).abs().max() < 1e-6
    assert (a.grad - b.grad).abs().max() < 1e-6
    assert abs(float(ours.step.grad) - float(peer.scale.grad)) < 1e-6


def test_the_half_step_band_where_torch_ao_differs_from_eq3():
    """Just beyond Q_P (v/s in (Q_P, Q_P + 1/2)) LSQ clips (v's gradient 0, the step's Q_P), torch.ao's
    kernel rounds first and passes v's gradient (the step's round(v/s) - v/s). We follow the paper."""
    q_n, q_p = lsq_range(2, True)
    v = torch.tensor([1.2], requires_grad=True)
    step = torch.tensor(1.0, requires_grad=True)
    lsq_quantize(v, step, q_n, q_p, 1.0).sum().backward()
    assert float(v.grad) == 0.0 and float(step.grad) == pytest.approx(q_p)
    b, sb = torch.tensor([1.2], requires_grad=True), torch.tensor([1.0], requires_grad=True)
    torch._fake_quantize_learnable_per_tensor_affine(b, sb, torch.tensor([0.0]), -q_n, q_p, 1.0).sum().backward()
    assert float(b.grad) == 1.0 and float(sb.grad) == pytest.approx(1.0 - 1.2)


def test_initial_step_and_quantizer_module():
    v = torch.tensor([[1.0, -3.0], [2.0, 0.0]])
    assert initial_step(v, 1) == pytest.approx(2 * 1.5 / 1.0)
    assert initial_step(v, 7) == pytest.approx(3.0 / math.sqrt(7))
    q = LSQQuantizer(3, signed=True)
    assert torch.equal(q(v), v)  # not initialised: unchanged
    q.initialise(v)
    assert float(q.step.detach()) == pytest.approx(3.0 / math.sqrt(3)) and int(q.count) == 4
    assert q.gradient_scale == pytest.approx(1 / math.sqrt(4 * 3))
    acts = LSQQuantizer(4, signed=False, per_example=True)
    acts.initialise(torch.rand(32, 3, 5, 5))
    assert int(acts.count) == 75 and (acts.q_n, acts.q_p) == (0, 15)
    out = acts(torch.rand(8, 3, 5, 5))
    assert float(out.detach().min()) >= 0.0 and len(torch.unique(out.detach())) <= 16
    assert len(q.grid()) == 8 and float(q.grid()[0]) == pytest.approx(-4 * float(q.step))


def test_step_learns_to_reduce_quantization_error(one_thread):
    """Minimising ||v_hat - v||^2 over s with its eq. 3 gradient lowers the error from the initial step."""
    v = torch.randn(500, generator=torch.Generator().manual_seed(1))
    q = LSQQuantizer(2, signed=True)
    q.initialise(v)
    opt = torch.optim.SGD(q.parameters(), lr=0.05)
    first = None
    for _ in range(60):
        opt.zero_grad()
        loss = ((q(v) - v) ** 2).sum()
        first = float(loss) if first is None else first
        loss.backward()
        opt.step()
    assert float(((q(v) - v) ** 2).sum()) < 0.9 * first


def test_bad_bits_are_named():
    with pytest.raises(ValueError, match="bits must be a whole number from 2 to 8"):
        LSQQuantizer(1)
    with pytest.raises(ValueError, match="N >= 1"):
        gradient_scale_factor(0, 3)


def test_per_channel_steps_follow_eq3_channel_by_channel():
    """``channels``: one step per output channel, initialised from that channel, N = its element count."""
    rng = np.random.default_rng(9)
    w = rng.normal(size=(3, 4, 5)).astype(np.float32) * np.array([0.1, 1.0, 3.0], dtype=np.float32)[:, None, None]
    q = LSQQuantizer(2, signed=True, channels=3)
    q.initialise(torch.tensor(w))
    q_n, q_p = lsq_range(2, True)
    steps = q.step.detach().numpy()
    np.testing.assert_allclose(steps, [2 * np.abs(w[c]).mean() / np.sqrt(q_p) for c in range(3)], rtol=1e-6)
    assert int(q.count) == 20 and q.gradient_scale == pytest.approx(1 / np.sqrt(20 * q_p))
    upstream = rng.normal(size=w.shape).astype(np.float32)
    (q(torch.tensor(w)) * torch.tensor(upstream)).sum().backward()
    for c in range(3):
        expected = q.gradient_scale * float((_eq3_numpy(w[c], float(steps[c]), q_n, q_p) * upstream[c]).sum())
        assert float(q.step.grad[c]) == pytest.approx(expected, rel=1e-4, abs=1e-6)
    with pytest.raises(ValueError, match="3 steps do not fit a tensor of 2 channels"):
        q.initialise(torch.zeros(2, 4))


# --- the initial step (``init``): the paper's, min-max PTQ's, or the MSE-optimal one (LSQ+) ---------

@pytest.mark.parametrize("bits", [2, 3, 4])
def test_minmax_init_is_exactly_ptq_scale(bits):
    """``init="minmax"`` starts LSQ at min-max PTQ's scale S (``fake_quant.range_params``, torch.ao's
    ``MinMaxObserver``): per tensor and per channel for signed weights, per tensor for unsigned inputs."""
    from kdviz.quant.fake_quant import range_params, tensor_range

    g0 = torch.Generator().manual_seed(bits)
    w = torch.randn(6, 4, 3, 3, generator=g0) * torch.tensor([0.1, 0.5, 1, 2, 3, 4])[:, None, None, None]
    for channels in (0, 6):
        q = LSQQuantizer(bits, signed=True, channels=channels, init="minmax")
        q.initialise(w)
        expected = range_params(*tensor_range(w, per_channel=bool(channels)), bits, symmetric=True).scale
        torch.testing.assert_close(q.step.detach().reshape(-1), expected, rtol=1e-6, atol=0)
        paper = LSQQuantizer(bits, signed=True, channels=channels)
        paper.initialise(w)
        assert not torch.allclose(paper.step.detach(), q.step.detach())  # the option changes the start
        # and LSQ's forward then equals PTQ's fake quantization (the same grid), except on exact ties:
        # the largest |w| of a slice lies at (Q_N + Q_P) / 2 steps, a half, where v / s and v * (1 / S)
        # may round apart by one ulp
        ptq = WeightFakeQuantizer(bits, symmetric=True, per_channel=bool(channels))
        apart = (q(w).detach() - ptq(w)).abs() > 1e-6
        r = w / q.step.detach().reshape((-1, 1, 1, 1) if channels else ())
        assert not (apart & ((r.abs() - r.abs().floor() - 0.5).abs() > 1e-4)).any()
        assert int(apart.sum()) <= max(1, channels)
    x = torch.rand(16, 5, generator=g0) * 3
    acts = LSQQuantizer(bits, signed=False, per_example=True, init="minmax")
    acts.initialise(x)
    expected = range_params(*tensor_range(x, per_channel=False), bits, symmetric=False).scale
    assert float(acts.step.detach()) == pytest.approx(float(expected), rel=1e-6)


def _mse_by_hand(v: np.ndarray, q_n: int, q_p: int, grid: int = 100) -> float:
    top = np.abs(v).max() / ((q_n + q_p) / 2)
    errors = [(k / grid * top, float(np.mean((np.clip(np.round(v / (k / grid * top)), -q_n, q_p) * (k / grid * top) - v) ** 2)))
              for k in range(1, grid + 1)]
    return min(errors, key=lambda e: e[1])[0]


@pytest.mark.parametrize("bits", [2, 3])
def test_mse_init_is_the_least_error_step_on_lsqs_grid(bits):
    """``init="mse"``: the step of least mean (v - v_hat)^2 among f * s_minmax, checked against a numpy
    search; its error is below both the paper's and min-max's start on heavy-tailed weights."""
    rng = np.random.default_rng(bits)
    v = rng.laplace(0, 0.05, size=(2, 3000)).astype(np.float32)
    q_n, q_p = lsq_range(bits, True)
    q = LSQQuantizer(bits, signed=True, channels=2, init="mse")
    q.initialise(torch.tensor(v))
    steps = q.step.detach().numpy()
    for c in range(2):
        assert steps[c] == pytest.approx(_mse_by_hand(v[c], q_n, q_p), rel=1e-5)

    def error(init):
        other = LSQQuantizer(bits, signed=True, channels=2, init=init)
        other.initialise(torch.tensor(v))
        return float(((other(torch.tensor(v)) - torch.tensor(v)) ** 2).mean())

    assert error("mse") < error("paper") and error("mse") < 0.8 * error("minmax")


def test_unknown_init_is_named():
    with pytest.raises(ValueError, match="unknown LSQ step initialisation 'best'.*paper, minmax, mse"):
        LSQQuantizer(3, init="best")
    with pytest.raises(ValueError, match="initial_steps|unknown LSQ step initialisation"):
        initial_steps(torch.ones(1, 4), 4, 3, "max")
    assert torch.equal(initial_steps(torch.zeros(2, 4), 4, 3, "mse"), torch.full((2,), MIN_STEP))
