"""BinaryConnect (Courbariaux et al. 2015) and XNOR/BWN scaling (Rastegari et al. 2016)."""
import numpy as np
import pytest
import torch

from kdviz.quant import binaryconnect, sign_ste, xnor_alpha, xnor_binarize


def test_xnor_alpha_is_mean_abs_per_output_filter():
    w = torch.randn(8, 3, 5, 5)
    expected = np.abs(w.numpy()).reshape(8, -1).mean(axis=1)
    np.testing.assert_allclose(xnor_alpha(w).ravel().numpy(), expected, rtol=1e-6)
    assert xnor_alpha(w).shape == (8, 1, 1, 1)
    lin = torch.randn(4, 7)
    np.testing.assert_allclose(xnor_alpha(lin).ravel().numpy(), np.abs(lin.numpy()).mean(axis=1), rtol=1e-6)


def test_xnor_alpha_minimises_the_approximation_error():
    """Rastegari eq. 2-4: J(a) = ||W - a sign(W)||^2 is least at a = mean |W| (per filter)."""
    w = torch.randn(5, 30).double()
    b = torch.where(w >= 0, 1.0, -1.0).double()
    alpha = xnor_alpha(w)
    err = lambda a: ((w - a * b) ** 2).sum(dim=1)  # noqa: E731
    for delta in (-1e-3, 1e-3, 0.1):
        assert (err(alpha) < err(alpha + delta)).all()
    torch.testing.assert_close(xnor_binarize(w), alpha * b)


def test_binaryconnect_forward_is_sign_with_zero_to_plus_one():
    w = torch.tensor([-2.0, -0.0, 0.0, 0.3, -1e-8])
    assert binaryconnect(w).tolist() == [-1.0, 1.0, 1.0, 1.0, -1.0]


def test_binaryconnect_gradient_is_straight_through():
    w = torch.randn(6, 4, requires_grad=True)
    c = torch.randn(6, 4)
    (c * binaryconnect(w)).sum().backward()
    torch.testing.assert_close(w.grad, c)  # dL/dw = dL/dw_b (Courbariaux 2015, algorithm 1)


def test_xnor_gradient_matches_the_chain_rule_with_ste():
    """d/dW_i sum_j g_j alpha sign(W_j) = g_i alpha + sign(W_i)/n sum_j g_j sign(W_j) (per filter)."""
    w = torch.randn(3, 10, dtype=torch.float64, requires_grad=True)
    g = torch.randn(3, 10, dtype=torch.float64)
    (g * xnor_binarize(w)).sum().backward()
    wn, gn = w.detach().numpy(), g.numpy()
    s = np.where(wn >= 0, 1.0, -1.0)
    alpha = np.abs(wn).mean(axis=1, keepdims=True)
    expected = gn * alpha + s / wn.shape[1] * (gn * s).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(w.grad.numpy(), expected, rtol=1e-10)


def test_bad_inputs():
    with pytest.raises(ValueError, match="empty"):
        sign_ste(torch.zeros(0))
    with pytest.raises(TypeError):
        xnor_alpha([1.0, 2.0])
