"""The cached slider evaluator agrees with plain magnitude pruning and a plain accuracy loop;
sensitivity analysis prunes one layer at a time."""
import pytest
import torch

from kdviz.models import build_model
from kdviz.prune import MaskedEvaluator, magnitude_masks, prunable_weights, sensitivity_analysis


@pytest.fixture
def setup():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = build_model("mlp", input_shape=(1, 8, 8), num_classes=4, hidden=(48, 24)).eval()
    images = torch.rand(300, 1, 8, 8, generator=g)
    with torch.no_grad():  # labels the dense model mostly gets right, so pruning visibly hurts
        labels = model(images).argmax(1)
        flip = torch.rand(300, generator=g) < 0.1
        labels[flip] = (labels[flip] + 1) % 4
    return model, images, labels


def loop_accuracy(model, images, labels):
    correct = 0
    with torch.no_grad():
        for x, y in zip(images, labels):
            correct += int(model(x[None]).argmax(1).item() == int(y))
    return correct / len(labels)


def test_masks_from_cached_order_equal_magnitude_masks(setup):
    model, images, labels = setup
    ev = MaskedEvaluator(model, images, labels)
    for scope in ("layer", "global"):
        for s in (0.0, 0.37, 0.9):
            cached, direct = ev.masks_at(s, scope), magnitude_masks(model, s, scope=scope)
            for name in direct:
                assert torch.equal(cached[name], direct[name])


def test_accuracy_equals_a_plain_loop_and_starts_from_dense(setup):
    model, images, labels = setup
    dense = {n: p.detach().clone() for n, p in prunable_weights(model).items()}
    ev = MaskedEvaluator(model, images, labels, batch_size=64)
    high = ev.accuracy_at(0.95)
    low = ev.accuracy_at(0.3)  # not computed from the 95%-pruned weights
    magnitude_masks(model, 0.3).apply(model)  # the model holds the last evaluated masks
    assert low == pytest.approx(loop_accuracy(model, images, labels))
    ev.restore()
    for n, p in prunable_weights(model).items():
        assert torch.equal(p.detach(), dense[n])
    assert ev.accuracy() == pytest.approx(loop_accuracy(model, images, labels))
    assert ev.accuracy() > high  # pruning 95% of such a small model costs accuracy


def test_sensitivity_prunes_one_layer_at_a_time(setup):
    model, images, labels = setup
    ev = MaskedEvaluator(model, images, labels)
    dense_acc = ev.accuracy()
    curves = sensitivity_analysis(ev, sparsities=[0.0, 0.5, 0.9])
    assert list(curves) == ["fc1.weight", "fc2.weight", "fc3.weight"]
    for name, points in curves.items():
        assert [s for s, _ in points] == [0.0, 0.5, 0.9]
        assert points[0][1] == pytest.approx(dense_acc)
        for s, acc in points[1:]:
            ev.restore()
            magnitude_masks(model, {name: s}).apply(model)  # only this layer pruned
            assert acc == pytest.approx(loop_accuracy(model, images, labels))
    ev.restore()
    assert ev.current_accuracy() == pytest.approx(dense_acc)


def test_bad_evaluator_inputs(setup):
    model, images, labels = setup
    with pytest.raises(ValueError, match="as many labels"):
        MaskedEvaluator(model, images, labels[:5])
    ev = MaskedEvaluator(model, images, labels)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        ev.accuracy_at(1.0)
    with pytest.raises(ValueError, match="scope"):
        ev.masks_at(0.5, scope="row")
    with pytest.raises(ValueError, match="not evaluated"):
        sensitivity_analysis(ev, [0.5], names=["conv1.weight"])
