"""Neural projections and ProjectionNet's joint loss (Ravi 2017, section 3.3 and eq. 1) against numpy.

The bits are recomputed by hand (x @ w > 0 per hyperplane), the loss from its equation with numpy's
log-softmax, at non-default T, d and lambdas, never through ``kdviz.distill.projection``'s own helpers.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kdviz.distill.projection import lsh_planes, projection_bits, projection_joint_loss, projection_signs
from kdviz.models import build_model
from kdviz.models.projection_net import ProjectionNet, model_bytes

import kdviz.models.projection_net  # noqa: F401  (registers "projection_net")


def np_log_softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def test_bits_are_the_signs_of_dot_products_with_the_seeded_hyperplanes():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 1, 4, 5)).astype(np.float32)
    planes = lsh_planes(20, num_hashes=3, bits_per_hash=5, seed=11)
    assert planes.shape == (15, 20)
    w = planes.numpy().astype(np.float64)
    by_hand = np.array([[1.0 if float(np.dot(w[k], xi.ravel())) > 0 else 0.0 for k in range(15)] for xi in x])
    bits = projection_bits(torch.from_numpy(x), planes).numpy()
    np.testing.assert_array_equal(bits, by_hand)
    np.testing.assert_array_equal(projection_signs(torch.from_numpy(x), planes).numpy(), 2 * by_hand - 1)
    assert 0.2 < bits.mean() < 0.8  # both values occur


def test_the_seed_alone_fixes_p_and_the_global_generator_is_untouched():
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    a, b, c = lsh_planes(64, 4, 8, seed=3), lsh_planes(64, 4, 8, seed=3), lsh_planes(64, 4, 8, seed=4)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_random_hyperplanes_are_locality_sensitive():
    """Charikar's property behind section 3.3: two inputs at angle phi disagree on a bit with probability phi/pi."""
    x = np.zeros((2, 30), dtype=np.float32)
    x[0, 0] = 1.0
    for phi in (0.3, 1.0, 2.2):
        x[1, 0], x[1, 1] = np.cos(phi), np.sin(phi)
        bits = projection_bits(torch.from_numpy(x), lsh_planes(30, 500, 20, seed=1)).numpy()
        assert float((bits[0] != bits[1]).mean()) == pytest.approx(phi / np.pi, abs=0.02)


def test_projection_net_reads_the_signs_and_its_size_counts_only_float_weights():
    net = build_model("projection_net", input_shape=(1, 8, 8), num_classes=10, num_hashes=3, bits_per_hash=7,
                      hidden=[5], projection_seed=9)
    assert isinstance(net, ProjectionNet) and net.num_bits == 21 and net.feature_names == ("bits", "fc1")
    x = torch.rand(4, 1, 8, 8)
    logits, features = net.forward_with_features(x)
    w = lsh_planes(64, 3, 7, seed=9).numpy()
    bits = (x.reshape(4, 64).numpy() @ w.T > 0).astype(np.float64)
    np.testing.assert_array_equal(features["bits"].numpy(), bits)
    h = np.maximum(0, (2 * bits - 1) @ net.fc1.weight.detach().numpy().T + net.fc1.bias.detach().numpy())
    expected = h @ net.fc2.weight.detach().numpy().T + net.fc2.bias.detach().numpy()
    np.testing.assert_allclose(logits.detach().numpy(), expected, rtol=1e-5, atol=1e-6)
    assert "planes" not in net.state_dict()  # P is regenerated from the seed, never stored
    assert model_bytes(net) == 4 * (21 * 5 + 5 + 5 * 10 + 10) + 8


def test_the_joint_loss_is_eq_1_on_random_inputs():
    rng = np.random.default_rng(1)
    trainer, projection = rng.normal(size=(7, 5)) * 3, rng.normal(size=(7, 5)) * 2
    labels = rng.integers(0, 5, size=7)
    l1, l2, l3 = 0.3, 1.7, 2.5
    log_t, log_p = np_log_softmax(trainer), np_log_softmax(projection)
    rows = np.arange(7)
    l_theta = -log_t[rows, labels].mean()
    l_p = -(np.exp(log_t) * log_p).sum(axis=1).mean()
    l_p_hat = -log_p[rows, labels].mean()
    parts = projection_joint_loss(torch.tensor(trainer), torch.tensor(projection), torch.tensor(labels), l1, l2, l3)
    assert float(parts.trainer) == pytest.approx(l1 * l_theta, rel=1e-10)
    assert float(parts.distill) == pytest.approx(l2 * l_p, rel=1e-10)
    assert float(parts.label) == pytest.approx(l3 * l_p_hat, rel=1e-10)
    assert float(parts.total) == pytest.approx(l1 * l_theta + l2 * l_p + l3 * l_p_hat, rel=1e-10)


def test_only_l_theta_moves_the_trainer_and_only_l_p_terms_move_the_projection_net():
    trainer = torch.randn(4, 3, requires_grad=True)
    projection = torch.randn(4, 3, requires_grad=True)
    labels = torch.tensor([0, 2, 1, 0])
    parts = projection_joint_loss(trainer, projection, labels, 0.0, 1.0, 1.0)
    parts.total.backward()
    assert trainer.grad is None or torch.count_nonzero(trainer.grad) == 0  # L_p's trainer side is a constant
    assert torch.count_nonzero(projection.grad) > 0


@pytest.mark.parametrize("bad, match", [(dict(lambda1=-1.0), "lambda1"), (dict(lambda3=float("nan")), "lambda3"),
                                        (dict(lambda2=True), "lambda2")])
def test_bad_weights_are_named(bad, match):
    z = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=match):
        projection_joint_loss(z, z, torch.tensor([0, 1]), **bad)


def test_bad_sizes_are_named():
    with pytest.raises(ValueError, match="d \\(bits per hash function\\)"):
        lsh_planes(10, 2, 0)
    with pytest.raises(ValueError, match="inputs have 12 values each but the hyperplanes have 10"):
        projection_bits(torch.zeros(2, 12), lsh_planes(10, 2, 3))
