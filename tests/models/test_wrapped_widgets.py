"""The Jupyter widgets take a wrapped user model directly (issue 19): their accuracies are the wrapped
model's own, recomputed here with the weights pruned or clustered by hand."""
import copy

import pytest
import torch
from torch import nn

from kdviz.models.wrapped import wrap
from kdviz.prune import magnitude_masks
from kdviz.quant.kmeans import kmeans_quantize_model
from kdviz.widgets import PruningExplorer, QuantizationExplorer


@pytest.fixture(scope="module")
def trained(digits):
    """A user's Sequential (not in the zoo), wrapped and trained a little on digits."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(6 * 16, 32), nn.ReLU(), nn.Linear(32, 10))
    model = wrap(net, input_shape=(1, 8, 8))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for step in range(60):
        idx = torch.arange(step * 20, step * 20 + 20) % len(digits.train_labels)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(digits.train_images[idx]), digits.train_labels[idx]).backward()
        optimizer.step()
    return model.eval()


def accuracy(model, digits) -> float:
    with torch.no_grad():
        return float((model(digits.test_images).argmax(1) == digits.test_labels).double().mean())


def test_the_pruning_explorer_prunes_the_wrapped_models_layers(trained, digits, one_thread):
    ex = PruningExplorer(trained, digits, sparsity=0.5)
    assert ex.layers == ["0", "4", "6"] and ex.dense_accuracy == pytest.approx(accuracy(trained, digits))
    assert ex.dense_accuracy > 0.5
    ex.set_sparsity(0.8)
    ex.flush()
    pruned = copy.deepcopy(trained)
    magnitude_masks(pruned, 0.8, scope="layer").apply(pruned)
    assert ex.accuracy == pytest.approx(accuracy(pruned, digits))
    assert ex.accuracy < ex.dense_accuracy


def test_the_quantization_explorer_clusters_the_wrapped_models_weights(trained, digits, one_thread):
    ex = QuantizationExplorer(trained, digits, method="kmeans", bits=2)
    ex.flush()
    clustered = copy.deepcopy(trained)
    shared = kmeans_quantize_model(clustered, bits=2)
    with torch.no_grad():
        for name, weights in shared.items():
            clustered.get_submodule(name).weight.copy_(weights.weight())
    assert abs(ex.accuracy - accuracy(clustered, digits)) <= 1 / len(digits.test_labels) + 1e-9
