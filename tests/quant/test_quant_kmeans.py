"""k-means weight sharing (Han et al. 2016, sec. 3), checked against numpy re-derivations."""
import numpy as np
import pytest
import torch

from kdviz.models import build_model
from kdviz.quant import INITS, kmeans_quantize, kmeans_quantize_model


def _weights(shape=(40, 60), sparsity=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=g) * 0.1
    if sparsity:
        w[torch.rand(shape, generator=g) < sparsity] = 0.0
    return w


@pytest.mark.parametrize("init", ["linear", "density", "random"])
@pytest.mark.parametrize("bits", [1, 2, 3, 5, 8])
def test_codebook_has_2_pow_bits_distinct_values(init, bits):
    w = _weights(sparsity=0.5)
    sw = kmeans_quantize(w, bits, init=init)
    kept_values = sw.weight()[w != 0]
    assert int((w != 0).sum()) >= 2**bits  # 1200 distinct kept weights: the codebook is full
    assert len(torch.unique(kept_values)) == sw.num_clusters == 2**bits
    assert sw.indices[sw.mask].max() < sw.num_clusters


def test_linear_init_is_evenly_spaced_like_numpy_linspace():
    w = _weights().ravel().double()
    values = torch.sort(w).values
    got = INITS.get("linear")(values, 16).numpy()
    np.testing.assert_allclose(got, np.linspace(w.min().item(), w.max().item(), 16), rtol=0, atol=1e-12)
    assert np.allclose(np.diff(got), np.diff(got)[0])


def test_density_init_is_the_quantiles_of_the_weights():
    w = _weights(sparsity=0.3)
    kept = w[w != 0].double().numpy()
    got = INITS.get("density")(torch.sort(torch.from_numpy(kept)).values, 32).numpy()
    np.testing.assert_allclose(got, np.quantile(kept, np.linspace(0, 1, 32)), rtol=0, atol=1e-12)


def test_random_init_draws_distinct_weights_and_is_seeded():
    values = torch.sort(_weights().ravel().double()).values
    a = INITS.get("random")(values, 8, torch.Generator().manual_seed(1))
    b = INITS.get("random")(values, 8, torch.Generator().manual_seed(1))
    c = INITS.get("random")(values, 8, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert set(a.tolist()) <= set(values.tolist()) and len(set(a.tolist())) == 8


def _numpy_lloyd(x, centroids, iters=10_000):
    """Plain Lloyd with argmin assignments (ties to the lower centroid); drops empty clusters."""
    c = np.unique(centroids)
    for _ in range(iters):
        a = np.argmin(np.abs(x[:, None] - c[None, :]), axis=1)
        used = np.unique(a)
        new = np.array([x[a == k].mean() for k in used])
        if len(new) == len(c) and np.allclose(new, c, rtol=0, atol=0):
            break
        c = new
    return c


@pytest.mark.parametrize("init", ["linear", "density"])
def test_lloyd_matches_a_numpy_argmin_loop(init):
    w = _weights((30, 50), sparsity=0.4, seed=3)
    sw = kmeans_quantize(w, 3, init=init, tol=0.0, max_iter=10_000)
    kept = w[w != 0].double().numpy()
    start = INITS.get(init)(torch.sort(torch.from_numpy(kept)).values, 8).numpy()
    np.testing.assert_allclose(sw.centroids.numpy(), _numpy_lloyd(kept, start), rtol=0, atol=1e-6)


def test_result_is_a_kmeans_fixed_point():
    w = _weights((50, 50), seed=5)
    sw = kmeans_quantize(w, 4, init="density", tol=0.0, max_iter=10_000)
    x = w.ravel().double().numpy()
    c = sw.centroids.double().numpy()
    idx = sw.indices.ravel().numpy()
    np.testing.assert_array_equal(idx, np.argmin(np.abs(x[:, None] - c[None, :]), axis=1))  # nearest centroid
    for k in range(len(c)):
        assert abs(x[idx == k].mean() - c[k]) < 1e-6  # centroid = cluster mean


def test_pruned_weights_are_excluded_and_stay_exactly_zero():
    w = _weights(sparsity=0.8)
    sw = kmeans_quantize(w, 2)
    assert torch.equal(sw.mask, w != 0)
    assert (sw.weight()[w == 0] == 0).all()
    # a zero would pull a centroid towards 0 if it were clustered: no centroid should sit on 0
    assert (sw.centroids != 0).all()
    # an explicit mask prunes non-zero weights too
    mask = torch.ones_like(w, dtype=torch.bool)
    mask[:5] = False
    sw2 = kmeans_quantize(w, 2, mask=mask)
    assert (sw2.weight()[:5] == 0).all()


def test_constant_tensor_gets_a_one_entry_codebook():
    sw = kmeans_quantize(torch.full((4, 5), 0.25), 4)
    assert sw.num_clusters == 1 and sw.centroids.item() == pytest.approx(0.25)
    assert torch.equal(sw.weight(), torch.full((4, 5), 0.25))
    sw0 = kmeans_quantize(torch.zeros(3, 3), 4)  # all pruned
    assert sw0.num_clusters == 1 and (sw0.weight() == 0).all() and not sw0.mask.any()


def test_fewer_distinct_values_than_clusters():
    w = torch.tensor([[-1.0, 2.0, 2.0], [3.0, -1.0, 3.0]])
    sw = kmeans_quantize(w, 4, init="linear")
    assert sw.num_clusters == 3 and torch.equal(sw.weight(), w)


@pytest.mark.parametrize("bits", [0, 17, -1])
def test_bits_outside_1_to_16_is_an_error(bits):
    with pytest.raises(ValueError, match="bits"):
        kmeans_quantize(_weights(), bits)


def test_bad_inputs_are_errors():
    with pytest.raises(ValueError, match="empty"):
        kmeans_quantize(torch.zeros(0, 3), 4)
    with pytest.raises(TypeError, match="bits"):
        kmeans_quantize(_weights(), 2.5)
    with pytest.raises(ValueError, match="initialisation"):
        kmeans_quantize(_weights(), 4, init="kmeans++")
    with pytest.raises(ValueError, match="NaN"):
        kmeans_quantize(torch.tensor([1.0, float("nan")]), 4)
    with pytest.raises(ValueError, match="mask shape"):
        kmeans_quantize(_weights(), 4, mask=torch.ones(3, dtype=torch.bool))


def test_model_quantization_covers_every_layer_and_leaves_the_model_alone():
    model = build_model("lenet300", input_shape=(1, 28, 28), num_classes=10)
    before = model.fc1.weight.detach().clone()
    shared = kmeans_quantize_model(model, {"fc1": 4, "fc2": 5, "fc3": 6})
    assert list(shared) == ["fc1", "fc2", "fc3"]
    assert [s.bits for s in shared.values()] == [4, 5, 6]
    assert torch.equal(model.fc1.weight, before)
    with pytest.raises(ValueError, match="unknown layers"):
        kmeans_quantize_model(model, 4, layers=["fc9"])
    conv = kmeans_quantize_model(build_model("lenet5", input_shape=(1, 8, 8)), 3)
    assert list(conv) == ["conv1", "conv2", "fc1", "fc2"] and conv["conv1"].shape == (20, 1, 5, 5)
