"""The max-norm constraint hook (Srivastava et al. 2014, section 5.1), checked against numpy."""
import numpy as np
import pytest
import torch

from kdviz.engine.hooks import TrainContext, build_hook
from kdviz.methods.max_norm import renorm_rows_
from kdviz.models import build_model


def test_rows_above_the_bound_are_scaled_onto_it_and_others_kept():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 5)) * np.array([[0.1], [3.0], [0.5], [10.0], [1.0], [0.01]])
    c = 2.0
    expected = w.copy()
    for i, row in enumerate(w):
        n = np.sqrt((row ** 2).sum())
        if n > c:
            expected[i] = row * (c / n)
    t = torch.tensor(w, dtype=torch.float64)
    renorm_rows_(t, c)
    np.testing.assert_allclose(t.numpy(), expected, rtol=1e-12)


def test_conv_kernels_are_constrained_per_output_channel():
    w = torch.randn(4, 3, 3, 3) * 5
    renorm_rows_(w, 1.5)
    norms = w.flatten(1).norm(dim=1)
    assert torch.all(norms <= 1.5 + 1e-5)


def test_the_hook_constrains_hidden_layers_but_not_the_classifier():
    model = build_model("mlp", input_shape=(1, 8, 8), num_classes=10, hidden=(32, 16))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(50)
    hook = build_hook({"name": "max_norm", "max_norm": 1.0})
    ctx = TrainContext(model=model, teacher=None, config=None, dataset=None, device=torch.device("cpu"))
    hook.setup(ctx)
    assert set(hook.weights) == {"fc1", "fc2"}
    assert model.fc1.weight.norm(dim=1).max() <= 1.0 + 1e-5 and model.fc2.weight.norm(dim=1).max() <= 1.0 + 1e-5
    assert model.fc3.weight.norm(dim=1).max() > 1.0
    assert hook.metrics(ctx)["largest_norm"] == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="max_norm"):
        build_hook({"name": "max_norm", "max_norm": -1})
    bad = build_hook({"name": "max_norm", "layers": ["fc9"]})
    with pytest.raises(ValueError, match="fc9"):
        bad.setup(ctx)
