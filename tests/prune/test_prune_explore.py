"""The sparsity slider's caches (issue 14): every position shows the numbers of a full, independent
evaluation, revisited positions are served from the cache, and the fast histogram equals np.histogram."""
import copy
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from kdviz.data import load_dataset
from kdviz.models import build_model
from kdviz.prune import MaskedEvaluator, magnitude_masks, prunable_weights
from kdviz.prune.evaluate import accuracy
from kdviz.prune.explore import slider_arrays

# a drag: on, back a little, on again, and back over positions already seen
MOVES = [0.8, 0.81, 0.82, 0.81, 0.8, 0.5, 0.93, 0.97, 0.5, 0.99, 0.0, 0.82]


def trained(data, hidden=(64, 32), steps=400, seed=0):
    torch.manual_seed(seed)
    model = build_model("mlp", input_shape=data.input_shape, num_classes=10, hidden=hidden)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = data.train_images, data.train_labels
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(y), (128,), generator=g)
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def independent_accuracy(model, sparsity, scope, images, labels):
    """Prune a copy of the dense model from scratch (sorting |w|, no cache) and test it in small batches."""
    pruned = copy.deepcopy(model)
    magnitude_masks(pruned, sparsity, scope=scope).apply(pruned)
    return accuracy(pruned, images, labels, batch_size=97)


@pytest.fixture(scope="module")
def digits_model():
    data = load_dataset("digits")
    return data, trained(data)


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_every_slider_position_equals_an_independent_evaluation(digits_model, scope):
    data, model = digits_model
    dense = copy.deepcopy(model)
    ev = MaskedEvaluator(copy.deepcopy(model), data.test_images, data.test_labels)
    shown = [ev.accuracy(ev.masks_at(s, scope)) for s in MOVES]
    expected = [independent_accuracy(dense, s, scope, data.test_images, data.test_labels) for s in MOVES]
    assert shown == expected
    assert len(set(shown)) >= 3  # the positions differ: a cache that returned one number would fail
    # the revisited positions came from the cache: same masks object, no re-evaluation
    assert ev.masks_at(0.81, scope) is ev.masks_at(0.81, scope)
    calls = []
    ev.current_accuracy = lambda: calls.append(1) or 0.0  # a re-evaluation would now be visible
    assert ev.accuracy(ev.masks_at(0.93, scope)) == shown[MOVES.index(0.93)]
    assert calls == []


def test_a_cached_position_still_leaves_its_masked_weights_in_the_model(digits_model):
    data, model = digits_model
    ev = MaskedEvaluator(copy.deepcopy(model), data.test_images, data.test_labels)
    ev.accuracy(ev.masks_at(0.9))
    ev.accuracy(ev.masks_at(0.3))
    ev.accuracy(ev.masks_at(0.9))  # from the cache
    for name, p in prunable_weights(ev.model).items():
        assert torch.equal(p.detach() != 0, ev.masks_at(0.9)[name] & (ev.dense[name] != 0))


def test_the_cache_can_be_turned_off_and_is_bounded(digits_model, monkeypatch):
    data, model = digits_model
    off = MaskedEvaluator(copy.deepcopy(model), data.test_images, data.test_labels, positions=0)
    assert off.masks_at(0.5) is not off.masks_at(0.5)
    monkeypatch.setenv("KDVIZ_SLIDER_CACHE", "0")
    assert MaskedEvaluator(copy.deepcopy(model), data.test_images, data.test_labels).positions == 0
    monkeypatch.delenv("KDVIZ_SLIDER_CACHE")
    small = MaskedEvaluator(copy.deepcopy(model), data.test_images, data.test_labels, positions=3)
    first = small.masks_at(0.1)
    for s in (0.2, 0.3, 0.4):
        small.masks_at(s)
    assert small.masks_at(0.1) is not first  # evicted: the oldest of more than 3 positions
    with pytest.raises(ValueError, match="positions"):
        MaskedEvaluator(model, data.test_images, data.test_labels, positions=-1)
    with pytest.raises(ValueError, match="sparsity"):
        small.masks_at(1.5)


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_slider_histograms_equal_numpy_histograms_of_the_survivors(digits_model, scope):
    data, model = digits_model
    ev = MaskedEvaluator(copy.deepcopy(model), data.test_images, data.test_labels)
    for s in (0.0, 0.37, 0.9, 0.99):
        masks = ev.masks_at(s, scope)
        arrays = slider_arrays(ev, masks, bins=41)
        for name, w in ev.dense.items():
            layer = name[: -len(".weight")]
            v = w.double().numpy()
            r = float(np.abs(v).max())
            counts, edges = np.histogram(v[masks[name].numpy()], bins=41, range=(-r, r))
            assert np.array_equal(arrays[f"hist/{layer}"], counts)
            assert np.array_equal(arrays[f"edges/{layer}"], edges)
            assert arrays[f"hist/{layer}"].sum() == int(masks[name].sum())
        assert slider_arrays(ev, masks, bins=41) is arrays  # kept with the cached masks


MNIST = Path(os.environ.get("KDVIZ_DATA", "/nonexistent"))


@pytest.mark.skipif(not (MNIST / "t10k-images-idx3-ubyte.gz").is_file() and not (MNIST / "t10k-images-idx3-ubyte").is_file(),
                    reason="MNIST IDX files not found at $KDVIZ_DATA")
def test_mnist_lenet300_slider_positions_equal_independent_evaluations():
    data = load_dataset("mnist", root=str(MNIST))
    model = trained(data, hidden=(300, 100), steps=60)  # LeNet-300-100's shape, briefly trained
    dense = copy.deepcopy(model)
    ev = MaskedEvaluator(model, data.test_images, data.test_labels)
    moves = [0.5, 0.9, 0.95, 0.9, 0.98]
    shown = [ev.accuracy(ev.masks_at(s)) for s in moves]
    assert shown == [independent_accuracy(dense, s, "layer", data.test_images, data.test_labels) for s in moves]
    assert shown[0] > shown[-1]


def test_slider_reports_equal_reports_of_the_pruned_model_and_are_kept(digits_model):
    from kdviz.prune import layer_costs, size_report
    from kdviz.prune.explore import slider_reports

    data, model = digits_model
    ev = MaskedEvaluator(copy.deepcopy(model), data.test_images, data.test_labels)
    for s in (0.9, 0.4, 0.9):
        masks = ev.masks_at(s)
        rows, costs = slider_reports(ev, masks)
        pruned = copy.deepcopy(model)
        magnitude_masks(pruned, s).apply(pruned)
        assert rows == size_report(pruned).rows()
        assert [(c.layer, c.flops, c.nonzero_flops) for c in costs] == [
            (c.layer, c.flops, c.nonzero_flops) for c in layer_costs(pruned)]
        rows[0]["layer"] = "changed by the caller"  # a copy: the kept rows are not touched
        for name, p in prunable_weights(ev.model).items():  # the model holds this position's masks
            assert torch.equal(p.detach() == 0, ~masks[name] | (ev.dense[name] == 0))
    assert slider_reports(ev, ev.masks_at(0.9))[0][0]["layer"] != "changed by the caller"
    assert slider_reports(ev, ev.masks_at(0.9))[0][-1]["kept"] < slider_reports(ev, ev.masks_at(0.4))[0][-1]["kept"]
